"""The disk filling up (ENOSPC) during an upload and a transcode: a clear answer in the user's
language instead of a 500, nothing half-written kept or served, and the same step succeeds once
there is space again.

MEDIA_DIR is put on a small tmpfs for these tests (real ENOSPC from the kernel, for our writes and
ffmpeg's); where mounting is not permitted they are skipped, except the upload one that uses a
fault hook on the write itself.
"""

import errno
import hashlib
import os
import shutil
import subprocess

import pytest
import sqlalchemy as sa

from school import db
from school.courses.models import Lesson
from school.jobs import service as jobs
from school.jobs.models import Job
from school.media import service as media
from school.media import storage
from school.media.models import MediaAsset, Rendition, Upload
from tests.conftest import api_token, sign_in
from tests.faults.helpers import LECTURER, dangling_files, lecturer_lesson, make_video


@pytest.fixture()
def small_disk(app, monkeypatch, tmp_path):
    """MEDIA_DIR on a 4 MB tmpfs; fill(leave) uses it up but for `leave` bytes, free() empties it."""
    mount = tmp_path / "small"
    mount.mkdir()
    mount_bin, umount_bin = shutil.which("mount"), shutil.which("umount")
    if not mount_bin or not umount_bin:
        pytest.skip("no mount command here to make a small tmpfs")
    done = subprocess.run(
        [mount_bin, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here ({done.stderr.strip()})")
    monkeypatch.setitem(app.config, "MEDIA_DIR", str(mount))

    class Disk:
        path = mount
        filler = mount / "filler"

        def fill(self, leave: int) -> None:
            free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
            with open(self.filler, "ab") as handle:
                handle.write(b"\0" * max(0, free - leave))

        def free(self) -> None:
            self.filler.unlink(missing_ok=True)

    yield Disk()
    subprocess.run([umount_bin, "-l", str(mount)], check=False)


def start_upload(client, token, lesson_id, size) -> str:
    body = {"purpose": "video", "filename": "clip.mp4", "size": size, "lesson_id": lesson_id}
    created = client.post("/api/v1/uploads", json=body, headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def put(client, token, upload_id, offset, data):
    return client.put(
        f"/api/v1/uploads/{upload_id}?offset={offset}",
        data=data,
        content_type="application/octet-stream",
        headers={"X-CSRFToken": token},
    )


def part_size(app, upload_id) -> int:
    with app.app_context():
        return storage.absolute(f"uploads/{upload_id}.part").stat().st_size


def assert_disk_full_answer(answer) -> None:
    assert answer.status_code == 507
    error = answer.get_json()["error"]
    assert error["code"] == "disk_full"
    assert "存储空间" in error["message"]  # the site's language, not "[Errno 28]"


def test_a_chunk_on_a_full_disk_is_refused_with_507_and_resent_once_there_is_space(
    app, client, small_disk, tmp_path
):
    lesson_id = lecturer_lesson(app)
    data = make_video(tmp_path / "clip.mp4", seconds=3)
    chunk = 64 * 1024
    sign_in(client, LECTURER)
    token = api_token(client)
    upload_id = start_upload(client, token, lesson_id, len(data))
    assert put(client, token, upload_id, 0, data[:chunk]).status_code == 200
    small_disk.fill(leave=chunk // 2)

    refused = put(client, token, upload_id, chunk, data[chunk : 2 * chunk])

    assert_disk_full_answer(refused)
    status = client.get(f"/api/v1/uploads/{upload_id}").get_json()
    assert status["offset"] == chunk == part_size(app, upload_id)  # the half chunk was given back
    small_disk.free()
    offset = chunk
    while offset < len(data):
        answer = put(client, token, upload_id, offset, data[offset : offset + chunk])
        assert answer.status_code == 200, answer.get_json()
        offset = answer.get_json()["offset"]
    done = client.post(f"/api/v1/uploads/{upload_id}/complete", headers={"X-CSRFToken": token})
    assert done.status_code == 200, done.get_json()
    with app.app_context():
        asset = db.session.get(MediaAsset, done.get_json()["media_id"])
        stored = storage.absolute(asset.original_path).read_bytes()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


def test_a_write_failing_halfway_with_enospc_gives_back_the_half_chunk(app, client, monkeypatch):
    """Fault hook on the write itself (runs where no tmpfs can be mounted)."""
    lesson_id = lecturer_lesson(app)
    sign_in(client, LECTURER)
    token = api_token(client)
    data = os.urandom(3000)
    upload_id = start_upload(client, token, lesson_id, len(data))
    assert put(client, token, upload_id, 0, data[:1000]).status_code == 200
    real_pwrite = os.pwrite

    def half_then_full(fd, chunk, offset):
        if len(chunk) > 100:
            return real_pwrite(fd, chunk[:100], offset)  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(media.os, "pwrite", half_then_full)
    assert_disk_full_answer(put(client, token, upload_id, 1000, data[1000:2000]))
    monkeypatch.undo()

    assert part_size(app, upload_id) == 1000
    with app.app_context():
        assert db.session.get(Upload, upload_id).received == 1000
    assert put(client, token, upload_id, 1000, data[1000:2000]).status_code == 200
    assert put(client, token, upload_id, 2000, data[2000:]).status_code == 200
    with app.app_context():
        assert storage.absolute(f"uploads/{upload_id}.part").read_bytes() == data


def test_a_transcode_on_a_full_disk_fails_cleanly_keeps_the_original_and_works_after_space_is_freed(
    app, client, small_disk, tmp_path
):
    lesson_id = lecturer_lesson(app)
    source = tmp_path / "clip.mp4"
    data = make_video(source)
    with app.app_context():
        asset = media.add_media(db.session.get(Lesson, lesson_id), source, "clip.mp4", None)
        db.session.commit()
        asset_id, job_id = asset.id, asset.job_id
    small_disk.fill(leave=16 * 1024)  # the original fits; its renditions do not

    with app.app_context():
        assert jobs.run(job_id, app.config) == "queued"  # to be retried, not rejected

    with app.app_context():
        job = db.session.get(Job, job_id)
        asset = db.session.get(MediaAsset, asset_id)
        assert "存储空间" in job.message and asset.error == job.message
        assert asset.state == "failed" and asset.renditions == []
        original = storage.absolute(asset.original_path)
        assert hashlib.sha256(original.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert dangling_files(app) == []
    leftovers = [p for p in small_disk.path.rglob("*") if p.is_file() and p.name != "filler"]
    assert leftovers == [original]  # no half renditions, no work files
    sign_in(client, LECTURER)
    page = client.get(f"/teach/lessons/{lesson_id}")
    assert page.status_code == 200 and "存储空间" in page.get_data(as_text=True)

    small_disk.free()
    with app.app_context():
        assert jobs.run(job_id, app.config) == "done"
        asset = db.session.get(MediaAsset, asset_id)
        assert asset.state == "ready" and asset.error is None
        renditions = db.session.scalar(sa.select(sa.func.count()).select_from(Rendition))
        assert renditions == len(asset.renditions) > 0
    assert dangling_files(app) == []


def test_any_other_write_on_a_full_disk_answers_507_not_500_and_leaves_no_half_file(app, client, small_disk):
    lesson_id = lecturer_lesson(app)
    sign_in(client, LECTURER)
    token = api_token(client)
    cues = "".join(f"{n}\n00:00:{n:02d},000 --> 00:00:{n:02d},900\n第{n}句\n\n" for n in range(1, 60))
    data = cues.encode()
    body = {"purpose": "subtitle", "filename": "zh.srt", "size": len(data), "lesson_id": lesson_id}
    upload_id = client.post("/api/v1/uploads", json=body, headers={"X-CSRFToken": token}).get_json()["id"]
    assert put(client, token, upload_id, 0, data).status_code == 200
    small_disk.fill(leave=0)

    done = client.post(f"/api/v1/uploads/{upload_id}/complete", headers={"X-CSRFToken": token})

    assert_disk_full_answer(done)
    files = [p.name for p in small_disk.path.rglob("*") if p.is_file() and p.name != "filler"]
    assert files == [f"{upload_id}.part"]  # the upload, still there to complete later
    small_disk.free()
    again = client.post(f"/api/v1/uploads/{upload_id}/complete", headers={"X-CSRFToken": token})
    assert again.status_code == 200 and again.get_json()["cues"] == 59
    assert dangling_files(app) == []
