"""Lecturers keep their course's question bank and lesson quiz settings; nobody else may."""

import sqlalchemy as sa

from school import db
from school.quizzes import service
from school.quizzes.models import LessonQuiz, Question
from tests.conftest import csrf_from, sign_in
from tests.factories import make_lesson, make_user
from tests.quizzes.conftest import add_questions


def lecturer(phone):
    return make_user(roles=[("lecturer", None)], phone=phone)


def setup(app):
    with app.app_context():
        owner = lecturer("13800000001")
        lesson = make_lesson(owner=owner, duration=None, completion="read")
        return owner, lesson


def post(client, url, data):
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_the_owner_adds_edits_and_deletes_questions(app, client):
    _owner, lesson = setup(app)
    course_id = lesson.course_id
    sign_in(client, "13800000001")
    base = f"/teach/courses/{course_id}/questions"
    response = post(
        client,
        f"{base}/new",
        {
            "kind": "multiple",
            "stem": "三会包括？",
            "option0": "党员大会",
            "option1": "支委会",
            "option2": "职代会",
            "correct": ["0", "1"],
            "explanation": "解析",
            "lesson_id": str(lesson.id),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    question = db.session.scalar(sa.select(Question))
    assert (question.options, question.answer, question.lesson_id) == (
        ["党员大会", "支委会", "职代会"],
        [0, 1],
        lesson.id,
    )
    assert "三会包括？" in client.get(base).get_data(as_text=True)
    edit = f"{base}/{question.id}"
    assert "职代会" in client.get(edit).get_data(as_text=True)
    post(client, edit, {"kind": "fill", "stem": "一课指____。", "accepted": "党课\n上党课\n"})
    db.session.remove()
    question = db.session.get(Question, question.id)
    assert (question.kind, question.answer, question.options) == ("fill", ["党课", "上党课"], [])
    token = csrf_from(client.get(base).get_data(as_text=True))
    assert client.post(f"{edit}/delete", data={"csrf_token": token}).status_code == 302
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) == 0


def test_an_invalid_question_is_refused_with_a_message_and_not_stored(app, client):
    _owner, lesson = setup(app)
    sign_in(client, "13800000001")
    response = post(
        client,
        f"/teach/courses/{lesson.course_id}/questions/new",
        {"kind": "single", "stem": "题目", "option0": "甲", "option1": "乙"},  # nothing marked correct
    )
    assert response.status_code == 400 and "请勾选正确选项" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) == 0


def test_another_lecturer_cannot_see_or_change_the_bank(app, client):
    _owner, lesson = setup(app)
    with app.app_context():
        made = add_questions(lesson.course)
        question_id = made["single"].id
        lecturer("13800000002")
    sign_in(client, "13800000002")
    base = f"/teach/courses/{lesson.course_id}/questions"
    assert client.get(base).status_code == 403
    assert client.get(f"{base}/{question_id}").status_code == 403
    assert client.get(f"/teach/lessons/{lesson.id}/quiz").status_code == 403
    token = csrf_from(client.get("/teach").get_data(as_text=True))
    assert client.post(f"{base}/{question_id}/delete", data={"csrf_token": token}).status_code == 403
    assert (
        client.post(
            f"{base}/new", data={"csrf_token": token, "kind": "truefalse", "stem": "x", "truth": "true"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/teach/lessons/{lesson.id}/quiz",
            data={
                "csrf_token": token,
                "enabled": "1",
                "question_count": "1",
                "pass_percent": "0",
                "max_attempts": "0",
                "grading": "highest",
            },
        ).status_code
        == 403
    )
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) == 4
    assert db.session.get(LessonQuiz, lesson.id) is None


def test_a_member_cannot_open_the_bank(app, client):
    _owner, lesson = setup(app)
    with app.app_context():
        make_user(phone="13700000009")
    sign_in(client, "13700000009")
    assert client.get(f"/teach/courses/{lesson.course_id}/questions").status_code == 403


def test_the_owner_sets_a_lessons_quiz(app, client):
    _owner, lesson = setup(app)
    with app.app_context():
        add_questions(lesson.course)
    sign_in(client, "13800000001")
    url = f"/teach/lessons/{lesson.id}/quiz"
    response = post(
        client,
        url,
        {
            "enabled": "1",
            "question_count": "3",
            "pass_percent": "80",
            "max_attempts": "2",
            "grading": "latest",
            "time_limit_minutes": "15",
        },
    )
    assert response.status_code == 302
    db.session.remove()
    quiz = db.session.get(LessonQuiz, lesson.id)
    assert (
        quiz.enabled,
        quiz.question_count,
        quiz.pass_percent,
        quiz.max_attempts,
        quiz.grading,
        quiz.time_limit_minutes,
    ) == (True, 3, 80, 2, "latest", 15)
    bad = post(
        client,
        url,
        {
            "enabled": "1",
            "question_count": "3",
            "pass_percent": "120",
            "max_attempts": "0",
            "grading": "highest",
        },
    )
    assert bad.status_code == 400
    db.session.remove()
    assert db.session.get(LessonQuiz, lesson.id).pass_percent == 80


def test_a_quiz_cannot_be_switched_on_with_an_empty_bank(app):
    _owner, lesson = setup(app)
    with app.test_request_context():
        import pytest

        from school.errors import Invalid

        with pytest.raises(Invalid):
            service.set_quiz_settings(lesson, True, 3, 60, 0, "highest")
