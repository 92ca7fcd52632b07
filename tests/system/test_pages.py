from school.media import binaries
from tests.conftest import sign_in
from tests.factories import make_org, make_organizer, make_user


def test_error_pages_speak_chinese(client):
    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert 'lang="zh-CN"' in html and "页面不存在" in html


def test_forbidden_page_is_chinese(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    response = client.get("/members")
    assert response.status_code == 403 and "没有权限" in response.get_data(as_text=True)


def test_every_response_carries_security_headers(client):
    for url in ("/sign-in", "/no-such-page", "/api/v1/me", "/manifest.webmanifest"):
        headers = client.get(url).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_pages_load_no_external_resources(client):
    make_user(make_org(), phone="13912345678")
    html = client.get("/sign-in").get_data(as_text=True)
    sign_in(client, "13912345678")
    html += client.get("/").get_data(as_text=True)
    assert "http://" not in html and "https://" not in html


def test_manifest_makes_the_site_installable(client):
    response = client.get("/manifest.webmanifest")
    data = response.get_json(force=True)
    assert response.mimetype == "application/manifest+json"
    assert data["name"] == "手机党校" and data["display"] == "standalone"
    for icon in data["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_member_home_has_the_member_sections_and_tab_bar(client):
    make_user(make_org("一支部"), phone="13912345678")
    sign_in(client, "13912345678")
    html = client.get("/").get_data(as_text=True)
    assert "我的学习" in html and "一支部" in html
    for tab in ("首页", "课程", "搜索", "我的"):
        assert tab in html
    assert "我管理的组织" not in html


def test_lecturers_get_a_teaching_tab_and_members_do_not(app, client):
    make_user(roles=[("lecturer", None)], phone="13800000001")
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000001")
    assert 'href="/teach"' in client.get("/search").get_data(as_text=True)
    member = app.test_client()
    sign_in(member, "13800000009")
    assert 'href="/teach"' not in member.get("/search").get_data(as_text=True)


def test_organizer_home_lists_their_orgs_with_head_counts(client):
    branch = make_org("一支部")
    make_user(branch)
    make_organizer(branch, phone="13800000001")
    sign_in(client, "13800000001")
    html = client.get("/").get_data(as_text=True)
    assert "我管理的组织" in html and "1 名党员" in html


def test_healthz_answers(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_doctor_reports_tools_and_backends(app):
    from alembic import command

    from school.system.cli import alembic_config

    with app.app_context():
        command.stamp(alembic_config(), "head")
    result = app.test_cli_runner().invoke(app.cli, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in ("ffmpeg", "ffprobe", "database", "queue", "media", "index"):
        assert name in result.output


def test_doctor_fails_when_ffmpeg_is_missing(app, monkeypatch):
    monkeypatch.setattr(binaries, "paths", lambda: (None, None))
    result = app.test_cli_runner().invoke(app.cli, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "not found" in result.output


def test_ffmpeg_is_found_and_runs():
    ffmpeg, ffprobe = binaries.paths()
    assert binaries.version(ffmpeg).startswith("ffmpeg version")
    assert binaries.version(ffprobe).startswith("ffprobe version")
