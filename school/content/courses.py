"""Load course folders (content/<set>/courses/<code>/course.yaml) through the real pipeline.

Media and PDFs marked `generate` are made here (ffmpeg lavfi sources, reportlab), so no media
files live in git; lesson media then goes through the same transcode job as an upload, run inline
so that `make run` starts with playable lessons. Idempotent: courses and lessons match by code,
and media, documents and subtitles already present are left alone.
"""

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import yaml
from flask import current_app

from school import db
from school.accounts.models import User
from school.content.service import Summary, read_text
from school.courses import service as courses
from school.courses.models import Course, Lesson
from school.errors import Invalid
from school.jobs import service as jobs
from school.media import binaries
from school.media import service as media


def course_folders(folder: Path) -> list[Path]:
    """The course folders of a content set, in name order."""
    return sorted(p.parent for p in (folder / "courses").glob("*/course.yaml"))


def _ffmpeg(*args: str) -> None:
    ffmpeg, _probe = binaries.paths()
    if not ffmpeg:
        raise Invalid("ffmpeg is missing: run `flask --app app doctor`")
    done = subprocess.run(  # noqa: S603 # nosec B603 # our ffmpeg, fixed lavfi arguments
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise Invalid(f"ffmpeg could not generate demo media: {done.stderr[-500:]}")


def generate_media(spec: dict, target: Path) -> Path:
    """A short test video (testsrc2 + tone) or audio (tone) from ffmpeg's lavfi sources."""
    seconds = str(int(spec.get("seconds", 20)))
    if spec.get("generate") == "audio":
        out = target.with_suffix(".mp3")
        _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=44100",
            "-t",
            seconds,
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            str(out),
        )
    else:
        out = target.with_suffix(".mp4")
        _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={spec.get('size', '640x360')}:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            seconds,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(out),
        )
    return out


def generate_cover(color: str, target: Path) -> Path:
    out = target.with_suffix(".jpg")
    safe = color if color.startswith("#") and len(color) <= 9 and color[1:].isalnum() else "#b71c1c"
    _ffmpeg("-f", "lavfi", "-i", f"color=c={safe}:s=640x360", "-frames:v", "1", str(out))
    return out


def generate_pdf(source_text: str, target: Path, title: str) -> Path:
    """A PDF of plain paragraphs (pages split at `---page---`), Chinese set in STSong-Light."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(target), pagesize=A4)
    pdf.setTitle(title)
    width, height = A4
    for page in source_text.split("---page---"):
        y = height - 72
        pdf.setFont("STSong-Light", 12)
        for paragraph in page.strip().splitlines():
            text = paragraph.strip().lstrip("#").strip()
            while text:
                line, text = text[:38], text[38:]  # ~38 CJK characters fit one A4 line at 12 pt
                pdf.drawString(60, y, line)
                y -= 20
                if y < 72:
                    pdf.showPage()
                    pdf.setFont("STSong-Light", 12)
                    y = height - 72
            y -= 8
        pdf.showPage()
    pdf.save()
    return target


def load_courses(folder: Path, tick: Callable[[str], None] = lambda _s: None) -> Summary:
    """Load every course folder; each course is committed on its own."""
    summary = Summary()
    for course_dir in course_folders(folder):
        data = yaml.safe_load(read_text(course_dir / "course.yaml")) or {}
        try:
            _load_course(course_dir, data, summary, tick)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return summary


def _user(username: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.username == str(username).lower()))
    if user is None:
        raise Invalid(f"unknown lecturer {username}")
    return user


def _load_course(course_dir: Path, data: dict, summary: Summary, tick) -> None:
    code = data.get("code") or course_dir.name
    course = db.session.scalar(sa.select(Course).where(Course.code == code))
    owner = _user(data["owner"])
    if course is None:
        course = courses.create_course(
            owner, data["title"], data.get("description", ""), data.get("tags") or [], code=code
        )
        summary.count("courses", "created")
    elif (course.title, course.description.strip(), sorted(course.tags)) != (
        data["title"],
        (data.get("description") or "").strip(),
        sorted(courses.parse_tags(data.get("tags") or [])),
    ):
        courses.update_course(course, data["title"], data.get("description", ""), data.get("tags") or [])
        summary.count("courses", "updated")
    else:
        summary.count("courses", "unchanged")
    audience = data.get("audience", "all")  # "plan": only members a study plan assigns it to
    if audience != course.audience:
        courses.update_course(course, course.title, course.description, course.tags, audience)
    for username in data.get("co_lecturers") or []:
        if _user(username).id not in course.co_lecturer_ids:
            courses.add_co_lecturer(course, username)
    work = Path(tempfile.mkdtemp(prefix="content-"))
    try:
        cover = data.get("cover") or {}
        if cover and not course.cover_path:
            if cover.get("file"):
                image = work / ("cover" + Path(cover["file"]).suffix)
                shutil.copyfile(course_dir / cover["file"], image)
            else:
                image = generate_cover(str(cover.get("color", "#b71c1c")), work / "cover")
            media.set_cover(course, image)

        for position, spec in enumerate(data.get("lessons") or [], 1):
            _load_lesson(course, course_dir, spec, position, work, summary)
            tick("lessons")
        if (course_dir / "quiz.yaml").exists():
            from school.content.quizzes import load_quiz

            load_quiz(course, course_dir / "quiz.yaml", summary)
        if data.get("state") == "published" and course.state != "published":
            courses.set_course_state(course, "published", db.utcnow())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load_lesson(
    course: Course, course_dir: Path, spec: dict, position: int, work: Path, summary: Summary
) -> None:
    lesson = db.session.scalar(sa.select(Lesson).where(Lesson.code == spec["code"]))
    body = read_text(course_dir / spec["text"]) if spec.get("text") else ""
    fields = (spec["title"], body, spec.get("credit_hours", 0), spec.get("completion", "watch"))
    if lesson is None:
        lesson = courses.create_lesson(course, spec["title"], code=spec["code"])
        courses.update_lesson(lesson, *fields)
        summary.count("lessons", "created")
    elif (lesson.title, lesson.body_md, courses.parse_credit(fields[2]), lesson.completion) != (
        spec["title"],
        body,
        courses.parse_credit(fields[2]),
        fields[3],
    ):
        courses.update_lesson(lesson, *fields)
        summary.count("lessons", "updated")
    else:
        summary.count("lessons", "unchanged")
    lesson.position = position
    if spec.get("media") and lesson.media_id is None:
        _load_media(lesson, course_dir, spec["media"], work)
    if spec.get("subtitles") and not lesson.subtitles:
        media.add_subtitles(lesson, (course_dir / spec["subtitles"]).read_bytes())
    names = {a.filename for a in lesson.attachments}
    for item in spec.get("attachments") or []:
        name = item.get("name") or Path(item.get("file") or item.get("source")).name
        if name in names:
            continue
        if item.get("generate") == "pdf":
            path = generate_pdf(read_text(course_dir / item["source"]), work / "doc.pdf", name)
        else:
            path = work / "upload"
            shutil.copyfile(course_dir / item["file"], path)
        attachment = media.add_attachment(lesson, path, name)
        db.session.commit()
        _run_jobs_of(attachment_id=attachment.id)
    ready = lesson.completion != "watch" or lesson.media_id is not None
    if spec.get("state", "published") == "published" and lesson.state != "published" and ready:
        courses.set_lesson_state(lesson, "published")


def _load_media(lesson: Lesson, course_dir: Path, spec: dict, work: Path) -> None:
    if "file" in spec:
        source = work / "upload"
        shutil.copyfile(course_dir / spec["file"], source)
        name = spec["file"]
    else:
        source = generate_media(spec, work / "media")
        name = f"{lesson.code}{source.suffix}"
    asset = media.add_media(lesson, source, name, None)
    db.session.commit()
    # The same transcode job an upload gets, run here so the demo is playable at once.
    jobs.run(asset.job_id, current_app.config)
    db.session.refresh(lesson)


def _run_jobs_of(attachment_id: int) -> None:
    from school.jobs.models import Job

    for job in db.session.scalars(
        sa.select(Job).where(Job.kind == "media.extract_text", Job.state == "queued")
    ):
        if job.args.get("attachment_id") == attachment_id:
            jobs.run(job.id, current_app.config)
