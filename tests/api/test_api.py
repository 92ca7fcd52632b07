import json
import re

from tests.conftest import api_token, sign_in
from tests.factories import make_org, make_user


def test_me_without_sign_in_is_a_json_401(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json() == {"error": {"code": "unauthorized", "message": "请先登录。"}}


def test_json_sign_in_with_csrf_header_then_me(client):
    user = make_user(make_org(), phone="13912345678", name="李四")
    token = api_token(client)
    response = client.post(
        "/api/v1/session",
        json={"login": "13912345678", "password": "pass-1234"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    me = client.get("/api/v1/me").get_json()
    assert me["id"] == user.id and me["display_name"] == "李四" and me["roles"] == ["member"]


def test_json_call_without_csrf_header_is_refused(client):
    make_user(phone="13912345678")
    response = client.post("/api/v1/session", json={"login": "13912345678", "password": "pass-1234"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf_failed"
    assert client.get("/api/v1/me").status_code == 401


def test_json_wrong_password_is_a_generic_401(client):
    make_user(phone="13912345678")
    response = client.post(
        "/api/v1/session",
        json={"login": "13912345678", "password": "nope-nope"},
        headers={"X-CSRFToken": api_token(client)},
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "手机号、用户名或密码不正确。"


def test_malformed_json_is_a_400(client):
    token = api_token(client)
    for body in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe\x00garbage"):
        response = client.post(
            "/api/v1/session", data=body, content_type="application/json", headers={"X-CSRFToken": token}
        )
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "invalid"


def test_wrong_types_in_json_are_a_400(client):
    response = client.post(
        "/api/v1/session", json={"login": ["x"], "password": 5}, headers={"X-CSRFToken": api_token(client)}
    )
    assert response.status_code == 400


def test_oversized_body_is_a_413(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post(
        "/api/v1/session",
        data=json.dumps({"login": "x" * 5000}),
        content_type="application/json",
        headers={"X-CSRFToken": api_token(client)},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    page = client.post("/sign-in", data={"login": "x" * 5000})
    assert page.status_code == 413 and "内容过大" in page.get_data(as_text=True)


def test_invalid_utf8_in_forms_and_urls_is_never_a_500(client):
    assert (
        client.post(
            "/sign-in", data=b"login=%ff%fe&password=%c3%28", content_type="application/x-www-form-urlencoded"
        ).status_code
        == 400
    )
    assert client.get("/sign-in?next=%ff%fe").status_code == 200
    make_user(make_org(), phone="13912345678", roles=[("admin", None)])
    sign_in(client, "13912345678")
    assert client.get("/members?q=%ff%fe%c3%28").status_code == 200
    assert client.get("/api/v1/members?q=%ff&page=%ff").status_code == 200


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_405_not_a_500(client):
    assert client.put("/api/v1/me").status_code in (400, 405)
    assert client.get("/sign-out").status_code == 405


def test_openapi_document_covers_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, (path, method)
    assert "User" in doc["components"]["schemas"]


def test_sign_out_through_the_api(client):
    make_user(phone="13912345678")
    token = api_token(client)
    client.post(
        "/api/v1/session",
        json={"login": "13912345678", "password": "pass-1234"},
        headers={"X-CSRFToken": token},
    )
    assert client.delete("/api/v1/session", headers={"X-CSRFToken": token}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401
