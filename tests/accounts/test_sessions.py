import sqlalchemy as sa

from school import db
from school.accounts import service
from school.accounts.models import User
from tests.conftest import csrf_from, sign_in
from tests.factories import make_org, make_user


def post_form(client, url, data, page="/me"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_deactivated_users_open_session_ends_on_next_request(client):
    user = make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    assert client.get("/").status_code == 200
    service.set_active(db.session.get(User, user.id), False)
    db.session.commit()
    assert client.get("/").status_code == 302


def test_sign_out_everywhere_ends_sessions_on_other_devices(app):
    make_user(make_org(), phone="13912345678")
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, "13912345678")
    sign_in(laptop, "13912345678")
    assert post_form(phone, "/me/sign-out-everywhere", {}).status_code == 302
    assert phone.get("/").status_code == 302
    assert laptop.get("/").status_code == 302


def test_password_change_keeps_this_device_and_ends_the_others(app):
    make_user(make_org(), phone="13912345678")
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, "13912345678")
    sign_in(laptop, "13912345678")
    response = post_form(
        phone, "/me/password", {"current": "pass-1234", "new": "new-pass-5678", "confirm": "new-pass-5678"}
    )
    assert response.status_code == 302
    assert phone.get("/").status_code == 200
    assert laptop.get("/").status_code == 302
    assert sign_in(app.test_client(), "13912345678", "new-pass-5678").status_code == 302


def test_password_change_with_wrong_current_password_changes_nothing(client):
    user = make_user(make_org(), phone="13912345678")
    before = user.password_hash
    sign_in(client, "13912345678")
    response = post_form(
        client, "/me/password", {"current": "nope-nope", "new": "new-pass-5678", "confirm": "new-pass-5678"}
    )
    assert response.status_code == 400
    assert "当前密码不正确" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before


def test_form_post_without_csrf_token_is_refused_and_changes_nothing(client):
    user = make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    response = client.post("/me/preferences", data={"language": "en", "large_text": "y"})
    assert response.status_code == 400
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert fresh.language is None and fresh.large_text is False


def test_account_created_by_someone_else_must_change_password_first(client):
    make_user(make_org(), phone="13912345678", must_change_password=True)
    sign_in(client, "13912345678")
    assert client.get("/").headers["Location"] == "/me/password"
    assert client.get("/me").headers["Location"] == "/me/password"
    api = client.get("/api/v1/me")
    assert api.status_code == 403
    assert api.get_json()["error"]["code"] == "password_change_required"
    post_form(
        client,
        "/me/password",
        {"current": "pass-1234", "new": "my-own-pass-1", "confirm": "my-own-pass-1"},
        page="/me/password",
    )
    assert client.get("/").status_code == 200


def test_weak_new_password_is_refused_with_a_reason(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    response = post_form(client, "/me/password", {"current": "pass-1234", "new": "1234", "confirm": "1234"})
    assert response.status_code == 400
    assert "至少需要 8 位" in response.get_data(as_text=True)


def test_language_preference_switches_the_interface_to_english(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    assert "首页" in client.get("/").get_data(as_text=True)
    post_form(client, "/me/preferences", {"language": "en"})
    assert "Home" in client.get("/").get_data(as_text=True)


def test_large_text_mode_is_kept_per_user(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    post_form(client, "/me/preferences", {"language": "", "large_text": "y"})
    assert 'class="large-text"' in client.get("/").get_data(as_text=True)


def test_browser_language_is_used_when_the_user_chose_none(client):
    page = client.get("/sign-in", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in page.get_data(as_text=True)
    default = client.get("/sign-in", headers={"Accept-Language": "fr"})
    assert "登录" in default.get_data(as_text=True) and 'lang="zh-CN"' in default.get_data(as_text=True)


def test_api_token_works_without_cookie_and_stops_when_revoked(app):
    user = make_user(make_org(), phone="13912345678")
    token, raw = service.create_token(user, "report script")
    db.session.commit()
    client = app.test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.get_json()["id"] == user.id
    service.revoke_token(user, token.id, db.utcnow())
    db.session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_only_token_hashes_are_stored(app):
    user = make_user(phone="13912345678")
    _token, raw = service.create_token(user, "x")
    db.session.commit()
    stored = db.session.execute(sa.text("SELECT token_hash FROM api_token")).scalar()
    assert raw not in stored and len(stored) == 64


def test_tokens_are_refused_on_pages(app):
    user = make_user(make_org(), phone="13912345678")
    _token, raw = service.create_token(user, "x")
    db.session.commit()
    page = app.test_client().get("/", headers={"Authorization": f"Bearer {raw}"})
    assert page.status_code == 302  # pages need a signed-in session


def test_revoking_another_users_token_is_refused(client):
    owner = make_user(make_org(), phone="13912345678")
    token, _raw = service.create_token(owner, "x")
    db.session.commit()
    make_user(make_org(), phone="13912345679")
    sign_in(client, "13912345679")
    response = post_form(client, f"/me/tokens/{token.id}/revoke", {})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(type(token), token.id).revoked_at is None
