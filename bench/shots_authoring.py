"""Phone screenshots (360×740, Chinese) of course authoring, for eyeballing layout and feedback.

    python bench/shots_authoring.py [BASE_URL] [OUTDIR]      # defaults: http://127.0.0.1:5000 shots/

Needs a running site with the demo content AND its job worker (`make run` gives both), Debian's
/usr/bin/chromium and ffmpeg. Each run adds a draft course with two lessons, owned by lecturer1, and
publishes it (a demo site only).

The upload shot throttles the browser's upload to 256 KB/s (CDP Network.emulateNetworkConditions).
The widget only moves its bar when a chunk is acknowledged and the site's chunks are 4 MB, so a
~3 MB file would go 0 → 100 in one PUT: the script rewrites the chunk size in the browser's copy of
the create-upload answer to 512 KB, so that the bar stops in between.
"""

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from page_shots import CHROMIUM, CHROMIUM_ARGS, PHONE, ROOT, demo_password, sign_in
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(ROOT))
from school.media.binaries import paths  # noqa: E402

SMALL_CHUNK = 512 * 1024
SRT = "1\n00:00:00,500 --> 00:00:03,000\n三会一课\n\n2\n00:00:03,500 --> 00:00:06,000\n主题党日\n"


def make_video(path: Path) -> Path:
    """A ~3 MB, 10 s 640×360 H.264/AAC MP4 from ffmpeg's test sources."""
    ffmpeg = paths()[0] or sys.exit("no ffmpeg found")
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2300k", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def make_pdf(path: Path) -> Path:
    """A two-page PDF with Chinese text (reportlab's built-in STSong-Light CID font)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path))
    for text in ("第一页：三会一课的频次", "第二页：会议记录要点"):
        pdf.setFont("STSong-Light", 14)
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return path


def shoot_tall(page, path: str, out: Path, name: str) -> None:
    """Like shots.shoot, but grows the window to the page's height first, so that the fixed tab bar
    sits at the bottom instead of across the middle of a full-page capture."""
    if path:
        response = page.goto(path)
        if response is None or not response.ok:
            sys.exit(f"{path} answered {response and response.status}")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": PHONE["width"], "height": max(PHONE["height"], height)})
    file = out / f"{name}.png"
    page.screenshot(path=str(file))
    page.set_viewport_size(PHONE)
    print(file)


def snap(page, out: Path, name: str, note: str = "") -> None:
    """The window as it is (phone size), e.g. scrolled to an uploader."""
    file = out / f"{name}.png"
    page.screenshot(path=str(file))
    print(file, note)


def submit(page, button: str) -> None:
    with page.expect_navigation():
        page.click(button)


def uploader(purpose: str) -> str:
    return f"div.uploader[data-upload={purpose}]"


def wait_for_text(page, purpose: str, pattern: str, seconds: float = 60) -> str:
    """Wait until the uploader's message matches a regular expression; returns the message."""
    handle = page.locator(f"{uploader(purpose)} .upload-status p:nth-of-type(2)").element_handle()
    page.wait_for_function(
        "([el, re]) => new RegExp(re).test(el.textContent)", arg=[handle, pattern], timeout=seconds * 1000
    )
    return handle.inner_text()


def upload_and_wait_for_reload(page, purpose: str, file: Path, seconds: float = 120) -> None:
    with page.expect_navigation(timeout=seconds * 1000):
        page.set_input_files(f"{uploader(purpose)} input[type=file]", str(file))


def small_chunks(route) -> None:
    """Let the create-upload call through, but hand the page a smaller chunk size."""
    if route.request.method != "POST":
        return route.continue_()
    response = route.fetch()
    data = response.json()
    if response.ok and "chunk_size" in data:
        data["chunk_size"] = SMALL_CHUNK
    route.fulfill(response=response, json=data)


def main() -> int:
    base = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000").rstrip("/")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "shots")
    out.mkdir(parents=True, exist_ok=True)
    password = demo_password()
    files = Path(tempfile.mkdtemp(prefix="shots-authoring-"))
    video, pdf, srt, fake = (
        files / "支部党员大会.mp4",
        files / "学习手册.pdf",
        files / "字幕.srt",
        files / "讲话稿.mp4",
    )
    make_video(video)
    make_pdf(pdf)
    srt.write_text(SRT, encoding="utf-8")
    fake.write_text("这是一份讲话稿的文字，不是视频。\n" * 40, encoding="utf-8")
    print(f"test video: {video.stat().st_size / 1024 / 1024:.1f} MB")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=base)
        context.set_default_timeout(15_000)
        page = context.new_page()
        sign_in(page, "lecturer1", password)
        shoot_tall(page, "/teach", out, "teach-my-courses")

        page.fill("#title", f"两学一做专题（截图 {time.strftime('%H:%M')}）")
        submit(page, "form[action$='/teach/courses'] button[type=submit]")
        course_url = page.url
        page.fill("#description", "面向支部党员的专题学习，每课配短视频、字幕和学习资料。")
        page.fill("#tags", "专题学习, 支部工作")
        submit(page, "form.card:has(#description) button[type=submit]")
        page.fill("form[action$='/lessons'] input[name=lesson-title]", "支部党员大会")
        submit(page, "form[action$='/lessons'] button[type=submit]")
        lesson_url = page.url
        page.fill("#body_md", "## 学习要点\n\n- 按时召开\n- **如实记录**\n\n会前一周通知全体党员。")
        page.fill("#credit_hours", "0.5")
        submit(page, "form.card:has(#body_md) button[type=submit]")
        shoot_tall(page, "", out, "teach-lesson-editor")

        # The upload, throttled, caught with its bar part-way.
        page.route("**/api/v1/uploads", small_chunks)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 150, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
        )
        page.set_input_files(f"{uploader('video')} input[type=file]", str(video))
        bar = page.locator(f"{uploader('video')} progress").element_handle()
        page.wait_for_function("bar => bar.value >= 20 && bar.value <= 80", arg=bar, timeout=60_000)
        page.locator(uploader("video")).scroll_into_view_if_needed()
        snap(page, out, "teach-upload-progress", f"(bar at {bar.evaluate('b => b.value')})")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        page.unroute("**/api/v1/uploads")

        # The transcode, as the widget shows it, then as the page shows it after a reload.
        print("  ", wait_for_text(page, "video", "正在转为|已就绪|无法使用", 60))
        snap(page, out, "teach-transcode-widget")
        page.reload()
        if page.locator(".job").count():
            shoot_tall(page, "", out, "teach-transcode-after-reload")
            with page.expect_navigation(timeout=120_000):  # the .job watcher reloads when ready
                pass
        shoot_tall(page, "", out, "teach-lesson-video-ready")

        upload_and_wait_for_reload(page, "subtitle", srt)
        upload_and_wait_for_reload(page, "attachment", pdf)
        for _ in range(20):  # the worker reads the PDF's text
            if "正在读取文字" not in page.locator("main").inner_text():
                break
            page.wait_for_timeout(1000)
            page.reload()
        submit(page, "form[action$='/state'] button[type=submit]")
        shoot_tall(page, "", out, "teach-lesson-published")

        # A file that only claims to be a video: the transcode refuses it with a reason.
        page.goto(course_url)
        page.fill("form[action$='/lessons'] input[name=lesson-title]", "讲话稿（上传失败示例）")
        submit(page, "form[action$='/lessons'] button[type=submit]")
        page.set_input_files(f"{uploader('video')} input[type=file]", str(fake))
        print("  ", wait_for_text(page, "video", "无法使用|上传失败", 90))
        snap(page, out, "teach-upload-failed-widget")
        shoot_tall(page, page.url, out, "teach-upload-failed-page")

        # Too large (the limit lowered in the page for the shot).
        page.goto(course_url)
        page.eval_on_selector(uploader("cover"), "el => { el.dataset.maxBytes = String(1024 * 1024); }")
        page.locator(uploader("cover")).scroll_into_view_if_needed()
        page.set_input_files(
            f"{uploader('cover')} input[type=file]",
            files=[{"name": "封面.png", "mimeType": "image/png", "buffer": bytes(3 * 1024 * 1024)}],
        )
        snap(page, out, "teach-cover-too-large")

        submit(page, "form[action$='/state'] button[type=submit]")
        shoot_tall(page, "", out, "teach-course-editor")
        context.close()

        # The member's side.
        context = browser.new_context(locale="zh-CN", viewport=PHONE, base_url=base)
        page = context.new_page()
        sign_in(page, "member1", password)
        course_id = re.search(r"/teach/courses/(\d+)", course_url).group(1)
        lesson_id = re.search(r"/teach/lessons/(\d+)", lesson_url).group(1)
        shoot_tall(page, f"/courses/{course_id}", out, "member-course")
        page.goto(f"/lessons/{lesson_id}")
        page.wait_for_function("document.querySelector('video.player').readyState >= 1", timeout=15_000)
        shoot_tall(page, "", out, "member-lesson-player")
        context.close()
        browser.close()
    shutil.rmtree(files, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
