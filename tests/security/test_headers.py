"""Security headers on every response, found by walking the url_map (a new route is covered), and
cookie flags over plain HTTP, HTTPS and behind a trusted proxy."""

import functools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.routing import IntegerConverter

from school import create_app
from tests.conftest import DATABASE_URL, sign_in
from tests.factories import make_lesson, make_org, make_user

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


class InlineCode(HTMLParser):
    """Collects what a `script-src 'self'; style-src 'self'` policy would block in a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._script_type: str | None = None

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, _value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=>")
            if name in ("href", "src", "action", "formaction") and (_value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:>")
        if tag == "script" and "src" not in names:
            self._script_type = names.get("type") or "text/javascript"
        if tag == "style":
            self.found.append("<style>")

    def handle_data(self, data):
        # JSON data islands are never run; any other inline script body is.
        if self._script_type is not None and self._script_type != "application/json" and data.strip():
            self.found.append(f"<script> body: {data.strip()[:40]}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script_type = None


def blocked_inline(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def assert_security_headers(response, what: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert csp, f"{what}: no CSP"
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    script_src = directives.get("script-src", directives.get("default-src", ""))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    # Framing: refused by CSP frame-ancestors on pages, and X-Frame-Options for old browsers.
    assert headers.get("X-Frame-Options") == "DENY", what
    if response.mimetype == "text/html":
        assert directives.get("frame-ancestors") == "'none'", what
        assert directives.get("style-src") == "'self'", what
        assert directives.get("object-src") == "'none'", what
    assert "Strict-Transport-Security" not in headers, f"{what}: HSTS over plain HTTP"


def fill(rule, ids: dict) -> str:
    """A URL for the rule, with real ids where the data has them, else 1 (a 404 is fine)."""
    values = dict(rule.defaults or {})
    for name in rule._converters:
        if rule.endpoint == "static":
            values[name] = "css/site.css"
        else:
            converter = rule._converters[name]
            is_int = isinstance(converter, IntegerConverter)
            values[name] = ids.get(name, 1) if is_int else ids.get(name, "x")
    return rule.build(values, append_unknown=False)[1]


def get_urls(app, ids: dict) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            urls.append(fill(rule, ids))
    return sorted(set(urls))


@pytest.fixture()
def data():
    tree_branch = make_org("支部", "branch", make_org("街道", "street"))
    admin = make_user(tree_branch, roles=[("admin", None), ("member", None)], phone="13800000001")
    member = make_user(tree_branch, phone="13800000002")
    lesson = make_lesson()
    return {
        "org_id": tree_branch.id,
        "user_id": member.id,
        "course_id": lesson.course_id,
        "lesson_id": lesson.id,
        "admin": admin,
    }


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "admin"])
def test_every_get_route_answers_with_security_headers(app, client, data, signed_in):
    if signed_in:
        sign_in(client, "13800000001")
    urls = get_urls(app, data)
    assert "/reports/hours" in urls and "/api/v1/me" in urls and "/static/css/site.css" in urls
    statuses = {}
    for url in urls:
        response = client.get(url)
        statuses[url] = response.status_code
        assert_security_headers(response, url)
        if response.mimetype == "text/html":
            assert blocked_inline(response.get_data(as_text=True)) == [], url
    assert any(s == 200 for s in statuses.values())
    if signed_in:  # the walk really reached pages, JSON and files, not only redirects
        assert statuses["/reports/hours"] == 200 and statuses["/api/v1/me"] == 200
        assert statuses[f"/lessons/{data['lesson_id']}"] == 200
    assert statuses["/static/css/site.css"] == 200


def test_error_pages_and_json_errors_carry_the_headers(app, client, data, monkeypatch):
    sign_in(client, "13800000001")
    for url in ("/no-such-page", "/api/v1/no-such-thing", "/orgs/99999999", "/api/v1/orgs/99999999"):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert_security_headers(response, url)
    assert_security_headers(client.post("/healthz"), "405")

    def crashing(view):
        @functools.wraps(view)  # keeps the access rule the view was declared with
        def crash(**kwargs):
            raise RuntimeError("boom")

        return crash

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    for endpoint in ("system.healthz", "api.me"):
        monkeypatch.setitem(app.view_functions, endpoint, crashing(app.view_functions[endpoint]))
    for url in ("/healthz", "/api/v1/me"):
        response = client.get(url)
        assert response.status_code == 500, url
        assert_security_headers(response, url)
    assert client.get("/api/v1/me").is_json


def test_media_files_get_a_sandboxing_policy(app, client, tmp_path):
    from tests.media.test_serving import published_lesson

    _lesson, attachment = published_lesson(app, tmp_path)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    response = client.get(f"/media/attachments/{attachment.id}/x?inline=1")
    assert response.status_code == 200
    assert_security_headers(response, "attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_https_responses_carry_hsts_and_http_ones_do_not(client):
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    secure = client.get("/sign-in", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    # Without TRUSTED_PROXIES a forwarded scheme is not believed (anyone could send the header).
    forged = client.get("/sign-in", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in forged.headers


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("dx_session=")]
    assert cookies, response.headers.getlist("Set-Cookie")
    return cookies[0]


def flags(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]} | {
        part.strip().lower() for part in cookie.split(";")[1:] if part.strip().lower().startswith("samesite")
    }


def test_cookies_are_httponly_lax_and_not_secure_on_plain_http(client):
    make_user(phone="13912345678")
    for response in (client.get("/sign-in"), sign_in(client, "13912345678")):
        cookie_flags = flags(session_cookie(response))
        assert "httponly" in cookie_flags and "samesite=lax" in cookie_flags
        assert "secure" not in cookie_flags
    # Only the session cookie exists: no remember-me, language or CSRF cookie to protect.
    names = {c.split("=")[0] for c in client.get("/me").headers.getlist("Set-Cookie")}
    assert names <= {"dx_session"}


def test_cookies_are_secure_over_https_and_with_cookie_secure(app, client, monkeypatch):
    make_user(phone="13912345678")
    response = sign_in(client, "13912345678", base_url="https://localhost")
    assert {"secure", "httponly", "samesite=lax"} <= flags(session_cookie(response))
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    response = app.test_client().get("/sign-in")
    assert {"secure", "httponly"} <= flags(session_cookie(response))


def test_behind_a_trusted_proxy_the_forwarded_scheme_makes_cookies_secure_and_adds_hsts():
    proxied = create_app({"DATABASE_URL": DATABASE_URL, "TESTING": True, "TRUSTED_PROXIES": 1})
    make_user(phone="13912345678")
    client = proxied.test_client()
    # (Flask-WTF checks the Referer on HTTPS form posts: the proxied request must be seen as HTTPS.)
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "Referer": "https://localhost/"}
    response = sign_in(client, "13912345678", headers=https)
    assert response.status_code == 302
    assert {"secure", "httponly", "samesite=lax"} <= flags(session_cookie(response))
    assert "Strict-Transport-Security" in response.headers
    plain = proxied.test_client().get("/sign-in", headers={"X-Forwarded-Proto": "http"})
    assert "secure" not in flags(session_cookie(plain))
    assert "Strict-Transport-Security" not in plain.headers


INLINE_HANDLER = re.compile(r"<[^>]*\s(on[a-z]+|style)\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)


def test_templates_have_no_inline_scripts_handlers_or_styles():
    offending = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT):
            offending += [f"{path.relative_to(TEMPLATES)}: {m.group(0)[:60]}" for m in pattern.finditer(text)]
        if re.search(r"<style[\s>]", text):
            offending.append(f"{path.relative_to(TEMPLATES)}: <style>")
    assert offending == []


def test_json_data_islands_are_escaped():
    """Data islands go through |tojson, which escapes `<`, so a `</script>` in data cannot end them."""
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S):
            assert "|tojson" in block.replace(" ", ""), path
