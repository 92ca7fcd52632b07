"""Quiz test data: a published lesson in a published course with a small question bank."""

import pytest

from school import db
from school.quizzes import service
from tests.factories import make_lesson, make_user


def add_questions(course, lesson=None):
    """Four questions, one of each type, with known answers; returns them by kind."""
    made = {}
    for data in (
        service.check_question(
            "single", "党支部的议事决策机构是？", ["支部党员大会", "党小组会", "主题党日"], [0], "单选解析"
        ),
        service.check_question(
            "multiple", "三会包括？", ["支部党员大会", "支委会", "党小组会", "职代会"], [0, 1, 2], "多选解析"
        ),
        service.check_question("truefalse", "党小组会每月召开一次。", [], [True], "判断解析"),
        service.check_question("fill", "一课指的是____。", [], ["党课", "上党课"], "填空解析"),
    ):
        data.lesson_id = lesson.id if lesson is not None else None
        made[data.kind] = service.save_question(course, data)
    db.session.commit()
    return made


def right_values(item: dict) -> list[str]:
    """The form values that answer an attempt item correctly (read from the server's snapshot)."""
    if item["kind"] in ("single", "multiple"):
        return [str(i) for i in item["answer"]]
    if item["kind"] == "truefalse":
        return ["true" if item["answer"][0] else "false"]
    return [item["answer"][0]]


def wrong_values(item: dict) -> list[str]:
    if item["kind"] in ("single", "multiple"):
        return [str(next(i for i in range(len(item["options"])) if i not in item["answer"]))]
    if item["kind"] == "truefalse":
        return ["false" if item["answer"][0] else "true"]
    return ["不知道"]


@pytest.fixture()
def ctx(app):
    with app.test_request_context():
        yield


@pytest.fixture()
def quiz_lesson(app):
    """A published "confirm" lesson with a quiz of all four questions, pass mark 75 %."""
    with app.test_request_context():
        lesson = make_lesson(duration=None, completion="confirm", credit="1")
        add_questions(lesson.course)
        service.set_quiz_settings(lesson, True, 4, 75, 0, "highest")
        db.session.commit()
        return lesson


@pytest.fixture()
def member(app):
    with app.app_context():
        return make_user(phone="13700000001")
