"""A member studies a lesson in real headless Chromium (360 px) against a live gunicorn: the player
reports what was really played, resumes where the member stopped, and the lesson completes with its 学时.

The live site gets a small content set of its own: the demo's organisations and people, and one
course with an 8-second generated video, so the journey takes seconds.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from bench.live_site import BIN, CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, instance_env, wait_healthy

PASSWORD = "dangxiao2026"
PHONE = {"width": 360, "height": 740}
SECONDS = 8

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

COURSE_YAML = f"""
code: player-check
title: 播放器检查课程
description: 浏览器测试用的短课程。
owner: lecturer1
state: published
lessons:
  - code: player-check-1
    title: 八秒短片
    credit_hours: 0.25
    text: lesson.md
    media: {{generate: video, seconds: {SECONDS}, size: 320x180}}
    subtitles: lesson.srt
    completion: watch
  - code: player-check-2
    title: 离线再看
    credit_hours: 0.25
    text: lesson.md
    media: {{generate: video, seconds: {SECONDS}, size: 320x180}}
    completion: watch
"""
QUIZ_YAML = """
lessons:
  player-check-1: {questions: 2, pass_percent: 100, attempts: 0, grading: highest}
questions:
  - code: q1
    lesson: player-check-1
    kind: truefalse
    stem: 三会一课中的“一课”是指按时上好党课。
    answer: true
    explanation: 三会一课：支部党员大会、支部委员会、党小组会，按时上好党课。
  - code: q2
    lesson: player-check-1
    kind: fill
    stem: 本课视频中说，今天学习____。
    answer: [三会一课, 三会 一课]
    explanation: 见视频字幕。
"""
SRT = "1\n00:00:00,000 --> 00:00:04,000\n同志们好\n\n2\n00:00:04,000 --> 00:00:08,000\n今天学习三会一课\n"


@pytest.fixture(autouse=True)
def clean():
    """Replaces conftest's per-test table cleaning: these tests never touch the in-process database."""
    yield


def flask(env: dict, *args: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own flask, fixed arguments)
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def site():
    """(base URL, SQLite database path) of gunicorn serving the short course."""
    folder = Path(tempfile.mkdtemp(prefix="school-learning-"))
    content = folder / "content"
    course = content / "courses" / "player-check"
    course.mkdir(parents=True)
    for name in ("orgs.yaml", "people.yaml"):
        shutil.copyfile(ROOT / "content" / "demo" / name, content / name)
    (course / "course.yaml").write_text(COURSE_YAML, encoding="utf-8")
    (course / "lesson.md").write_text("# 八秒短片\n\n看完这段短片。\n", encoding="utf-8")
    (course / "lesson.srt").write_text(SRT, encoding="utf-8")
    (course / "quiz.yaml").write_text(QUIZ_YAML, encoding="utf-8")
    port = free_port()
    env = instance_env(folder, port)
    flask(env, "db", "upgrade")
    flask(env, "content", "load", str(content))
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
        yield url, folder / "instance" / "school.db"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def query(database: Path, sql: str, *args):
    with sqlite3.connect(database) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, site):
    context = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=site[0])
    context.set_default_timeout(10000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, login: str) -> None:
    page.goto("/sign-in")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form.card button[type=submit]")


def is_beat(response) -> bool:
    return response.url.endswith("/beats") and response.request.method == "POST"


def open_lesson(page, lesson_id: int) -> dict:
    """Open the lesson page; the viewing session it starts."""
    with page.expect_response(
        lambda r: r.url.endswith("/viewings") and r.request.method == "POST"
    ) as started:
        page.goto(f"/lessons/{lesson_id}")
    assert started.value.status == 201
    page.wait_for_function("() => document.getElementById('lp-video').readyState >= 1")
    return started.value.json()


def play_until(page, seconds: float) -> None:
    page.evaluate("() => { const v = document.getElementById('lp-video'); v.muted = true; return v.play(); }")
    page.wait_for_function(f"() => document.getElementById('lp-video').currentTime >= {seconds}")


def pause(page) -> dict:
    """Pause; the beat it sends and the server's answer."""
    with page.expect_response(is_beat) as beat:
        page.evaluate("document.getElementById('lp-video').pause()")
    assert beat.value.status == 200, beat.value.text()
    return {"sent": json.loads(beat.value.request.post_data), "answer": beat.value.json()}


def watched(database: Path, lesson_id: int, member: str = "member1") -> list:
    rows = query(
        database,
        "SELECT watched_json FROM lesson_progress p JOIN user_account u ON u.id = p.user_id "
        "WHERE u.username = ? AND p.lesson_id = ?",
        member,
        lesson_id,
    )
    return json.loads(rows[0][0]) if rows else []


def test_member_watches_resumes_and_completes_a_lesson(page, site):
    _url, database = site
    (lesson_id,) = query(database, "SELECT id FROM lesson WHERE code = 'player-check-1'")[0]
    sign_in(page, "member1")

    session = open_lesson(page, lesson_id)
    assert session["kind"] == "watch" and session["coverage"] == 0
    assert SECONDS - 0.5 <= session["duration"] <= SECONDS + 0.5
    assert page.locator("#lp-watched").inner_text() == "已观看 0%"
    assert "0.25 学时" in page.locator("#lp-progress").inner_text()

    # Play the first 3 s, pause: one beat with what was played.
    play_until(page, 3)
    first = pause(page)
    assert first["sent"]["seq"] == 1 and first["sent"]["rate"] == 1
    assert first["sent"]["from"] < 0.5 and first["sent"]["to"] >= 3
    # Seeking while paused reports nothing; playing on from there does.
    page.evaluate("document.getElementById('lp-video').currentTime = 5")
    play_until(page, 6)
    second = pause(page)
    assert second["sent"]["seq"] == 2
    assert 4.9 <= second["sent"]["from"] <= 5.5 and second["sent"]["to"] >= 6
    stopped_at = second["sent"]["to"]
    recorded = watched(database, lesson_id)
    assert len(recorded) == 2 and recorded[0][0] < 0.5 and recorded[1][0] >= 4.9  # the skipped part is not
    assert page.locator("#lp-watched").inner_text() == f"已观看 {int(second['answer']['coverage'] * 100)}%"

    # Reload: a new session, and the player resumes where the member stopped.
    page.reload()
    page.wait_for_function("() => document.getElementById('lp-video').currentTime > 4")
    resumed = page.evaluate("document.getElementById('lp-video').currentTime")
    assert abs(resumed - stopped_at) < 0.6

    # Go back to the gap and play to the end: all of it is now watched; the quiz is still to pass.
    page.evaluate("document.getElementById('lp-video').currentTime = 2.5")
    play_until(page, 2.6)
    page.wait_for_function("() => document.getElementById('lp-video').ended", timeout=(SECONDS + 5) * 1000)
    page.wait_for_function("() => Number(document.getElementById('lp-bar').getAttribute('value')) >= 90")
    assert page.locator("#lp-done").is_hidden()
    assert "测验" in page.locator("#lp-status").inner_text()
    assert query(database, "SELECT count(*) FROM credit_entry")[0][0] == 0

    # The quiz: answers are not on the page before submitting; a wrong answer fails, a right one passes.
    with page.expect_navigation():
        page.locator("form[action$='/quiz'] button").click()
    assert "三会一课中的" in page.content() and "见视频字幕" not in page.content()
    page.check("input[type=radio][value=false]")
    page.fill("input[type=text]", "两学一做")
    with page.expect_navigation():
        page.click("#quiz-form button[type=submit]")
    assert "未通过" in page.locator("main").inner_text() and "见视频字幕" in page.content()
    page.goto(f"/lessons/{lesson_id}")
    with page.expect_navigation():
        page.locator("form[action$='/quiz'] button").click()
    page.check("input[type=radio][value=true]")
    page.fill("input[type=text]", "三会一课")
    with page.expect_navigation():
        page.click("#quiz-form button[type=submit]")
    assert "已通过" in page.locator("main").inner_text()
    assert page_width(page) <= PHONE["width"]

    # Back on the lesson: completed, and the 学时 is in the ledger once.
    page.goto(f"/lessons/{lesson_id}")
    page.locator("#lp-done").wait_for(state="visible")
    assert page.locator("#lp-done").inner_text() == "✓ 已完成"
    (progress,) = query(
        database,
        "SELECT p.covered_seconds / p.duration, p.completed_at FROM lesson_progress p "
        "JOIN user_account u ON u.id = p.user_id WHERE u.username = 'member1' AND p.lesson_id = ?",
        lesson_id,
    )
    assert progress[0] >= 0.9 and progress[1] is not None
    credits = query(
        database,
        "SELECT c.amount, c.source FROM credit_entry c JOIN user_account u ON u.id = c.user_id "
        "WHERE u.username = 'member1' AND c.ref_key = ?",
        f"lesson:{lesson_id}",
    )
    assert [(float(a), s) for a, s in credits] == [(0.25, "lesson")]
    page.goto("/me/record")
    assert "0.25" in page.locator("main").inner_text() and "八秒短片" in page.locator("main").inner_text()


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_beats_played_offline_arrive_later_and_a_second_device_takes_over(page, site):
    _url, database = site
    (lesson_id,) = query(database, "SELECT id FROM lesson WHERE code = 'player-check-2'")[0]
    sign_in(page, "member2")
    open_lesson(page, lesson_id)

    # The network drops while the video (already loaded) plays on: the beat waits in the page.
    play_until(page, 1)
    page.context.set_offline(True)
    play_until(page, 3)
    page.evaluate("document.getElementById('lp-video').pause()")
    page.wait_for_function(
        "() => Object.keys(localStorage).some(k => localStorage.getItem(k).includes('\"seq\"'))"
    )
    assert watched(database, lesson_id, "member2") == []
    # Back online: the queued beat goes out by itself and the played part is recorded.
    with page.expect_response(lambda r: is_beat(r) and r.status == 200, timeout=30000):
        page.context.set_offline(False)
    recorded = watched(database, lesson_id, "member2")
    assert len(recorded) == 1 and recorded[0][0] < 0.5 and recorded[0][1] >= 3

    # The same member opens the lesson on another device: the first one is told, and stops.
    other = page.context.browser.new_context(
        locale="zh-CN", viewport=PHONE, base_url=page.url.split("/lessons")[0]
    )
    try:
        second = other.new_page()
        sign_in(second, "member2")
        open_lesson(second, lesson_id)
        page.evaluate(
            "() => { const v = document.getElementById('lp-video'); v.muted = true; return v.play(); }"
        )
        page.locator("#lp-superseded").wait_for(state="visible", timeout=40000)
        assert "另一台设备" in page.locator("#lp-superseded").inner_text()
    finally:
        other.close()
