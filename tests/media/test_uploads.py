"""Uploads through the JSON API, then what becomes of the file (real ffmpeg on generated media)."""

import subprocess

import sqlalchemy as sa

from school import db
from school.courses import service as courses
from school.courses.models import Lesson
from school.jobs import service as jobs
from school.jobs.models import Job
from school.media.binaries import paths
from school.media.models import Attachment, MediaAsset, SubtitleTrack, Upload
from tests.conftest import api_token, sign_in
from tests.factories import make_org, make_user

SRT = "1\n00:00:00,500 --> 00:00:02,000\n三会一课\n\n2\n00:00:02,500 --> 00:00:04,000\n主题党日\n"


def setup_lesson(published_course=False):
    owner = make_user(roles=[("lecturer", None)], phone="13800000001")
    course = courses.create_course(owner, "课程")
    lesson = courses.create_lesson(course, "第一课")
    db.session.commit()
    return owner, course, lesson


def start(client, token, **body):
    return client.post("/api/v1/uploads", json=body, headers={"X-CSRFToken": token})


def put(client, token, upload_id, offset, data):
    return client.put(
        f"/api/v1/uploads/{upload_id}?offset={offset}",
        data=data,
        content_type="application/octet-stream",
        headers={"X-CSRFToken": token},
    )


def upload(client, token, lesson_id, purpose, name, data, chunk=1000):
    created = start(client, token, purpose=purpose, filename=name, size=len(data), lesson_id=lesson_id)
    assert created.status_code == 201, created.get_json()
    upload_id = created.get_json()["id"]
    for offset in range(0, len(data), chunk):
        assert put(client, token, upload_id, offset, data[offset : offset + chunk]).status_code == 200
    return client.post(f"/api/v1/uploads/{upload_id}/complete", headers={"X-CSRFToken": token})


def make_video(path, seconds=2, size="320x180", audio=True):
    ffmpeg, _ = paths()
    args = [
        ffmpeg,
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=25",
        "-t",
        str(seconds),
    ]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:a", "aac"]
    subprocess.run(
        [*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True
    )
    return path.read_bytes()


def run_queued(app):
    with app.app_context():
        for job_id in db.session.scalars(sa.select(Job.id).where(Job.state == "queued")).all():
            jobs.run(job_id, app.config)


def test_a_chunked_subtitle_upload_becomes_cues(client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    response = upload(
        client, api_token(client), lesson.id, "subtitle", "第一课.srt", SRT.encode("gbk"), chunk=40
    )
    assert response.status_code == 200 and response.get_json()["cues"] == 2
    track = db.session.scalar(sa.select(SubtitleTrack))
    assert [c.text for c in track.cues] == ["三会一课", "主题党日"]
    assert track.path.startswith("subtitles/") and "第一课" not in track.path


def test_a_chunk_at_the_wrong_offset_is_told_where_to_resume(client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    token = api_token(client)
    data = SRT.encode()
    upload_id = start(
        client, token, purpose="subtitle", filename="a.srt", size=len(data), lesson_id=lesson.id
    ).get_json()["id"]
    assert put(client, token, upload_id, 0, data[:50]).status_code == 200
    again = put(client, token, upload_id, 0, data[:50])  # the reply was lost; the client resends
    assert again.status_code == 409 and "50" in again.get_json()["error"]["message"]
    assert client.get(f"/api/v1/uploads/{upload_id}").get_json()["offset"] == 50
    assert put(client, token, upload_id, 50, data[50:]).status_code == 200
    assert (
        client.post(f"/api/v1/uploads/{upload_id}/complete", headers={"X-CSRFToken": token}).status_code
        == 200
    )


def test_too_large_and_wrong_kind_are_refused_before_the_upload_starts(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 1000)
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    token = api_token(client)
    big = start(client, token, purpose="video", filename="a.mp4", size=5000, lesson_id=lesson.id)
    assert big.status_code == 400 and "最大" in big.get_json()["error"]["message"]
    exe = start(client, token, purpose="video", filename="a.exe", size=10, lesson_id=lesson.id)
    assert exe.status_code == 400 and "不能上传" in exe.get_json()["error"]["message"]
    html = start(client, token, purpose="attachment", filename="x.html", size=10, lesson_id=lesson.id)
    assert html.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Upload)) == 0


def test_someone_elses_upload_is_not_found(app, client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    token = api_token(client)
    upload_id = start(
        client, token, purpose="subtitle", filename="a.srt", size=10, lesson_id=lesson.id
    ).get_json()["id"]
    make_user(roles=[("lecturer", None)], phone="13800000002")
    other = app.test_client()
    sign_in(other, "13800000002")
    assert other.get(f"/api/v1/uploads/{upload_id}").status_code == 404
    assert put(other, api_token(other), upload_id, 0, b"x").status_code == 404


def test_a_lecturer_cannot_upload_to_another_lecturers_lesson(app, client):
    _owner, _course, lesson = setup_lesson()
    make_user(roles=[("lecturer", None)], phone="13800000002")
    sign_in(client, "13800000002")
    response = start(
        client, api_token(client), purpose="subtitle", filename="a.srt", size=10, lesson_id=lesson.id
    )
    assert response.status_code == 403


def test_a_path_traversal_name_is_only_a_label(client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    response = upload(client, api_token(client), lesson.id, "subtitle", "../../x.srt", SRT.encode())
    assert response.status_code == 200
    track = db.session.scalar(sa.select(SubtitleTrack))
    assert ".." not in track.path


def test_broken_subtitles_are_refused_with_the_cue_number(client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    broken = "1\n00:00:01,000 --> 00:00:02,000\n好\n\n2\n00:00:05,000 --> 00:00:04,000\n坏\n"
    response = upload(client, api_token(client), lesson.id, "subtitle", "a.srt", broken.encode())
    assert response.status_code == 400 and "2" in response.get_json()["error"]["message"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubtitleTrack)) == 0


def test_a_pdf_that_is_not_a_pdf_is_refused(client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    response = upload(client, api_token(client), lesson.id, "attachment", "手册.pdf", b"hello, not a pdf")
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


def test_uploaded_video_is_transcoded_then_played_with_ranges(app, client, tmp_path):
    _owner, course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    data = make_video(tmp_path / "clip.mp4")
    result = upload(client, api_token(client), lesson.id, "video", "clip.mp4", data, chunk=64 * 1024)
    assert result.status_code == 200
    job_id = result.get_json()["job_id"]
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["state"] == "queued"
    run_queued(app)
    status = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert status["state"] == "done" and status["progress"] == 100
    lesson = db.session.get(Lesson, lesson.id)
    asset = db.session.get(MediaAsset, lesson.media_id)
    assert asset.state == "ready" and lesson.pending_media_id is None
    low = asset.rendition("360p")
    assert low is not None and asset.rendition("poster") is not None
    courses.set_lesson_state(lesson, "published")
    courses.set_course_state(lesson.course, "published", db.utcnow())
    db.session.commit()
    member = app.test_client()
    make_user(make_org(), phone="13800000009")
    sign_in(member, "13800000009")
    url = f"/media/r/{low.id}/360p.mp4"
    part = member.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    assert part.headers["Content-Range"].endswith(f"/{low.size}")
    assert "immutable" in part.headers["Cache-Control"]
    assert member.get(url, headers={"Range": f"bytes={low.size + 10}-"}).status_code == 416
    assert client.get(url).status_code == 200
    assert app.test_client().get(url).status_code == 302  # anonymous: sign in first


def test_a_text_file_named_mp4_fails_with_a_chinese_reason_and_is_kept(app, client):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    result = upload(client, api_token(client), lesson.id, "video", "fake.mp4", b"just some text\n" * 50)
    job_id = result.get_json()["job_id"]
    run_queued(app)
    status = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert status["state"] == "failed" and "音视频" in status["message"]
    asset = db.session.scalar(sa.select(MediaAsset))
    assert asset.state == "failed" and asset.original_path
    page = client.get(f"/teach/lessons/{lesson.id}").get_data(as_text=True)
    assert "音视频" in page
    assert db.session.get(Lesson, lesson.id).media_id is None


def test_drafts_media_is_refused_to_members(app, client, tmp_path):
    _owner, _course, lesson = setup_lesson()
    sign_in(client, "13800000001")
    upload(
        client,
        api_token(client),
        lesson.id,
        "video",
        "clip.mp4",
        make_video(tmp_path / "c.mp4"),
        chunk=64 * 1024,
    )
    run_queued(app)
    asset = db.session.scalar(sa.select(MediaAsset))
    member = app.test_client()
    make_user(make_org(), phone="13800000009")
    sign_in(member, "13800000009")
    assert member.get(f"/media/r/{asset.rendition('360p').id}/360p.mp4").status_code == 403
