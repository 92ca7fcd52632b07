"""每日答题: one per member and local day, drawn from published courses, credit capped per year."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from school import db
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.quizzes import service
from school.quizzes.models import Attempt
from tests.conftest import csrf_from, sign_in
from tests.factories import make_lesson
from tests.quizzes.conftest import add_questions, right_values, wrong_values


class LocalClock:
    """The site's local time, moved by the test (credits.local_now is what services read)."""

    def __init__(self, monkeypatch):
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        monkeypatch.setattr(credits, "local_now", lambda: self.now)

    def next_day(self):
        self.now += timedelta(days=1)


@pytest.fixture()
def clock(monkeypatch):
    return LocalClock(monkeypatch)


@pytest.fixture()
def bank(app):
    with app.app_context():
        lesson = make_lesson(duration=None, completion="read")
        add_questions(lesson.course)
        return lesson.course


def start(client):
    token = csrf_from(client.get("/daily").get_data(as_text=True))
    response = client.post("/daily", data={"csrf_token": token})
    assert response.status_code == 302
    return int(response.headers["Location"].rsplit("/", 1)[1])


def answer(client, attempt_id, values_for):
    page = client.get(f"/quizzes/attempts/{attempt_id}").get_data(as_text=True)
    db.session.remove()
    items = db.session.get(Attempt, attempt_id).items
    data = {"csrf_token": csrf_from(page)} | {f"q{i}": values_for(item) for i, item in enumerate(items)}
    return client.post(f"/quizzes/attempts/{attempt_id}/submit", data=data)


def daily_credits(user_id):
    db.session.remove()
    return list(db.session.scalars(sa.select(CreditEntry.amount).where(CreditEntry.user_id == user_id)))


def test_one_daily_quiz_per_member_and_day(client, bank, member, clock):
    sign_in(client, "13700000001")
    first = start(client)
    assert answer(client, first, right_values).status_code == 302
    assert client.get("/daily").headers["Location"] == f"/quizzes/attempts/{first}"
    token = csrf_from(client.get(f"/quizzes/attempts/{first}").get_data(as_text=True))
    assert client.post("/daily", data={"csrf_token": token}).headers["Location"].endswith(f"/{first}")
    clock.next_day()
    assert start(client) != first
    db.session.remove()
    days = sorted(db.session.scalars(sa.select(Attempt.day)))
    assert [d.isoformat() for d in days] == ["2026-03-02", "2026-03-03"]


def test_the_daily_quiz_draws_the_configured_number_of_questions(
    app, client, bank, member, clock, monkeypatch
):
    monkeypatch.setitem(app.config, "DAILY_QUIZ_QUESTIONS", 3)
    sign_in(client, "13700000001")
    attempt_id = start(client)
    db.session.remove()
    assert len(db.session.get(Attempt, attempt_id).items) == 3


def test_a_passed_daily_quiz_earns_credit_up_to_the_yearly_cap(app, client, bank, member, clock, monkeypatch):
    monkeypatch.setitem(app.config, "DAILY_QUIZ_CREDIT_HOURS", "0.1")
    monkeypatch.setitem(app.config, "DAILY_QUIZ_CREDIT_CAP_HOURS", "0.15")
    sign_in(client, "13700000001")
    answer(client, start(client), right_values)
    assert daily_credits(member.id) == [Decimal("0.10")]
    clock.next_day()
    answer(client, start(client), right_values)
    assert sorted(daily_credits(member.id)) == [Decimal("0.05"), Decimal("0.10")]
    clock.next_day()
    answer(client, start(client), right_values)
    assert len(daily_credits(member.id)) == 2
    with app.app_context():
        assert credits.year_total(member.id, 2026, source="daily_quiz") == Decimal("0.15")


def test_a_failed_daily_quiz_earns_nothing(client, bank, member, clock):
    sign_in(client, "13700000001")
    answer(client, start(client), wrong_values)
    assert daily_credits(member.id) == []


def test_yesterdays_daily_quiz_can_no_longer_be_submitted(client, bank, member, clock):
    sign_in(client, "13700000001")
    attempt_id = start(client)
    clock.next_day()
    response = answer(client, attempt_id, right_values)
    assert response.status_code == 409
    db.session.remove()
    assert db.session.get(Attempt, attempt_id).state == "open"
    assert daily_credits(member.id) == []


def test_draft_courses_are_not_in_the_daily_pool(app, bank):
    with app.app_context():
        draft = make_lesson(duration=None, completion="read")
        draft.course.state = "draft"
        db.session.commit()
        add_questions(draft.course)
        assert {q.course_id for q in service.daily_pool()} == {bank.id}


def test_the_daily_card_offers_the_quiz_and_then_shows_the_result(app, client, bank, member, clock):
    from flask import render_template_string
    from flask_login import login_user

    def card():
        with app.test_request_context():
            login_user(db.session.get(type(member), member.id))
            return render_template_string('{% include "quizzes/_daily_card.html" %}')

    assert 'action="/daily"' in card()
    sign_in(client, "13700000001")
    answer(client, start(client), right_values)
    html = card()
    assert 'action="/daily"' not in html and "4 / 4" in html
