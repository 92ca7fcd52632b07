"""kill -9 of the real site (gunicorn) and the real worker (`flask jobs worker`) in the middle of an
upload, a transcode, a member import, an index write and a report export. Afterwards every job is
done (or failed with a retry possible), nothing half-written is served, no row names a missing
file, and the index opens and answers."""

import contextlib
import hashlib
import socket
import threading
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.courses.models import Lesson
from school.jobs.models import Job
from school.media import service as media
from school.media import storage
from school.media.models import MediaAsset, Upload
from school.reports import export_jobs
from school.search import index
from school.search import service as search
from tests.conftest import sign_in
from tests.factories import make_lesson, make_org, make_organizer, make_tree, make_user
from tests.faults.helpers import (
    LECTURER,
    Processes,
    children_named,
    csrf_token,
    dangling_files,
    job,
    job_state,
    lecturer_lesson,
    make_video,
    signed_in,
    wait_for,
)


@pytest.fixture()
def procs(app, tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def api(session: requests.Session, url: str) -> dict:
    return {"X-CSRFToken": session.get(f"{url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]}


def put_chunk(session, url, headers, upload_id, offset, data):
    return session.put(
        f"{url}/api/v1/uploads/{upload_id}",
        params={"offset": offset},
        data=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
        timeout=30,
    )


def half_sent_chunk(session, url, headers, upload_id, offset, data) -> socket.socket:
    """Start a PUT of a chunk and send only half its body (the phone lost its signal)."""
    host, port = url.removeprefix("http://").split(":")
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    head = (
        f"PUT /api/v1/uploads/{upload_id}?offset={offset} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Cookie: {cookies}\r\nX-CSRFToken: {headers['X-CSRFToken']}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    conn = socket.create_connection((host, int(port)))
    conn.sendall(head.encode() + data[: len(data) // 2])
    return conn


def media_files(app) -> set[str]:
    """Every file under MEDIA_DIR, relative."""
    with app.app_context():
        base = storage.root()
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def in_background(func) -> threading.Thread:
    """Run a request that will never be answered (its server is killed) in a thread."""

    def run():
        with contextlib.suppress(requests.RequestException):
            func()  # the server dies meanwhile: that is the point

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_site_killed_mid_upload_resumes_at_the_saved_offset_and_serves_nothing_half(app, procs, tmp_path):
    lesson_id = lecturer_lesson(app)
    data = make_video(tmp_path / "clip.mp4")
    chunk = 16 * 1024
    web, url = procs.web()
    session = signed_in(url, LECTURER)
    headers = api(session, url)
    created = session.post(
        f"{url}/api/v1/uploads",
        json={"purpose": "video", "filename": "clip.mp4", "size": len(data), "lesson_id": lesson_id},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    for offset in (0, chunk):
        assert put_chunk(session, url, headers, upload_id, offset, data[offset : offset + chunk]).ok
    conn = half_sent_chunk(session, url, headers, upload_id, 2 * chunk, data[2 * chunk : 3 * chunk])

    web.kill(group=True)  # gunicorn master and worker, mid-request
    conn.close()

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MediaAsset)) == 0
        assert db.session.get(Upload, upload_id).received == 2 * chunk
    assert dangling_files(app) == []
    web, url = procs.web()
    session = signed_in(url, LECTURER)
    headers = api(session, url)
    assert session.get(f"{url}/media/r/1/360p.mp4", timeout=10).status_code == 404  # nothing to play
    offset = session.get(f"{url}/api/v1/uploads/{upload_id}", timeout=10).json()["offset"]
    assert offset == 2 * chunk
    while offset < len(data):
        answer = put_chunk(session, url, headers, upload_id, offset, data[offset : offset + chunk])
        assert answer.ok, answer.text
        offset = answer.json()["offset"]
    done = session.post(f"{url}/api/v1/uploads/{upload_id}/complete", headers=headers, timeout=30)

    assert done.status_code == 200, done.text
    with app.app_context():
        asset = db.session.get(MediaAsset, done.json()["media_id"])
        stored = storage.absolute(asset.original_path).read_bytes()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    assert dangling_files(app) == []


def test_site_killed_while_completing_an_upload_asks_for_it_again_instead_of_failing(app, procs, tmp_path):
    lesson_id = lecturer_lesson(app)
    data = make_video(tmp_path / "clip.mp4")
    web, url = procs.web(pause="upload_completing")
    session = signed_in(url, LECTURER)
    headers = api(session, url)

    def upload() -> str:
        body = {"purpose": "video", "filename": "clip.mp4", "size": len(data), "lesson_id": lesson_id}
        upload_id = session.post(f"{url}/api/v1/uploads", json=body, headers=headers, timeout=10).json()["id"]
        assert put_chunk(session, url, headers, upload_id, 0, data).ok
        return upload_id

    upload_id = upload()
    in_background(
        lambda: session.post(f"{url}/api/v1/uploads/{upload_id}/complete", headers=headers, timeout=60)
    )
    procs.reached("upload_completing", web)  # the file has its final name; the row is not saved
    web.kill(group=True)

    assert dangling_files(app) == []
    web, url = procs.web()
    session = signed_in(url, LECTURER)
    headers = api(session, url)
    again = session.post(f"{url}/api/v1/uploads/{upload_id}/complete", headers=headers, timeout=30)
    assert again.status_code == 400, again.text  # not a 500: told to upload again
    assert again.json()["error"]["message"]
    with app.app_context():
        assert db.session.get(Upload, upload_id) is None
    upload_id = upload()
    done = session.post(f"{url}/api/v1/uploads/{upload_id}/complete", headers=headers, timeout=30)
    assert done.status_code == 200, done.text
    assert dangling_files(app) == []


def test_worker_killed_mid_transcode_leaves_no_ffmpeg_and_the_job_finishes_on_restart(app, procs, tmp_path):
    lesson_id = lecturer_lesson(app)
    source = tmp_path / "long.mp4"
    make_video(source, seconds=8, size="640x480")  # a few seconds of ffmpeg work
    with app.app_context():
        asset = media.add_media(db.session.get(Lesson, lesson_id), source, "long.mp4", None)
        db.session.commit()
        asset_id, job_id = asset.id, asset.job_id
        work = str(storage.root() / "work")
    worker = procs.worker()
    wait_for("ffmpeg to transcode", lambda: children_named("ffmpeg", work), 60, worker)

    worker.kill()  # the worker only: ffmpeg is in a process group of its own

    # (an orphan left running would go on writing renditions for a job that is run again)
    wait_for("the orphaned ffmpeg to die", lambda: not children_named("ffmpeg", work), 2)
    assert job(app, job_id).state == "running"  # until a worker notices
    worker = procs.worker()
    finished = wait_for("the job to finish", lambda: job_state(app, job_id, "done", "failed"), 90, worker)

    assert (finished.state, finished.attempts) == ("done", 2)
    with app.app_context():
        asset = db.session.get(MediaAsset, asset_id)
        assert asset.state == "ready" and db.session.get(Lesson, lesson_id).media_id == asset_id
        for rendition in asset.renditions:  # whole files, exactly as recorded
            assert storage.absolute(rendition.path).stat().st_size == rendition.size
        folder = storage.root() / "work"
    assert dangling_files(app) == []
    assert list(folder.iterdir()) == []  # the killed run's half renditions are gone too
    assert not [f for f in media_files(app) if ".part" in f]


def import_csv(rows: int, branch_code: str) -> bytes:
    head = "姓名,手机号,所在支部,党员类别,在职情况,流动党员"
    lines = [head] + [f"党员{n},139{n:08d},{branch_code},正式党员,在职,否" for n in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_site_killed_mid_import_imports_nobody_and_the_import_can_be_run_again(app, procs):
    rows = 2000
    with app.app_context():
        tree = make_tree()
        branch = make_org("导入支部", "branch", tree["street_a"], code="IMP-1")
        make_organizer(tree["district_a"], phone="13800000002")
        org_id, branch_id = tree["district_a"].id, branch.id
    web, url = procs.web(pause="import_applied")
    session = signed_in(url, "13800000002")
    page = session.get(f"{url}/orgs/{org_id}/import", timeout=10).text
    files = {"file": ("members.csv", import_csv(rows, "IMP-1"), "text/csv")}
    dry = session.post(
        f"{url}/orgs/{org_id}/import", data={"csrf_token": csrf_token(page)}, files=files, timeout=60
    )
    assert dry.status_code == 200, dry.text[:500]
    token = dry.text.split("/import/")[1].split("/apply")[0]
    form = {"csrf_token": csrf_token(dry.text)}
    in_background(lambda: session.post(f"{url}/orgs/{org_id}/import/{token}/apply", data=form, timeout=120))
    procs.reached("import_applied", web, 90)  # every row written, not committed

    web.kill(group=True)

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(User.home_org_id == branch_id)) == 0
    web, url = procs.web()
    session = signed_in(url, "13800000002")
    page = session.get(f"{url}/orgs/{org_id}/import", timeout=10).text
    again = session.post(
        f"{url}/orgs/{org_id}/import/{token}/apply", data={"csrf_token": csrf_token(page)}, timeout=120
    )
    assert again.status_code == 200, again.text[:500]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(User.home_org_id == branch_id)) == rows


def test_worker_killed_mid_index_commit_leaves_an_index_that_opens_and_finds(app, procs):
    with app.app_context():
        lesson = make_lesson(duration=None)
        search.rebuild()  # the live index, before the write that is interrupted
        db.session.execute(sa.delete(Job))  # the set-up's index jobs: the rebuild did their work
        db.session.commit()
        lesson = db.session.get(Lesson, lesson.id)
        lesson.title = "抗美援朝精神"
        db.session.commit()  # queues search.index_course for the course
        job_id = db.session.scalar(sa.select(Job.id).where(Job.kind == "search.index_course"))
    worker = procs.worker(pause="index_commit")
    procs.reached("index_commit", worker)  # the new segment written, its TOC not

    worker.kill()

    with app.app_context():
        ix = index.open_index()  # the old generation, whole
        assert ix.doc_count() >= 2
        ix.close()
    worker = procs.worker()
    finished = wait_for("the index job", lambda: job_state(app, job_id, "done", "failed"), 60, worker)
    assert finished.state == "done" and finished.attempts == 2
    with app.app_context():
        results = search.search("抗美援朝")
        assert not results.unavailable
        assert [h.lesson_id for h in results.hits if h.kind == "lesson"] == [lesson.id]


def test_worker_killed_mid_export_retries_and_only_a_whole_file_is_downloadable(app, procs, client):
    with app.app_context():
        tree = make_tree()
        for n in range(30):
            make_user(org=tree["branch_a1"], name=f"党员{n}")
        viewer = make_organizer(tree["district_a"], username="org-a")
        org_id = tree["district_a"].id
        export = export_jobs.request_export(viewer, "hours", "csv", {"org_id": org_id})
        db.session.commit()
        job_id = export.id
    worker = procs.worker(pause="export_rendered")
    procs.reached("export_rendered", worker)
    sign_in(client, "org-a")
    assert client.get(f"/reports/exports/{job_id}/download").status_code == 404  # not ready

    worker.kill()

    assert dangling_files(app) == []
    assert not [p for p in _exports() if p.name.startswith(f"{job_id}-")]
    worker = procs.worker()
    finished = wait_for("the export job", lambda: job_state(app, job_id, "done", "failed"), 60, worker)
    assert finished.state == "done" and finished.attempts == 2
    download = client.get(f"/reports/exports/{job_id}/download")
    assert download.status_code == 200
    inline = client.get(f"/reports/hours.csv?org_id={org_id}")  # the same report, made at once
    assert download.get_data() == inline.get_data() and len(inline.get_data()) > 100
    assert dangling_files(app) == []
    assert not [p for p in _exports() if p.suffix == ".part"]


def _exports() -> list[Path]:
    return list(export_jobs.export_dir().iterdir())
