"""Real headless Chromium against a live gunicorn serving the demo content, at phone size (360 px).

The live server gets its own SQLite instance in a temp folder, set up with the same commands a deploy
runs (`db upgrade`, `content load content/demo`); the in-process test database is not involved.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bench.live_site import (
    BIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    free_port,
    instance_env,
    set_up_instance,
    wait_healthy,
)

PASSWORD = "dangxiao2026"
PHONE = {"width": 360, "height": 740}

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

_missing = [
    what
    for what, ok in (
        ("the playwright Python package", sync_playwright is not None),
        (CHROMIUM, Path(CHROMIUM).exists()),
    )
    if not ok
]
if _missing:
    _reason = f"browser tests need {' and '.join(_missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def clean():
    """Replaces conftest's per-test table cleaning: these tests never touch the in-process database."""
    yield


@pytest.fixture(scope="module")
def live_server():
    """Base URL of gunicorn (2 workers) serving a fresh SQLite instance with the demo content."""
    folder = Path(tempfile.mkdtemp(prefix="school-browser-"))
    port = free_port()
    env = instance_env(folder, port)
    set_up_instance(env)
    log = folder / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 (fixed arguments, our own binaries)
            [str(BIN / "gunicorn"), "-c", "school/gunicorn_conf.py", "app:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/healthz", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, live_server):
    """A fresh phone-sized Chinese browser tab (no cookies) with base_url set to the live server."""
    context = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=live_server)
    context.set_default_timeout(5000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, login: str, password: str = PASSWORD) -> None:
    """Sign in through the real form."""
    page.goto("/sign-in")
    page.fill("#login", login)
    page.fill("#password", password)
    submit(page, "form.card button[type=submit]")


def submit(page, button: str) -> None:
    """Click a submit button and wait for the page it leads to (after any redirect)."""
    with page.expect_navigation():
        page.click(button)


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_sign_in_page_is_chinese_and_light(page, live_server):
    bodies: dict[str, int] = {}
    page.on("response", lambda r: bodies.setdefault(r.url, len(r.body())) if r.ok else None)
    page.goto("/sign-in", wait_until="networkidle")

    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "登录" in page.title()
    # Headless Chromium does not always fetch the manifest and favicon; a phone would.
    linked = page.eval_on_selector_all(
        "link[rel=stylesheet], link[rel=manifest], link[rel~=icon], img",
        "els => els.map(e => e.href || e.src)",
    )
    fetched_by_browser = set(bodies)
    for url in linked:
        if url not in bodies:
            bodies[url] = len(page.request.get(url).body())
    total = sum(bodies.values())
    for url, size in sorted(bodies.items()):
        note = "" if url in fetched_by_browser else "  (not loaded by headless Chromium; fetched)"
        print(f"{size:>7} {url.removeprefix(live_server)}{note}")
    print(f"sign-in page weight: {total} bytes")
    assert total <= 100 * 1024


def test_member_signs_in_and_sees_tab_bar(page, live_server):
    sign_in(page, "member1")

    assert page.url == live_server + "/"
    assert page.locator("nav.tabbar a").all_inner_texts() == ["首页", "课程", "搜索", "我的"]
    assert page_width(page) <= PHONE["width"]


def test_recent_searches_are_per_account_and_can_be_cleared(page):
    sign_in(page, "member1")
    for words in ("党费", "三会一课"):
        page.goto("/search?q=" + words)
    assert page.locator("#recent a").all_inner_texts() == ["党费"]

    page.click("#recent-clear")
    assert page.locator("#recent").is_hidden()
    page.goto("/search?q=防瘫预警")
    assert page.locator("#recent a").count() == 0  # 三会一课 went with the rest

    # Someone else signing in on the same phone does not see member1's searches.
    page.goto("/me")
    submit(page, "form[action$='/sign-out'] button[type=submit]")
    sign_in(page, "member2")
    page.goto("/search?q=党员")
    assert page.locator("#recent a").count() == 0


def test_organizer_member_list_fits_phone(page):
    sign_in(page, "org-district")
    page.goto("/members")
    items = page.locator("ul.list li")
    before = items.count()
    assert before > 1
    name = items.first.locator(".name").inner_text().strip()
    assert page_width(page) <= PHONE["width"]

    page.fill("#q", name)
    submit(page, "form[role=search] button[type=submit]")
    assert "q=" in page.url

    names = items.locator(".name").all_inner_texts()
    assert 0 < len(names) < before
    assert all(name in n for n in names)
    assert page_width(page) <= PHONE["width"]


def test_large_text_mode_applies(page):
    sign_in(page, "member2")
    page.goto("/me")
    page.check("#large_text")
    submit(page, "form[action$='/me/preferences'] button[type=submit]")

    assert "large-text" in (page.get_attribute("html", "class") or "").split()
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "20px"


def test_wrong_password_shows_chinese_error(page):
    sign_in(page, "lecturer1", "not-the-password")

    assert "不正确" in page.locator(".flash-error").inner_text()
