"""Taking a lesson quiz over HTTP: no answers leak, refusals store nothing, passing completes."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from school import db
from school.credits.models import CreditEntry
from school.learning.models import LessonProgress
from school.quizzes import service
from school.quizzes.models import Attempt
from tests.conftest import csrf_from, sign_in
from tests.factories import make_user
from tests.quizzes.conftest import right_values, wrong_values


def start(client, lesson_id):
    token = csrf_from(client.get(f"/lessons/{lesson_id}").get_data(as_text=True))
    response = client.post(f"/lessons/{lesson_id}/quiz", data={"csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def attempt_row(attempt_id) -> Attempt:
    db.session.remove()
    return db.session.get(Attempt, attempt_id)


def submit(client, attempt_id, values_for, token=None):
    page = client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True)
    items = attempt_row(attempt_id).items
    data = {"csrf_token": token or csrf_from(page)}
    for i, item in enumerate(items):
        data[f"q{i}"] = values_for(item)
    return client.post(f"/quizzes/attempts/{attempt_id}/submit", data=data)


def test_the_answer_form_never_contains_answers_or_explanations(client, quiz_lesson, member):
    sign_in(client, "13700000001")
    lesson_page = client.get(f"/lessons/{quiz_lesson.id}").get_data(as_text=True)
    attempt_id = start(client, quiz_lesson.id)
    html = client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True)
    assert "党支部的议事决策机构是？" in html
    for secret in ("单选解析", "多选解析", "判断解析", "填空解析", "党课", "option-correct", "checked"):
        assert secret not in html, secret
    for secret in ("单选解析", "填空解析", "上党课"):
        assert secret not in lesson_page, secret
    # the values posted are positions in the order shown, nothing more
    values = set(re.findall(r'name="q\d+" value="([^"]*)"', html))
    assert values <= {"0", "1", "2", "3", "true", "false"}


def test_the_result_shows_answers_and_explanations_after_submitting(client, quiz_lesson, member):
    sign_in(client, "13700000001")
    attempt_id = start(client, quiz_lesson.id)
    assert submit(client, attempt_id, right_values).status_code == 302
    html = client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True)
    assert "100%" in html and "填空解析" in html and "党课 / 上党课" in html


def test_passing_completes_a_confirmed_lesson_and_credits_it(app, client, quiz_lesson, member):
    sign_in(client, "13700000001")
    token = csrf_from(client.get(f"/lessons/{quiz_lesson.id}").get_data(as_text=True))
    with app.test_request_context():
        from school.learning import service as learning

        learning.confirm_finished(member, db.session.get(type(quiz_lesson), quiz_lesson.id))
        db.session.commit()
        progress = learning.get_progress(member.id, quiz_lesson.id)
        assert progress.completed_at is None  # the quiz is still to pass
    attempt_id = start(client, quiz_lesson.id)
    submit(client, attempt_id, right_values, token)
    db.session.remove()
    progress = db.session.scalar(sa.select(LessonProgress).where(LessonProgress.user_id == member.id))
    assert progress.completed_at is not None
    assert db.session.scalar(sa.select(CreditEntry.ref_key)) == f"lesson:{quiz_lesson.id}"


def test_a_failed_quiz_leaves_the_lesson_incomplete(app, client, quiz_lesson, member):
    sign_in(client, "13700000001")
    with app.test_request_context():
        from school.learning import service as learning

        learning.confirm_finished(member, db.session.get(type(quiz_lesson), quiz_lesson.id))
        db.session.commit()
    attempt_id = start(client, quiz_lesson.id)
    submit(client, attempt_id, wrong_values)
    assert attempt_row(attempt_id).passed is False
    db.session.remove()
    progress = db.session.scalar(sa.select(LessonProgress).where(LessonProgress.user_id == member.id))
    assert progress.completed_at is None
    with app.app_context():
        assert not service.lesson_quiz_passed(member.id, quiz_lesson)


def test_a_second_submit_is_refused_and_the_first_answers_stay(client, quiz_lesson, member):
    sign_in(client, "13700000001")
    attempt_id = start(client, quiz_lesson.id)
    submit(client, attempt_id, right_values)
    again = submit(client, attempt_id, wrong_values)
    assert again.status_code == 409
    assert "已经提交" in again.get_data(as_text=True)
    row = attempt_row(attempt_id)
    assert row.percent == 100 and row.passed


def test_a_submit_after_the_time_limit_is_refused_and_stores_nothing(
    app, client, quiz_lesson, member, monkeypatch
):
    with app.test_request_context():
        service.set_quiz_settings(quiz_lesson, True, 4, 75, 0, "highest", 5)
        db.session.commit()
    sign_in(client, "13700000001")
    attempt_id = start(client, quiz_lesson.id)
    page = client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True)
    assert 'data-seconds="' in page
    later = db.utcnow() + timedelta(minutes=5, seconds=service.SUBMIT_GRACE_SECONDS + 5)
    monkeypatch.setattr(db, "utcnow", lambda: later)
    response = submit(client, attempt_id, right_values, csrf_from(page))
    assert response.status_code == 409 and "时间" in response.get_data(as_text=True)
    row = attempt_row(attempt_id)
    assert row.state == "open" and row.answers_json is None and row.score is None


def test_someone_elses_attempt_can_be_neither_seen_nor_submitted(client, quiz_lesson, member):
    sign_in(client, "13700000001")
    attempt_id = start(client, quiz_lesson.id)
    token = csrf_from(client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True))
    client.post("/sign-out", data={"csrf_token": token})
    make_user(phone="13700000002")
    other = client.application.test_client()
    sign_in(other, "13700000002")
    assert other.get(f"/quizzes/attempts/{attempt_id}").status_code == 404
    token = csrf_from(other.get("/courses").get_data(as_text=True))
    response = other.post(f"/quizzes/attempts/{attempt_id}/submit", data={"csrf_token": token, "q0": "0"})
    assert response.status_code == 404
    assert attempt_row(attempt_id).state == "open"


def test_the_attempts_limit_is_enforced(app, client, quiz_lesson, member):
    with app.test_request_context():
        service.set_quiz_settings(quiz_lesson, True, 4, 75, 2, "latest")
        db.session.commit()
    sign_in(client, "13700000001")
    for _ in range(2):
        submit(client, start(client, quiz_lesson.id), wrong_values)
    page = client.get(f"/lessons/{quiz_lesson.id}").get_data(as_text=True)
    token = csrf_from(page)
    response = client.post(f"/lessons/{quiz_lesson.id}/quiz", data={"csrf_token": token})
    assert response.status_code == 400 and "2" in response.get_data(as_text=True)
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attempt)) == 2


def test_starting_twice_resumes_the_open_attempt(client, quiz_lesson, member):
    sign_in(client, "13700000001")
    assert start(client, quiz_lesson.id) == start(client, quiz_lesson.id)


@pytest.mark.parametrize(("grading", "passed"), [("highest", True), ("latest", False)])
def test_highest_or_latest_grade_counts_by_the_setting(app, client, quiz_lesson, member, grading, passed):
    with app.test_request_context():
        service.set_quiz_settings(quiz_lesson, True, 4, 75, 0, grading)
        db.session.commit()
    sign_in(client, "13700000001")
    submit(client, start(client, quiz_lesson.id), right_values)
    submit(client, start(client, quiz_lesson.id), wrong_values)
    with app.app_context():
        assert service.lesson_quiz_passed(member.id, quiz_lesson) is passed


def test_a_lesson_without_a_quiz_counts_as_passed(app, member):
    from tests.factories import make_lesson

    with app.app_context():
        lesson = make_lesson(duration=None, completion="confirm")
        assert service.lesson_quiz_passed(member.id, lesson)


def test_the_lesson_quiz_box_shows_the_rules(app, client, quiz_lesson, member):
    sign_in(client, "13700000001")
    with app.test_request_context():
        from flask import render_template_string
        from flask_login import login_user

        login_user(member)
        html = render_template_string('{% include "quizzes/_lesson_quiz.html" %}', lesson=quiz_lesson)
    assert "75%" in html and f'action="/lessons/{quiz_lesson.id}/quiz"' in html and "csrf_token" in html
