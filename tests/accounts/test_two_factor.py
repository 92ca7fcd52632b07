"""Two-factor sign-in: enrolment, the code step after the password, recovery codes, the per-role
requirement, turning it off and an organizer's or admin's reset."""

import time

import pyotp
import sqlalchemy as sa

from school import db
from school.accounts import service, two_factor
from school.accounts.models import RecoveryCode, TwoFactor, User
from tests.conftest import api_token, csrf_from, sign_in
from tests.factories import make_admin, make_org, make_organizer, make_user

PHONE = "13912345678"


def post_form(client, url, data, page):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def submit_code(client, code):
    return post_form(client, "/sign-in/code", {"code": code}, "/sign-in/code")


def enrolled(app, user) -> tuple[str, list[str]]:
    """Turn two-factor on for user; returns (secret, recovery codes).

    The confirming code is the previous step's (accepted by the one-step window), so the current
    code is still unused for the test's own sign-in.
    """
    with app.app_context():
        person = db.session.get(User, user.id)
        secret = two_factor.start_enrolment(person, app.config).secret
        previous = pyotp.TOTP(secret).at(time.time() - 30)
        codes = two_factor.confirm_enrolment(person, previous, db.utcnow())
        db.session.commit()
    return secret, codes


def is_enabled(app, user) -> bool:
    with app.app_context():
        return two_factor.is_enabled(db.session.get(User, user.id))


def next_code(secret: str) -> str:
    """The next step's code: fresh even after the current one was used (window of one step)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong(code: str) -> str:
    return f"{(int(code) + 500000) % 1000000:06d}"


def signed_in_with_code(client, secret, login=PHONE):
    assert sign_in(client, login).headers["Location"].endswith("/sign-in/code")
    response = submit_code(client, pyotp.TOTP(secret).now())
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


# --- enrolment ---------------------------------------------------------------------------------


def test_organizer_enrols_with_the_right_code_and_sees_recovery_codes_once(client, app):
    user = make_organizer(make_org(), phone=PHONE)
    sign_in(client, PHONE)
    assert "/me/two-factor" in client.get("/me").get_data(as_text=True)
    assert post_form(client, "/me/two-factor/setup", {}, "/me/two-factor").status_code == 302
    page = client.get("/me/two-factor").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page
    with app.app_context():
        secret = db.session.scalar(sa.select(TwoFactor.secret))
    assert two_factor.grouped(secret) in page
    code = pyotp.TOTP(secret).now()

    refused = post_form(client, "/me/two-factor/confirm", {"code": wrong(code)}, "/me/two-factor")
    assert refused.status_code == 400
    assert "验证码不正确" in refused.get_data(as_text=True)
    assert not is_enabled(app, user)

    accepted = post_form(
        client, "/me/two-factor/confirm", {"code": code[:3] + " " + code[3:]}, "/me/two-factor"
    )
    assert accepted.status_code == 200
    text = accepted.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert two_factor.is_enabled(user)
        hashes = db.session.scalars(sa.select(RecoveryCode.code_hash)).all()
    codes = [li.split("<")[0] for li in text.split('<ul class="recovery-codes"')[1].split("<li>")[1:]]
    assert len(codes) == len(hashes) == 10
    assert not any(code.replace("-", "") in h for code in codes for h in hashes)
    later = client.get("/me/two-factor").get_data(as_text=True)
    assert not any(code in later for code in codes)
    assert secret not in later and two_factor.grouped(secret) not in later


def test_members_cannot_enrol(client):
    make_user(make_org(), phone=PHONE)
    sign_in(client, PHONE)
    assert client.get("/me/two-factor").status_code == 403
    assert post_form(client, "/me/two-factor/setup", {}, "/me").status_code == 403


def test_enrolment_post_without_csrf_token_is_refused(client, app):
    make_organizer(make_org(), phone=PHONE)
    sign_in(client, PHONE)
    assert client.post("/me/two-factor/setup").status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(TwoFactor)) is None


# --- signing in ----------------------------------------------------------------------------


def test_password_alone_does_not_sign_in_and_the_pending_state_reaches_no_page(client, app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE))
    response = sign_in(client, PHONE, url="/sign-in?next=/me")
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in/code")
    for path in ("/", "/me", "/me/two-factor"):
        assert client.get(path).headers["Location"].startswith("/sign-in"), path
    assert client.get("/api/v1/me").status_code == 401
    page = client.get("/sign-in/code").get_data(as_text=True)
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page

    done = submit_code(client, pyotp.TOTP(secret).now())
    assert done.status_code == 302 and done.headers["Location"] == "/me"
    assert client.get("/me").status_code == 200


def test_users_without_two_factor_sign_in_with_the_password_only(client, app):
    enrolled(app, make_organizer(make_org()))
    make_organizer(make_org(), phone=PHONE)
    response = sign_in(client, PHONE)
    assert response.status_code == 302 and not response.headers["Location"].endswith("/sign-in/code")
    assert client.get("/me").status_code == 200


def test_a_used_code_cannot_be_used_again(app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE))
    first, second = app.test_client(), app.test_client()
    sign_in(first, PHONE)
    sign_in(second, PHONE)
    code = pyotp.TOTP(secret).now()
    assert submit_code(first, code).status_code == 302
    replay = submit_code(second, code)
    assert replay.status_code == 401
    assert second.get("/me").status_code == 302


def test_wrong_codes_count_as_failed_sign_ins_and_lock_the_account(client, app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE, username="zhangsan"))
    sign_in(client, "zhangsan")
    for _ in range(app.config["LOGIN_MAX_FAILURES_ACCOUNT"]):
        assert submit_code(client, wrong(pyotp.TOTP(secret).now())).status_code == 401
    locked = submit_code(client, pyotp.TOTP(secret).now())
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert client.get("/me").status_code == 302
    # the lock holds for the password step too, by phone as well as by username
    assert sign_in(app.test_client(), PHONE).status_code == 429


def test_right_password_does_not_clear_the_code_failures(client, app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE))
    limit = app.config["LOGIN_MAX_FAILURES_ACCOUNT"]
    for _ in range(limit):
        sign_in(client, PHONE)  # right password each time: the count goes on regardless
        submit_code(client, wrong(pyotp.TOTP(secret).now()))
    assert sign_in(client, PHONE).status_code == 429


def test_a_recovery_code_signs_in_once(client, app):
    user = make_organizer(make_org(), phone=PHONE)
    _secret, codes = enrolled(app, user)
    sign_in(client, PHONE)
    page = client.get("/sign-in/code?recovery=1").get_data(as_text=True)
    assert 'inputmode="numeric"' not in page
    typed = " " + codes[0].upper().replace("-", " - ") + " "
    assert submit_code(client, typed).status_code == 302
    assert client.get("/me").status_code == 200
    with app.app_context():
        assert two_factor.recovery_codes_left(db.session.get(User, user.id)) == 9

    again = app.test_client()
    sign_in(again, PHONE)
    assert submit_code(again, codes[0]).status_code == 401
    assert submit_code(again, codes[1]).status_code == 302


def test_an_expired_pending_sign_in_needs_the_password_again(client, app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE))
    sign_in(client, PHONE)
    token = csrf_from(client.get("/sign-in/code").get_data(as_text=True))
    with client.session_transaction() as session:
        pending = dict(session["two_factor_sign_in"])
        pending["at"] -= two_factor.PENDING_SECONDS + 1
        session["two_factor_sign_in"] = pending
    response = client.post("/sign-in/code", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert client.get("/me").status_code == 302
    with client.session_transaction() as session:
        assert "two_factor_sign_in" not in session


def test_the_code_page_without_a_password_sends_to_sign_in(client):
    assert client.get("/sign-in/code").headers["Location"] == "/sign-in"


def test_a_pending_sign_in_ends_when_the_password_is_reset_meanwhile(client, app):
    user = make_organizer(make_org(), phone=PHONE)
    secret, _codes = enrolled(app, user)
    sign_in(client, PHONE)
    with app.app_context():
        service.sign_out_everywhere(db.session.get(User, user.id))
        db.session.commit()
    response = submit_code(client, pyotp.TOTP(secret).now())
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert client.get("/me").status_code == 302


def test_api_session_sign_in_needs_the_code_too(client, app):
    secret, _codes = enrolled(app, make_organizer(make_org(), phone=PHONE))
    headers = {"X-CSRFToken": api_token(client)}
    without = client.post("/api/v1/session", json={"login": PHONE, "password": "pass-1234"}, headers=headers)
    assert without.status_code == 401
    assert without.get_json()["error"]["code"] == "two_factor_required"
    assert client.get("/api/v1/me").status_code == 401
    body = {"login": PHONE, "password": "pass-1234", "code": pyotp.TOTP(secret).now()}
    assert client.post("/api/v1/session", json=body, headers=headers).status_code == 200
    assert client.get("/api/v1/me").status_code == 200


# --- required per role ---------------------------------------------------------------------


def test_a_required_role_must_enrol_before_anything_else(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", "admin, organizer")
    org = make_org()
    make_organizer(org, phone=PHONE)
    assert sign_in(client, PHONE).status_code == 302
    for path in ("/", "/me", f"/orgs/{org.id}", "/me/password"):
        response = client.get(path)
        if path == "/me/password":
            assert response.status_code == 200  # a forced password change comes first
        else:
            assert response.headers["Location"] == "/me/two-factor", path
    refused = client.get("/api/v1/me")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "two_factor_setup_required"
    assert post_form(client, "/me/tokens", {"name": "x"}, "/me/two-factor").status_code == 302
    with app.app_context():
        assert not service.tokens_of(db.session.scalar(sa.select(User)))

    post_form(client, "/me/two-factor/setup", {}, "/me/two-factor")
    with app.app_context():
        secret = db.session.scalar(sa.select(TwoFactor.secret))
    done = post_form(client, "/me/two-factor/confirm", {"code": pyotp.TOTP(secret).now()}, "/me/two-factor")
    assert done.status_code == 200
    assert client.get("/").status_code == 200


def test_roles_not_listed_sign_in_as_before(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", "admin,organizer")
    make_user(make_org(), phone=PHONE)
    sign_in(client, PHONE)
    assert client.get("/").status_code == 200


def test_bearer_tokens_are_not_asked_to_enrol(client, app, monkeypatch):
    user = make_organizer(make_org(), phone=PHONE)
    with app.app_context():
        _token, raw = service.create_token(db.session.get(User, user.id), "script")
        db.session.commit()
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", "organizer")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200


# --- turning off and resetting ----------------------------------------------------------------


def test_turning_off_needs_a_current_code(client, app):
    user = make_organizer(make_org(), phone=PHONE)
    secret, codes = enrolled(app, user)
    signed_in_with_code(client, secret)
    refused = post_form(
        client, "/me/two-factor/disable", {"code": wrong(next_code(secret))}, "/me/two-factor"
    )
    assert refused.status_code == 400 and is_enabled(app, user)
    done = post_form(client, "/me/two-factor/disable", {"code": codes[3]}, "/me/two-factor")
    assert done.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
        assert db.session.scalar(sa.select(TwoFactor)) is None
    client.post("/sign-out", data={"csrf_token": csrf_from(client.get("/me").get_data(as_text=True))})
    assert not sign_in(client, PHONE).headers["Location"].endswith("/sign-in/code")


def test_turning_off_is_refused_while_the_role_requires_it(client, app, monkeypatch):
    user = make_organizer(make_org(), phone=PHONE)
    secret, _codes = enrolled(app, user)
    signed_in_with_code(client, secret)
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", "organizer")
    response = post_form(client, "/me/two-factor/disable", {"code": next_code(secret)}, "/me/two-factor")
    assert response.status_code == 403
    assert is_enabled(app, user)


def test_new_recovery_codes_replace_the_old_ones(client, app):
    user = make_organizer(make_org(), phone=PHONE)
    secret, old = enrolled(app, user)
    signed_in_with_code(client, secret)
    response = post_form(
        client, "/me/two-factor/recovery-codes", {"code": next_code(secret)}, "/me/two-factor"
    )
    assert response.status_code == 200
    with app.app_context():
        person = db.session.get(User, user.id)
        assert two_factor.recovery_codes_left(person) == 10
        assert not two_factor.verify(person, old[0], db.utcnow())


def test_admin_resets_a_lost_phone_and_the_member_is_signed_out(app):
    org = make_org()
    organizer = make_user(org, roles=[("organizer", org.id)], phone=PHONE)
    secret, _codes = enrolled(app, organizer)
    make_admin(username="root")
    phone, admin = app.test_client(), app.test_client()
    signed_in_with_code(phone, secret)
    sign_in(admin, "root")
    page = admin.get(f"/members/{organizer.id}").get_data(as_text=True)
    assert f"/members/{organizer.id}/reset-two-factor" in page
    response = post_form(admin, f"/members/{organizer.id}/reset-two-factor", {}, f"/members/{organizer.id}")
    assert response.status_code == 302
    assert not is_enabled(app, organizer)
    assert phone.get("/me").status_code == 302
    assert not sign_in(phone, PHONE).headers["Location"].endswith("/sign-in/code")


def test_organizers_cannot_reset_an_admins_two_factor(client, app):
    org = make_org()
    admin = make_user(org, roles=[("admin", None)], phone="13900000001")
    enrolled(app, admin)
    make_organizer(org, phone=PHONE)
    sign_in(client, PHONE)
    assert "reset-two-factor" not in client.get(f"/members/{admin.id}").get_data(as_text=True)
    response = post_form(client, f"/members/{admin.id}/reset-two-factor", {}, f"/members/{admin.id}")
    assert response.status_code == 403
    assert is_enabled(app, admin)


def test_reset_from_the_command_line(app):
    user = make_admin(username="root")
    enrolled(app, user)
    result = app.test_cli_runner().invoke(args=["accounts", "reset-two-factor", "root"])
    assert result.exit_code == 0, result.output
    assert not is_enabled(app, user)
