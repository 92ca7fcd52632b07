import os
import subprocess
import sys

import sqlalchemy as sa

from school import db
from school.accounts.models import LoginThrottle, User
from tests.conftest import DATABASE_URL, csrf_from, sign_in
from tests.factories import make_org, make_user

WRONG = "wrong-password"


def test_member_signs_in_by_phone_and_sees_home(client):
    make_user(make_org(), phone="13912345678", name="张三")
    response = sign_in(client, "139 1234 5678", follow=True)
    assert response.status_code == 200
    assert "张三" in response.get_data(as_text=True)


def test_sign_in_by_username_ignores_case(client):
    make_user(username="wangwu")
    assert sign_in(client, "WangWu").status_code == 302


def test_phone_with_country_code_signs_in(client):
    make_user(phone="13912345678")
    assert sign_in(client, "+86 139-1234-5678").status_code == 302


def test_unknown_account_gets_the_same_message_as_a_wrong_password(client):
    make_user(phone="13912345678")
    wrong = sign_in(client, "13912345678", WRONG)
    unknown = sign_in(client, "13900000000", WRONG)
    assert wrong.status_code == unknown.status_code == 401
    message = "手机号、用户名或密码不正确"
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_repeated_wrong_passwords_lock_the_account_with_a_chinese_message(client, app):
    make_user(phone="13912345678")
    limit = app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    for _ in range(limit):
        sign_in(client, "13912345678", WRONG)
    locked = sign_in(client, "13912345678")  # even the right password waits out the lock
    assert locked.status_code == 429
    text = locked.get_data(as_text=True)
    assert "登录失败次数过多" in text and "分钟" in text
    assert int(locked.headers["Retry-After"]) > 0


def test_unknown_accounts_are_throttled_too(client, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        sign_in(client, "nobody-here", WRONG)
    assert sign_in(client, "nobody-here", WRONG).status_code == 429


def test_one_address_trying_many_accounts_is_throttled(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_ADDRESS", 4)
    user = make_user(phone="13912345678")
    for n in range(4):
        sign_in(client, f"1390000000{n}", WRONG)
    assert sign_in(client, user.phone).status_code == 429


def test_successful_sign_in_clears_the_account_failures(client):
    make_user(phone="13912345678")
    sign_in(client, "13912345678", WRONG)
    assert sign_in(client, "13912345678").status_code == 302
    keys = db.session.scalars(sa.select(LoginThrottle.key)).all()
    assert "account:13912345678" not in keys


def test_throttle_holds_across_processes(client, app):
    """Failures made by another process (another gunicorn worker) count here."""
    make_user(phone="13912345678")
    limit = app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    script = f"""
from school import create_app
from tests.conftest import sign_in
app = create_app({{"DATABASE_URL": {DATABASE_URL!r}}})
c = app.test_client()
for _ in range({limit}):
    assert sign_in(c, "13912345678", "{WRONG}").status_code in (401, 429)
"""
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert done.returncode == 0, done.stderr
    assert sign_in(client, "13912345678").status_code == 429


def test_inactive_account_cannot_sign_in(client):
    make_user(phone="13912345678", active=False)
    assert sign_in(client, "13912345678").status_code == 401


def test_sign_in_without_csrf_token_is_refused(client):
    make_user(phone="13912345678")
    response = client.post("/sign-in", data={"login": "13912345678", "password": "pass-1234"})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still signed out


def test_next_parameter_never_leaves_the_site(client):
    make_user(phone="13912345678")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = sign_in(client, "13912345678", url=f"/sign-in?next={target}")
        assert response.headers["Location"] == "/", target
        client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/me").get_data(as_text=True))})


def test_next_parameter_returns_to_the_page_asked_for(client):
    make_user(phone="13912345678")
    assert client.get("/me").headers["Location"].startswith("/sign-in?next=/me")
    response = sign_in(client, "13912345678", url="/sign-in?next=/me")
    assert response.headers["Location"] == "/me"


def test_session_cookie_is_httponly_and_lax(client):
    make_user(phone="13912345678")
    response = sign_in(client, "13912345678")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client):
    make_user(phone="13912345678")
    response = sign_in(client, "13912345678", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_passwords_are_stored_as_scrypt_hashes(client):
    user = make_user(phone="13912345678")
    stored = db.session.scalar(sa.select(User.password_hash).where(User.id == user.id))
    assert stored.startswith("scrypt:") and "pass-1234" not in stored
