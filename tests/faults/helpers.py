"""Real site and worker processes for the fault tests, started on the test's database, queue and
folders, and killed with SIGKILL; plus the checks every fault test ends with."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.live_site import free_port
from school import db
from school.courses import service as courses
from school.courses.models import Course
from school.jobs.models import Job
from school.media import storage
from school.media.binaries import paths
from school.media.models import Attachment, MediaAsset, Rendition, SubtitleTrack
from school.reports import export_jobs
from tests.conftest import DATABASE_URL
from tests.factories import make_user

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
CSRF = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"|name="csrf-token" content="([^"]+)"')


def wait_for(what: str, check, seconds: float = 30.0, proc: "Live | None" = None):
    """Poll check() until it returns something truthy (returned); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            code = proc.proc.returncode
            raise AssertionError(f"{proc.name} exited ({code}) waiting for {what}:\n{proc.log()}")
        time.sleep(0.05)
    log = f":\n{proc.log()}" if proc else ""
    raise AssertionError(f"timed out after {seconds} s waiting for {what}{log}")


class Live:
    """A site (gunicorn) or worker process in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict, log: Path):
        self.name, self.log_path = name, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, group: bool = False) -> None:
        """SIGKILL: the process alone (its children are on their own), or its whole group."""
        if self.proc.poll() is None:
            if group:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """End it at the test's end, whatever state it is in (and anything it left in its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


class Processes:
    """Starts sites and workers for one test and kills whatever is left at its end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.marks = folder / "marks"
        self.marks.mkdir(parents=True, exist_ok=True)
        self.started: list[Live] = []

    def env(self, pause: str | None = None, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "FAULT_PAUSE")}
        env.update(
            DATABASE_URL=DATABASE_URL,  # the test's own database (conftest), not the default one
            JOB_LEASE_SECONDS="5",  # a lost job comes back within seconds
            WORKER_THREADS="1",
            WEB_WORKERS="1",
            HOST="127.0.0.1",
            FAULT_DIR=str(self.marks),
            PYTHONUNBUFFERED="1",
        )
        if pause:
            env["FAULT_PAUSE"] = pause
        env.update(extra)
        return env

    def web(self, pause: str | None = None) -> tuple[Live, str]:
        """A gunicorn site with the project's settings on a free port; (process, base URL)."""
        port = free_port()
        cmd = [str(BIN / "gunicorn"), "-c", "school/gunicorn_conf.py", "tests.faults.hooks:app"]
        live = Live("web", cmd, self.env(pause, PORT=str(port)), self.folder / "web.log")
        self.started.append(live)
        url = f"http://127.0.0.1:{port}"

        def answers():
            try:
                return requests.get(f"{url}/sign-in", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for("the site to answer", answers, 40, live)
        return live, url

    def worker(self, pause: str | None = None) -> Live:
        """`flask jobs worker`, as `make run` starts it."""
        cmd = [str(BIN / "flask"), "--app", "tests.faults.hooks:app", "jobs", "worker"]
        live = Live("worker", cmd, self.env(pause), self.folder / "worker.log")
        self.started.append(live)
        return live

    def reached(self, point: str, proc: Live, seconds: float = 60) -> None:
        """Wait until proc stands paused at a fault point."""
        wait_for(f"{proc.name} to reach {point}", (self.marks / point).exists, seconds, proc)

    def stop_all(self) -> None:
        for live in self.started:
            live.stop()


def signed_in(url: str, login: str, password: str = "pass-1234") -> requests.Session:
    """A browser-like session signed in through the real form."""
    session = requests.Session()
    page = session.get(f"{url}/sign-in", timeout=10).text
    token = csrf_token(page)
    answer = session.post(
        f"{url}/sign-in", data={"login": login, "password": password, "csrf_token": token}, timeout=10
    )
    assert answer.status_code == 200 and "/sign-in" not in answer.url, answer.text[:500]
    return session


def csrf_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def job(app, job_id: int) -> Job:
    with app.app_context():
        found = db.session.get(Job, job_id)
        db.session.expunge_all()
        return found


def job_state(app, job_id: int, *states: str) -> Job | None:
    """The job when it is in one of `states`, else None (for wait_for)."""
    found = job(app, job_id)
    return found if found.state in states else None


def dangling_files(app) -> list[str]:
    """Every database row naming a file that is not on disk: media originals, renditions,
    attachments, subtitles, course covers (under MEDIA_DIR) and finished exports."""
    missing = []
    with app.app_context():
        columns = [
            (MediaAsset, MediaAsset.original_path),
            (Rendition, Rendition.path),
            (Attachment, Attachment.path),
            (SubtitleTrack, SubtitleTrack.path),
            (Course, Course.cover_path),
        ]
        for model, column in columns:
            rows = db.session.execute(sa.select(model.id, column).where(column.is_not(None)))
            for row_id, relative in rows:
                if not storage.absolute(relative).is_file():
                    missing.append(f"{model.__tablename__} {row_id}: {relative}")
        exports = sa.select(Job).where(Job.kind == export_jobs.JOB_KIND, Job.state == "done")
        for done in db.session.scalars(exports):
            if not (export_jobs.export_dir() / done.result["file"]).is_file():
                missing.append(f"export job {done.id}: {done.result['file']}")
        db.session.rollback()
    return missing


def children_named(name: str, under: str) -> list[int]:
    """Pids of running processes called `name` whose command line mentions `under`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        named = state != "Z" and argv and Path(os.fsdecode(argv[0])).name == name
        if named and any(under in os.fsdecode(arg) for arg in argv):
            found.append(int(entry.name))
    return found


LECTURER = "13800000001"


def make_video(path: Path, seconds: int = 2, size: str = "320x180") -> bytes:
    """A test-pattern clip with a tone (ffmpeg's lavfi sources)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", str(seconds)]
    args += ["-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run([paths()[0], "-nostdin", "-loglevel", "error", "-y", *args], check=True)
    return path.read_bytes()


def lecturer_lesson(app) -> int:
    with app.app_context():
        owner = make_user(roles=[("lecturer", None)], phone=LECTURER)
        lesson = courses.create_lesson(courses.create_course(owner, "课程"), "第一课")
        db.session.commit()
        return lesson.id
