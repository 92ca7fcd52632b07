"""Serving attachments and media: headers, offload, and who may fetch them."""

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from school import db
from school.courses import service as courses
from school.jobs import service as jobs
from school.jobs.models import Job
from school.media import service as media
from school.media.models import Attachment, MediaAsset, Upload
from tests.conftest import sign_in
from tests.factories import make_org, make_user

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def published_lesson(app, tmp_path):
    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    with app.app_context():  # MEDIA_DIR comes from the app's settings
        course = courses.create_course(owner, "课程")
        lesson = courses.create_lesson(course, "第一课")
        courses.update_lesson(lesson, "第一课", "正文", "0.5", "read")
        source = tmp_path / "upload"
        source.write_bytes(PNG)
        attachment = media.add_attachment(lesson, source, "../../示意图<script>.png")
        courses.set_lesson_state(lesson, "published")
        courses.set_course_state(course, "published", db.utcnow())
        db.session.commit()
        assert lesson.course.lessons
    return lesson, attachment


def test_attachments_download_with_safe_headers(app, client, tmp_path):
    _lesson, attachment = published_lesson(app, tmp_path)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    response = client.get(f"/media/attachments/{attachment.id}/x")
    assert response.status_code == 200 and response.data == PNG
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert "/" not in attachment.filename and "<" not in disposition.split("filename*")[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    inline = client.get(f"/media/attachments/{attachment.id}/x?inline=1")
    assert inline.headers["Content-Disposition"].startswith("inline;")
    assert inline.mimetype == "image/png"


def test_nginx_offload_answers_with_x_accel_redirect(app, client, tmp_path, monkeypatch):
    _lesson, attachment = published_lesson(app, tmp_path)
    monkeypatch.setitem(app.config, "MEDIA_OFFLOAD", "nginx")
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    response = client.get(f"/media/attachments/{attachment.id}/x")
    assert response.headers["X-Accel-Redirect"] == f"/_media/{attachment.path}"
    assert response.data == b""


def test_expired_uploads_are_deleted_with_their_partial_files(app, client):
    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    course = courses.create_course(owner, "课程")
    lesson = courses.create_lesson(course, "第一课")
    with app.app_context():
        upload = media.start_upload(owner, "subtitle", "a.srt", 100, db.utcnow() - timedelta(days=2), lesson)
        db.session.commit()
        part = media._part_path(upload.id)
        assert part.exists()
        job = jobs.enqueue("media.expire_uploads")
        db.session.commit()
        jobs.run(job.id, app.config)
        assert not part.exists()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_a_transcode_whose_worker_died_is_run_again_and_completes(app, tmp_path):
    from tests.media.test_uploads import make_video

    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    course = courses.create_course(owner, "课程")
    lesson = courses.create_lesson(course, "第一课")
    with app.app_context():
        source = tmp_path / "clip.mp4"
        make_video(source)
        asset = media.add_media(lesson, source, "clip.mp4", owner)
        db.session.commit()
        job = jobs.claim(asset.job_id, db.utcnow(), 120)  # a worker took it …
        job.worker = "gone-host:1"
        job.lease_expires_at = db.utcnow() - timedelta(seconds=1)  # … and was killed
        db.session.commit()
        work_left = list((Path(app.config["MEDIA_DIR"]) / "renditions").glob("**/*"))
        assert not [p for p in work_left if p.is_file()]  # nothing half-written is published
        assert jobs.sweep(db.utcnow()) == [asset.job_id]
        jobs.run(asset.job_id, app.config)
        done = db.session.get(MediaAsset, asset.id)
        assert done.state == "ready" and db.session.get(Job, asset.job_id).attempts == 2
        for rendition in done.renditions:
            assert (Path(app.config["MEDIA_DIR"]) / rendition.path).stat().st_size == rendition.size


def test_ingest_command_queues_a_file_already_on_the_server(app, tmp_path):
    from tests.media.test_uploads import make_video

    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    course = courses.create_course(owner, "课程")
    lesson = courses.create_lesson(course, "第一课")
    db.session.commit()
    source = tmp_path / "big.mp4"
    make_video(source)
    result = app.test_cli_runner().invoke(
        app.cli, ["media", "ingest", str(source), "--lesson", str(lesson.id)]
    )
    assert result.exit_code == 0, result.output
    assert source.exists()  # copied, not moved
    asset = db.session.scalar(sa.select(MediaAsset))
    assert asset.job_id and asset.original_path.startswith("originals/")
    refused = app.test_cli_runner().invoke(app.cli, ["media", "ingest", str(source), "--lesson", "999"])
    assert refused.exit_code != 0


def test_attachments_of_draft_lessons_are_refused_to_members(app, client, tmp_path):
    lesson, attachment = published_lesson(app, tmp_path)
    with app.app_context():
        course = db.session.get(type(lesson.course), lesson.course_id)
        courses.set_course_state(course, "draft", db.utcnow())
        db.session.commit()
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    assert client.get(f"/media/attachments/{attachment.id}/x").status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 1
