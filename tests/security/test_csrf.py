"""CSRF: every state-changing route (found by walking the url_map) refuses a cookie-session request
without its token, with a wrong one, or with another session's; nothing changes. Heartbeats are
the one exception by design: their per-play secret replaces the token, so they outlive it."""

import json
import time

import itsdangerous
import pytest
import sqlalchemy as sa
from werkzeug.routing import IntegerConverter

from school import db
from school.learning.models import LessonProgress
from tests.conftest import api_token, csrf_from, sign_in
from tests.factories import make_lesson, make_org, make_user

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Calls whose body carries a secret of the member's own page instead of a CSRF token (tested below).
SESSION_SECRET_ENDPOINTS = {"api.beat"}


def unsafe_routes(app, ids: dict) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) of every state-changing rule, with real ids where there are some."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & UNSAFE):
            values = dict(rule.defaults or {})
            for name, converter in rule._converters.items():
                is_int = isinstance(converter, IntegerConverter)
                values[name] = ids.get(name, 1) if is_int else "x"
            found.append((method, rule.build(values, append_unknown=False)[1], rule.endpoint))
    return sorted(set(found))


def snapshot() -> dict[str, list]:
    """Every row of every table (the database must be exactly as before)."""
    rows = {}
    with db.engine.connect() as conn:
        for table in db.Base.metadata.sorted_tables:
            rows[table.name] = sorted(map(repr, conn.execute(sa.select(table)).all()))
    return rows


@pytest.fixture()
def world(app):
    with app.app_context():
        branch = make_org("支部", "branch", make_org("街道", "street"))
        roles = [("admin", None), ("organizer", branch.id), ("lecturer", None), ("member", None)]
        user = make_user(branch, roles=roles, phone="13800000001")
        other = make_user(branch, phone="13800000002")
        lesson = make_lesson(owner=user)
        return {
            "org_id": branch.id,
            "user_id": other.id,
            "course_id": lesson.course_id,
            "lesson_id": lesson.id,
        }


@pytest.fixture()
def other_token(app):
    """A valid token of another (anonymous) browser session."""
    stranger = app.test_client()
    return csrf_from(stranger.get("/sign-in").get_data(as_text=True))


def forged(client, method: str, url: str, token: str | None):
    headers = {"X-CSRFToken": token} if token is not None else {}
    form = {"csrf_token": token} if token is not None else {}
    if url.startswith("/api/"):
        return client.open(url, method=method, json={"title": "x", "login": "x"}, headers=headers)
    return client.open(url, method=method, data={**form, "name": "x", "title": "x"}, headers=headers)


def refused(url: str, response) -> bool:
    if response.status_code != 400:
        return False
    if url.startswith("/api/"):
        return response.get_json()["error"]["code"] == "csrf_failed"
    return True


@pytest.mark.parametrize("case", ["missing", "wrong", "other session"])
def test_every_state_change_refuses_a_request_without_this_sessions_token(
    app, client, world, other_token, case
):
    sign_in(client, "13800000001")
    client.get("/")  # the session is settled (daily renewal etc.) before the snapshot
    token = {"missing": None, "wrong": "IjNmYWtlIg.bad.signature", "other session": other_token}[case]
    routes = unsafe_routes(app, world)
    assert len(routes) > 40 and ("POST", "/api/v1/uploads", "api.create_upload") in routes
    with app.app_context():
        before = snapshot()
    accepted = []
    for method, url, endpoint in routes:
        if endpoint in SESSION_SECRET_ENDPOINTS:
            continue
        response = forged(client, method, url, token)
        if not refused(url, response):
            accepted.append((method, url, response.status_code))
    assert accepted == []
    with app.app_context():
        assert snapshot() == before
    assert client.get("/api/v1/me").status_code == 200  # still signed in: nothing was done


def test_the_real_token_is_accepted(app, client, world):
    """The refusals above are CSRF, not something else: the same call with the token works."""
    sign_in(client, "13800000001")
    response = client.post("/notifications/read", data={"csrf_token": csrf_from(client.get("/").text)})
    assert response.status_code in (200, 302)
    assert client.delete("/api/v1/session", headers={"X-CSRFToken": api_token(client)}).status_code in (
        200,
        204,
    )


def test_bearer_token_calls_need_no_csrf_token(app, client, world):
    from school.accounts import service as accounts
    from school.accounts.models import User

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
        _token, raw = accounts.create_token(user, "script")
        db.session.commit()
    # No cookie at all: a forged cross-site request cannot carry the Authorization header.
    response = app.test_client().post(
        f"/api/v1/lessons/{world['lesson_id']}/viewings", headers={"Authorization": f"Bearer {raw}"}
    )
    assert response.status_code == 201


# --- heartbeats ---------------------------------------------------------------------------------


def start_viewing(client, lesson_id: int) -> str:
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/viewings", headers={"X-CSRFToken": api_token(client)}
    )
    assert response.status_code == 201
    return response.get_json()["session_id"]


def beat(client, session_id: str, headers=None, **body):
    return client.post(
        f"/api/v1/viewings/{session_id}/beats",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers or {},
    )


def covered(app, lesson_id: int) -> list:
    with app.app_context():
        return db.session.scalars(
            sa.select(LessonProgress).where(LessonProgress.lesson_id == lesson_id)
        ).all()


def test_a_heartbeat_cannot_be_forged_cross_site(app, client, world):
    sign_in(client, "13800000001")
    session_id = start_viewing(client, world["lesson_id"])
    with app.app_context():
        before = snapshot()
    # A cross-site page has the member's cookie but not the page's per-play secret.
    guessed = beat(client, "0" * 32, seq=1, **{"from": 0, "to": 2, "rate": 1})
    assert guessed.status_code == 404
    # Knowing the secret is not enough from another site either.
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = beat(client, session_id, headers=headers, seq=1, **{"from": 0, "to": 2, "rate": 1})
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "cross_site"
    with app.app_context():
        assert snapshot() == before
    same_site = beat(
        client, session_id, headers={"Origin": "http://localhost"}, seq=1, **{"from": 0, "to": 2, "rate": 1}
    )
    assert same_site.status_code == 200


def test_heartbeats_keep_working_after_the_csrf_token_expired(app, client, world, monkeypatch):
    # The app sets no time limit (WTF_CSRF_TIME_LIMIT=None: tokens live as long as the session);
    # even with one, and the page's token long expired, beats are accepted.
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", 60)
    sign_in(client, "13800000001")
    page_token = csrf_from(client.get("/").text)
    session_id = start_viewing(client, world["lesson_id"])
    assert beat(client, session_id, seq=1, **{"from": 0, "to": 2, "rate": 1}).status_code == 200
    # Two hours later for itsdangerous (CSRF tokens); the session cookie lives for days.
    later = int(time.time()) + 2 * 3600
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: later)
    expired = client.post("/notifications/read", data={"csrf_token": page_token})
    assert expired.status_code == 400  # the token really is expired now
    response = beat(client, session_id, seq=2, **{"from": 2, "to": 3, "rate": 1})
    assert response.status_code == 200, response.get_json()
    assert [p.lesson_id for p in covered(app, world["lesson_id"])] == [world["lesson_id"]]
