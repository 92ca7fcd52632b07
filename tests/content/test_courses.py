"""Course folders: the demo's are well formed; a small one loads through the real pipeline."""

from pathlib import Path

import sqlalchemy as sa
import yaml

from school import db
from school.courses.models import Course, Lesson
from school.media import subtitles
from school.media.models import Attachment, MediaAsset, SubtitleTrack

DEMO = Path(__file__).resolve().parents[2] / "content" / "demo"


def test_demo_courses_are_complete_and_their_subtitles_parse():
    folders = sorted((DEMO / "courses").glob("*/course.yaml"))
    assert len(folders) == 4
    codes, audiences = [], []
    for course_yaml in folders:
        data = yaml.safe_load(course_yaml.read_text(encoding="utf-8"))
        assert data["state"] == "published" and data["lessons"]
        audiences.append(data.get("audience", "all"))
        for lesson in data["lessons"]:
            codes.append(lesson["code"])
            assert (course_yaml.parent / lesson["text"]).exists()
            if lesson.get("subtitles"):
                cues = subtitles.parse((course_yaml.parent / lesson["subtitles"]).read_bytes())
                assert cues[-1].end_ms <= lesson["media"]["seconds"] * 1000
            for item in lesson.get("attachments") or []:
                assert (course_yaml.parent / (item.get("source") or item.get("file"))).exists()
    assert len(codes) == len(set(codes))
    assert sorted(audiences) == ["all", "all", "all", "plan"]  # the demo shows a plan-only course


def write_course(folder: Path) -> None:
    (folder / "orgs.yaml").write_text("- {code: b, name: 一支部, kind: branch}\n", encoding="utf-8")
    (folder / "people.yaml").write_text(
        "password: pass-1234\nchange_password: false\nusers:\n"
        "  - {username: teacher, phone: '13800000001', name: 讲师甲, roles: [lecturer]}\n",
        encoding="utf-8",
    )
    course = folder / "courses" / "demo-course"
    course.mkdir(parents=True)
    (course / "course.yaml").write_text(
        """
code: demo-course
title: 小课程
description: 用于测试的课程。
tags: [测试, 三会一课]
owner: teacher
state: published
cover: {color: "#1565c0"}
lessons:
  - code: demo-course-1
    title: 第一课
    credit_hours: 0.25
    text: one.md
    media: {generate: video, seconds: 3, size: 320x180}
    subtitles: one.srt
    completion: watch
    attachments:
      - {generate: pdf, source: book.md, name: 手册.pdf}
  - code: demo-course-2
    title: 阅读课
    credit_hours: 0.25
    text: two.md
    completion: read
""",
        encoding="utf-8",
    )
    (course / "one.md").write_text("## 第一课\n\n**三会一课**是基本制度。", encoding="utf-8")
    (course / "two.md").write_text("阅读材料。", encoding="utf-8")
    (course / "one.srt").write_bytes("1\n00:00:00,500 --> 00:00:02,000\n防瘫预警\n".encode("gbk"))
    (course / "book.md").write_text("第一页 主题党日\n---page---\n第二页 党费", encoding="utf-8")


def test_a_course_folder_loads_through_the_pipeline_and_reloads_unchanged(app, tmp_path):
    write_course(tmp_path)
    runner = app.test_cli_runner()
    first = runner.invoke(app.cli, ["content", "load", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "courses: 1 created" in first.output and "lessons: 2 created" in first.output
    with app.app_context():
        course = db.session.scalar(sa.select(Course))
        assert (
            course.state == "published" and course.cover_path and sorted(course.tags) == ["三会一课", "测试"]
        )
        video, reading = course.lessons
        assert video.state == reading.state == "published"
        asset = db.session.get(MediaAsset, video.media_id)
        assert asset.state == "ready" and {r.name for r in asset.renditions} >= {"360p", "audio", "poster"}
        track = db.session.scalar(sa.select(SubtitleTrack))
        assert [c.text for c in track.cues] == ["防瘫预警"]
        pdf = db.session.scalar(sa.select(Attachment))
        assert pdf.state == "ready" and "主题党日" in pdf.pages[0] and "党费" in pdf.pages[1]
    second = runner.invoke(app.cli, ["content", "load", str(tmp_path)])
    assert "courses: 0 created, 0 updated, 1 unchanged" in second.output
    assert "lessons: 0 created, 0 updated, 2 unchanged" in second.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MediaAsset)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lesson)) == 2
