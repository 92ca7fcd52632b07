"""Heartbeats over HTTP: honest progress is recorded, anything else is refused and stores nothing."""

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from school import db
from school.credits.models import CreditEntry
from school.learning.models import LessonProgress
from tests.conftest import api_token, sign_in
from tests.factories import make_lesson, make_user


class Clock:
    """The server's clock, moved by the test (school.db.utcnow is what the service reads)."""

    def __init__(self, monkeypatch):
        self.now = db.utcnow()
        monkeypatch.setattr(db, "utcnow", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture()
def member(app):
    with app.app_context():
        return make_user()


@pytest.fixture()
def lesson(app):
    with app.app_context():
        return make_lesson(duration=100.0, credit="2")


def start(client, lesson_id):
    return client.post(f"/api/v1/lessons/{lesson_id}/viewings", headers={"X-CSRFToken": api_token(client)})


def beat(client, session_id, **body):
    return client.post(
        f"/api/v1/viewings/{session_id}/beats", data=json.dumps(body), content_type="application/json"
    )


def stored(app, user_id, lesson_id):
    with app.app_context():
        row = db.session.execute(
            sa.select(LessonProgress).where(
                LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id
            )
        ).scalar_one_or_none()
        return None if row is None else (row.watched, row.covered_seconds, row.position, row.completed_at)


def credits_of(app, user_id):
    with app.app_context():
        return [
            (e.source, float(e.amount))
            for e in db.session.scalars(sa.select(CreditEntry).where(CreditEntry.user_id == user_id))
        ]


def test_played_intervals_are_recorded_and_replays_add_nothing(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    opened = start(client, lesson.id)
    assert opened.status_code == 201
    sid = opened.get_json()["session_id"]
    clock.advance(12)
    answer = beat(client, sid, seq=1, **{"from": 0, "to": 12, "rate": 1})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["coverage"] == pytest.approx(0.12)
    clock.advance(12)
    assert beat(client, sid, seq=2, **{"from": 0, "to": 12, "rate": 1}).status_code == 200  # replay
    watched, covered, position, _ = stored(app, member.id, lesson.id)
    assert watched == [(0, 12)] and covered == pytest.approx(12)
    assert position == pytest.approx(12)


def test_seeking_to_the_end_earns_nothing(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(5)
    answer = beat(client, sid, seq=1, **{"from": 0, "to": 100, "rate": 1})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "implausible"
    # A seek is a jump, not play: the next honest beat starts where the player landed.
    clock.advance(10)
    assert beat(client, sid, seq=2, **{"from": 95, "to": 100, "rate": 1}).status_code == 200
    watched, covered, _, completed = stored(app, member.id, lesson.id)
    assert watched == [(95, 100)] and covered == pytest.approx(5) and completed is None


def test_double_speed_is_allowed_and_more_is_not(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(10)
    assert beat(client, sid, seq=1, **{"from": 0, "to": 20, "rate": 2}).status_code == 200
    clock.advance(10)
    # 20 s of real time at 2× (+10%, + 4 s once) allow (20 + 4) × 2.2 = 52.8 s of media in all.
    assert beat(client, sid, seq=2, **{"from": 20, "to": 55, "rate": 2}).status_code == 400
    assert beat(client, sid, seq=3, **{"from": 20, "to": 50, "rate": 2}).status_code == 200


def test_many_small_beats_at_once_earn_nothing_more(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    codes = [
        beat(client, sid, seq=n + 1, **{"from": n, "to": n + 1, "rate": 1}).status_code for n in range(20)
    ]
    assert codes.count(200) <= 5 and codes[-1] == 400
    assert stored(app, member.id, lesson.id)[1] <= 5


@pytest.mark.parametrize(
    "body",
    [
        {"seq": 1, "from": float("nan"), "to": 10, "rate": 1},
        {"seq": 1, "from": 0, "to": float("inf"), "rate": 1},
        {"seq": 1, "from": -5, "to": 5, "rate": 1},
        {"seq": 1, "from": 90, "to": 160, "rate": 1},
        {"seq": 1, "from": 0, "to": 10, "rate": 16},
        {"seq": 1, "from": 0, "to": 10, "rate": 0},
        {"seq": 1, "from": 10, "to": 5, "rate": 1},
        {"seq": 1, "from": "0", "to": "10", "rate": 1},
        {"seq": 1, "from": True, "to": 10, "rate": 1},
        {"seq": 0, "from": 0, "to": 10, "rate": 1},
        {"seq": -3, "from": 0, "to": 10, "rate": 1},
        {"seq": 1.5, "from": 0, "to": 10, "rate": 1},
        {"seq": 2**40, "from": 0, "to": 10, "rate": 1},
        {"from": 0, "to": 10, "rate": 1},
        {"seq": 1, "to": 10, "rate": 1},
    ],
)
def test_bad_beats_are_refused_and_store_nothing(app, client, clock, member, lesson, body):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(60)
    answer = beat(client, sid, **body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["message"]
    watched, covered, _, _ = stored(app, member.id, lesson.id)
    assert watched == [] and covered == 0


@pytest.mark.parametrize("raw", [b"", b"[1, 2]", b"not json", b"\xff\xfe{", b'{"seq": 1' * 1000])
def test_bodies_that_are_not_an_object_are_refused(client, clock, member, lesson, raw):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    answer = client.post(f"/api/v1/viewings/{sid}/beats", data=raw, content_type="application/json")
    assert answer.status_code == 400


def test_a_beat_sent_twice_counts_once(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(12)
    body = {"seq": 1, "from": 0, "to": 12, "rate": 1}
    assert beat(client, sid, **body).status_code == 200
    again = beat(client, sid, **body)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "stale_seq"
    clock.advance(12)
    old = beat(client, sid, **{**body, "from": 12, "to": 24})  # an old seq with new numbers
    assert old.status_code == 409
    assert stored(app, member.id, lesson.id)[1] == pytest.approx(12)


def test_beats_queued_offline_are_accepted_when_they_arrive_together(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(36)  # played 36 s with no network, then the three beats arrive at once
    for seq, (a, b) in enumerate([(0, 12), (12, 24), (24, 36)], start=1):
        assert beat(client, sid, seq=seq, **{"from": a, "to": b, "rate": 1}).status_code == 200
    assert stored(app, member.id, lesson.id)[0] == [(0, 36)]


def test_another_members_session_is_not_found(app, client, clock, member, lesson):
    with app.app_context():
        other = make_user()
    sign_in(client, other.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    fresh = app.test_client()
    sign_in(fresh, member.phone)
    clock.advance(12)
    answer = beat(fresh, sid, seq=1, **{"from": 0, "to": 12, "rate": 1})
    assert answer.status_code == 404
    assert stored(app, other.id, lesson.id)[0] == []
    assert stored(app, member.id, lesson.id) is None
    assert beat(fresh, "x" * 32, seq=1, **{"from": 0, "to": 1, "rate": 1}).status_code == 404
    assert beat(fresh, "abc", seq=1).status_code == 404


def test_a_lesson_the_member_may_not_see_cannot_be_started(app, client, member):
    with app.app_context():
        draft = make_lesson(state="draft")
    sign_in(client, member.phone)
    assert start(client, draft.id).status_code == 403
    assert start(client, 999999).status_code == 404
    assert stored(app, member.id, draft.id) is None


def test_anonymous_beats_are_refused(client, lesson):
    assert client.post(f"/api/v1/lessons/{lesson.id}/viewings").status_code in (400, 401)
    assert beat(client, "a" * 32, seq=1, **{"from": 0, "to": 1, "rate": 1}).status_code == 401


def test_starting_needs_the_csrf_token_but_beats_carry_the_session_secret(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    assert client.post(f"/api/v1/lessons/{lesson.id}/viewings").status_code == 400
    sid = start(client, lesson.id).get_json()["session_id"]
    clock.advance(12)
    forged = client.post(
        f"/api/v1/viewings/{sid}/beats",
        data=json.dumps({"seq": 1, "from": 0, "to": 12, "rate": 1}),
        content_type="text/plain",
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403
    beacon = client.post(  # what sendBeacon sends: no CSRF header, a text/plain or JSON blob
        f"/api/v1/viewings/{sid}/beats",
        data=json.dumps({"seq": 1, "from": 0, "to": 12, "rate": 1}),
        content_type="text/plain",
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert beacon.status_code == 200


def test_a_second_device_takes_over(app, client, clock, member, lesson):
    sign_in(client, member.phone)
    first = start(client, lesson.id).get_json()["session_id"]
    clock.advance(20)
    second = start(client, lesson.id).get_json()["session_id"]
    # The first device's beat for time before the takeover still counts (it was in flight)…
    late = beat(client, first, seq=1, **{"from": 0, "to": 20, "rate": 1})
    assert late.status_code == 200 and late.get_json()["superseded"] is True
    clock.advance(30)
    # …but it cannot go on earning while the second device plays.
    refused = beat(client, first, seq=2, **{"from": 20, "to": 50, "rate": 1})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "superseded"
    assert beat(client, second, seq=1, **{"from": 50, "to": 80, "rate": 1}).status_code == 200
    watched, _, position, _ = stored(app, member.id, lesson.id)
    assert watched == [(0, 20), (50, 80)] and position == pytest.approx(80)


def test_completion_at_ninety_percent_credits_once_and_progress_never_goes_down(
    app, client, clock, member, lesson
):
    sign_in(client, member.phone)
    sid = start(client, lesson.id).get_json()["session_id"]
    seq = 0
    for a in range(0, 84, 12):
        clock.advance(12)
        seq += 1
        assert (
            beat(client, sid, seq=seq, **{"from": a, "to": a + 12, "rate": 1}).get_json()["completed"]
            is False
        )
    clock.advance(12)
    done = beat(client, sid, seq=seq + 1, **{"from": 84, "to": 92, "rate": 1}).get_json()
    assert done["completed"] is True and done["coverage"] >= 0.9
    assert credits_of(app, member.id) == [("lesson", 2.0)]
    # Watching again later changes nothing downwards and credits nothing more.
    sid2 = start(client, lesson.id).get_json()["session_id"]
    clock.advance(12)
    again = beat(client, sid2, seq=1, **{"from": 0, "to": 12, "rate": 1}).get_json()
    assert again["completed"] is True and again["coverage"] >= 0.9
    assert credits_of(app, member.id) == [("lesson", 2.0)]


def test_reading_time_completes_a_text_lesson(app, client, clock, member):
    app.config["READ_MINIMUM_SECONDS"] = 30
    try:
        with app.app_context():
            text = make_lesson(duration=None, completion="read", credit="0.5")
        sign_in(client, member.phone)
        opened = start(client, text.id).get_json()
        assert opened["kind"] == "read"
        sid = opened["session_id"]
        clock.advance(15)
        assert beat(client, sid, seq=1, read=15).get_json()["completed"] is False
        assert beat(client, sid, seq=2, read=600).status_code == 400  # more than has passed
        clock.advance(15)
        assert beat(client, sid, seq=3, read=15).get_json()["completed"] is True
        assert credits_of(app, member.id) == [("lesson", 0.5)]
    finally:
        app.config["READ_MINIMUM_SECONDS"] = 120


def test_confirmation_completes_a_confirm_lesson_only(app, client, member, lesson):
    with app.app_context():
        confirm = make_lesson(duration=None, completion="confirm", credit="1")
    sign_in(client, member.phone)
    token = api_token(client)
    assert (
        client.post(f"/api/v1/lessons/{lesson.id}/finished", headers={"X-CSRFToken": token}).status_code
        == 400
    )
    answer = client.post(f"/api/v1/lessons/{confirm.id}/finished", headers={"X-CSRFToken": token})
    assert answer.status_code == 200 and answer.get_json()["completed"] is True
    client.post(f"/api/v1/lessons/{confirm.id}/finished", headers={"X-CSRFToken": token})
    assert credits_of(app, member.id) == [("lesson", 1.0)]
