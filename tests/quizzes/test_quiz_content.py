"""quiz.yaml: the demo banks load, reloading changes nothing, edits are applied by code."""

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from school import db
from school.content.quizzes import load_quiz
from school.content.service import Summary
from school.courses import service as courses
from school.errors import Invalid
from school.quizzes import service
from school.quizzes.models import LessonQuiz, Question
from tests.factories import make_user

DEMO = Path(__file__).resolve().parents[2] / "content" / "demo" / "courses"


def course_from(folder: Path, owner):
    """The course and lessons of a course.yaml, without media (the bank needs only the codes)."""
    data = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    course = courses.create_course(owner, data["title"], code=data["code"])
    for spec in data["lessons"]:
        courses.create_lesson(course, spec["title"], code=spec["code"])
    db.session.commit()
    return course


def test_every_demo_course_has_a_bank_that_loads_and_reloads_unchanged(app):
    folders = sorted(p.parent for p in DEMO.glob("*/course.yaml"))
    assert len(folders) == 4
    with app.test_request_context():
        owner = make_user(roles=[("lecturer", None)], phone="13600000001")
        for folder in folders:
            course = course_from(folder, owner)
            first = Summary()
            load_quiz(course, folder / "quiz.yaml", first)
            db.session.commit()
            created = first.counts[("questions", "created")]
            assert created >= 10, folder.name
            kinds = {q.kind for q in service.course_questions(course.id)}
            assert kinds == {"single", "multiple", "truefalse", "fill"}, folder.name
            quizzes = db.session.scalars(sa.select(LessonQuiz)).all()
            assert quizzes and all(len(service.quiz_pool(q.lesson)) >= q.question_count for q in quizzes)
            second = Summary()
            load_quiz(course, folder / "quiz.yaml", second)
            assert second.counts[("questions", "unchanged")] == created
            assert second.counts[("questions", "created")] == second.counts[("questions", "updated")] == 0
            assert not db.session.dirty and not db.session.new
            db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) >= 30


BANK = """
lessons:
  t-1: {questions: 2, pass_percent: 50}
questions:
  - {code: a, kind: single, stem: 题一, options: [甲, 乙], answer: A}
  - {code: b, lesson: t-1, kind: truefalse, stem: 题二, answer: 对}
  - {code: c, kind: fill, stem: 题三, answer: [党课, 上党课]}
"""


def test_an_edited_question_is_updated_by_its_code(app, tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text(BANK, encoding="utf-8")
    with app.test_request_context():
        course = courses.create_course(
            make_user(roles=[("lecturer", None)], phone="13600000002"), "课", code="t"
        )
        lesson = courses.create_lesson(course, "第一课", code="t-1")
        load_quiz(course, path, Summary())
        db.session.commit()
        ids = {q.code: q.id for q in service.course_questions(course.id)}
        path.write_text(BANK.replace("answer: A", "answer: B"), encoding="utf-8")
        summary = Summary()
        load_quiz(course, path, summary)
        db.session.commit()
        assert (
            summary.counts[("questions", "updated")] == 1 and summary.counts[("questions", "unchanged")] == 2
        )
        assert {q.code: q.id for q in service.course_questions(course.id)} == ids
        assert db.session.get(Question, ids["a"]).answer == [1]
        assert db.session.get(Question, ids["b"]).lesson_id == lesson.id
        assert db.session.get(LessonQuiz, lesson.id).pass_percent == 50


@pytest.mark.parametrize(
    "bad",
    [
        "{code: a, kind: single, stem: 题, options: [甲, 乙], answer: C}",
        "{code: a, kind: multiple, stem: 题, options: [甲, 乙], answer: A}",
        "{kind: truefalse, stem: 题, answer: true}",
        "{code: a, kind: truefalse, stem: 题, answer: 也许}",
        "{code: a, lesson: nope, kind: truefalse, stem: 题, answer: true}",
        "{code: ok, kind: truefalse, stem: 重复的 code, answer: true}",
    ],
)
def test_a_wrong_question_is_refused_and_nothing_is_written(app, tmp_path, bad):
    path = tmp_path / "quiz.yaml"
    path.write_text(
        f"questions:\n  - {{code: ok, kind: truefalse, stem: 好题, answer: true}}\n  - {bad}\n", "utf-8"
    )
    with app.test_request_context():
        course = courses.create_course(
            make_user(roles=[("lecturer", None)], phone="13600000003"), "课", code="t"
        )
        db.session.commit()
        with pytest.raises(Invalid):
            load_quiz(course, path, Summary())
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) == 0
