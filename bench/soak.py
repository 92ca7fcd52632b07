"""Mixed-load soak: 200 members browsing, playing and beating, 5 organizers on reports and exports,
a lecturer uploading — against gunicorn and the job worker on this machine, driven by locust.

    python bench/soak.py                      # 10 minutes, SQLite database and SQLite queue
    python bench/soak.py --minutes 1          # as CI runs it
    python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/bench --reset \
        --queue-url redis://127.0.0.1:6379/8

Sets up an instance as `make run` does (migrations, demo content), adds the simulated members and
a draft lesson for the lecturer's uploads, starts gunicorn (school/gunicorn_conf.py) and
`flask jobs worker`, then runs locust headless (bench/soak_locustfile.py). Afterwards: every
request's status is checked (zero 5xx), and every heartbeat locust saw accepted is checked
against the viewing session stored in the database (zero lost). Prints p50/p95/p99 per page and
exits 1 on any 5xx, failure or lost beat. The last line is `lost heartbeats: N`.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live_site import BIN, ROOT, free_port, instance_env, set_up_instance, stop, wait_healthy

sys.path.insert(0, str(ROOT))  # the school package and tests.factories

PASSWORD = "soak-pass-2026"
ORGANIZERS = ["org-city", "org-district", "org-branch", "org-district", "org-city"]
QUERIES = ["三会一课", "党费", "流动党员", "主题党日", "党员", "学习"]


def make_plan(env: dict, members: int, folder: Path) -> dict:
    """Accounts, lessons and URLs for the locust users, written into the instance's database."""
    os.environ.update(env)
    import sqlalchemy as sa

    from school import create_app, db
    from school.accounts import service as accounts_service
    from school.accounts.models import User
    from school.courses import service as courses
    from school.courses.models import Course, Lesson
    from school.learning import service as learning
    from school.models import load_all
    from school.orgs.models import Org
    from school.plans.models import StudyPlan
    from tests.factories import make_user

    load_all()
    app = create_app({"DATABASE_URL": env["DATABASE_URL"]})
    with app.app_context():
        branches = db.session.scalars(sa.select(Org).where(Org.kind == "branch").order_by(Org.id)).all()
        accounts = []
        for n in range(members):
            user = make_user(org=branches[n % len(branches)], password=PASSWORD, phone=f"1370000{n:04d}")
            accounts.append(user.phone)
        for login in {*ORGANIZERS, "lecturer1"}:
            user = db.session.scalar(sa.select(User).where(User.username == login))
            user.password_hash = accounts_service.hash_password(PASSWORD)
        db.session.commit()
        lessons = []
        for lesson in db.session.scalars(
            sa.select(Lesson).join(Course).where(Lesson.state == "published", Course.state == "published")
        ):
            duration = learning.media_duration(lesson)
            if duration:
                lessons.append({"id": lesson.id, "course_id": lesson.course_id, "duration": duration})
        lecturer = db.session.scalar(sa.select(User).where(User.username == "lecturer1"))
        course = db.session.scalar(sa.select(Course).where(Course.owner_id == lecturer.id).limit(1))
        draft = courses.create_lesson(course, "压测上传（草稿）")
        db.session.commit()
        plan_id = db.session.scalar(sa.select(StudyPlan.id).order_by(StudyPlan.id).limit(1))
        course_id = lessons[0]["course_id"]
        pages = ["/reports/hours", f"/reports/courses/{course_id}", "/compare", "/warnings", "/members"]
        exports = ["/reports/hours.csv", f"/reports/courses/{course_id}.xlsx", "/compare.csv"]
        if plan_id:
            pages.append(f"/reports/plans/{plan_id}")
            exports.append(f"/reports/plans/{plan_id}.xlsx")
        return {
            "members": members,
            "organizers": len(ORGANIZERS),
            "member_accounts": accounts,
            "organizer_accounts": ORGANIZERS,
            "lecturer_account": "lecturer1",
            "password": PASSWORD,
            "lessons": lessons,
            "queries": QUERIES,
            "organizer_pages": pages,
            "organizer_exports": exports,
            "upload_lesson_id": draft.id,
            "upload_file": str(make_video(folder)),
            "beat_seconds": 12,
        }


def make_video(folder: Path) -> Path:
    """A 6-second 320x180 clip with sound: what the lecturer uploads, again and again."""
    from school.media.binaries import paths

    path = folder / "upload.mp4"
    subprocess.run(  # noqa: S603 (ffmpeg, fixed arguments)
        [
            paths()[0],
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "6",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def lost_beats(database_url: str, ledger: dict) -> list[str]:
    """Sessions whose stored beats differ from what locust saw accepted (empty when none lost)."""
    import sqlalchemy as sa

    from school import create_app, db
    from school.learning.models import ViewingSession

    problems = []
    with create_app({"DATABASE_URL": database_url}).app_context():
        stored = dict(db.session.execute(sa.select(ViewingSession.id, ViewingSession.beats)).all())
    for session_id, seen in ledger.items():
        kept = stored.get(session_id, 0)
        # A beat in flight when locust stopped may be stored without locust having seen the answer.
        if not seen["accepted"] <= kept <= seen["accepted"] + 1:
            problems.append(f"session {session_id}: locust saw {seen['accepted']} accepted, stored {kept}")
    return problems


def read_stats(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def server_errors(prefix: Path) -> list[str]:
    """Failures locust recorded, 5xx among them, as lines for the report."""
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            f"{r['Method']} {r['Name']}: {r['Error']} ×{r['Occurrences']}" for r in csv.DictReader(handle)
        ]


def reset_postgres(url: str) -> None:
    """An empty public schema in the scratch database of url, creating the database if missing."""
    import sqlalchemy as sa

    from school.db import engine_url

    target = sa.engine.make_url(engine_url(url))
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    with sa.create_engine(target).begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--queue-url", help="redis://… (default: a SQLite queue in the temp folder)")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the PostgreSQL schema first")
    parser.add_argument("--web-workers", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="school-soak-"))
    procs: list[subprocess.Popen] = []
    try:
        env = instance_env(folder)
        env["WEB_WORKERS"] = str(args.web_workers)
        env["LOGIN_MAX_FAILURES_ADDRESS"] = "100000"  # every simulated member signs in from 127.0.0.1
        if args.queue_url:
            env["QUEUE_URL"] = args.queue_url
            import redis

            redis.Redis.from_url(args.queue_url).flushdb()
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
            if args.reset:
                reset_postgres(args.database_url)
        print("setting up: migrations, demo content (with transcodes), simulated members …", flush=True)
        set_up_instance(env)
        plan = make_plan(env, args.members, folder)
        plan_file, ledger_file = folder / "plan.json", folder / "ledger.json"
        plan_file.write_text(json.dumps(plan))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web_log, worker_log = folder / "web.log", folder / "worker.log"
        procs.append(
            start(
                [
                    str(BIN / "gunicorn"),
                    "-c",
                    "school/gunicorn_conf.py",
                    "--access-logfile",
                    "/dev/null",
                    "app:app",
                ],
                {**env, "PORT": str(port)},
                web_log,
            )
        )
        procs.append(start([str(BIN / "flask"), "--app", "app", "jobs", "worker"], env, worker_log))
        wait_healthy(base + "/healthz", procs[0], web_log, seconds=120)

        users = args.members + len(ORGANIZERS) + 1
        seconds = max(30, int(args.minutes * 60))
        backend = env["DATABASE_URL"].split(":", 1)[0]
        queue = env["QUEUE_URL"].split(":", 1)[0]
        print(
            f"soak: {args.members} members, {len(ORGANIZERS)} organizers, 1 lecturer for {seconds} s; "
            f"database {backend}, queue {queue}; gunicorn {args.web_workers} sync workers + 1 job worker; "
            f"{os.cpu_count()} CPUs shared with locust",
            flush=True,
        )
        prefix = folder / "locust"
        started = time.monotonic()
        locust = subprocess.run(  # noqa: S603 (our own locustfile)
            [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "bench" / "soak_locustfile.py"),
                "--headless",
                "--host",
                base,
                "-u",
                str(users),
                "-r",
                "5",  # members arrive over ~40 s, as a morning's first study does, not all at once
                "-t",
                f"{seconds}s",
                "--stop-timeout",
                "20",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**env, "SOAK_PLAN": str(plan_file), "SOAK_LEDGER": str(ledger_file)},
            capture_output=True,
            text=True,
        )
        elapsed = time.monotonic() - started
        stats = read_stats(prefix)
        failures = server_errors(prefix)
        ledger = json.loads(ledger_file.read_text()) if ledger_file.exists() else {}
        problems = lost_beats(env["DATABASE_URL"], ledger)

        print(f"\n{'request':44} {'count':>7} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)")
        for row in stats:
            print(
                f"{row['Type'] + ' ' + row['Name']:44.44} {row['Request Count']:>7} "
                f"{row['Failure Count']:>5} "
                f"{row['50%']:>6} {row['95%']:>6} {row['99%']:>6}"
            )
        total = next(r for r in stats if r["Name"] == "Aggregated")
        # Pages a member or organizer reads; the sign-in form is left out of the worst figure: its
        # cost is the deliberate scrypt of the POST and the arrival of everyone at once.
        pages = [r for r in stats if r["Type"] == "GET" and r["Name"] not in ("Aggregated", "/sign-in")]
        page_p95 = max((float(r["95%"]) for r in pages if float(r["Request Count"])), default=0)
        fives = [f for f in failures if " 5" in f or "50" in f.split(":", 1)[-1][:12]]
        accepted = sum(s["accepted"] for s in ledger.values())
        refused = sum(s["refused"] for s in ledger.values())
        print(
            f"\nrequests: {total['Request Count']} in {elapsed:.0f} s ({float(total['Requests/s']):.1f}/s), "
            f"failures {total['Failure Count']}"
        )
        for line in failures:
            print(f"  failure: {line}")
        print(f"worst p95 of a page (GET): {page_p95:.0f} ms; all requests p95 {total['95%']} ms")
        print(f"heartbeats: {accepted} accepted in {len(ledger)} viewing sessions, {refused} refused")
        for problem in problems[:20]:
            print(f"  {problem}")
        if locust.returncode not in (0, 1):
            print(f"locust exited {locust.returncode}:\n{locust.stderr[-3000:]}")
        if fives:  # the server's own account of its errors
            print("web log (last lines):\n" + "\n".join(web_log.read_text().splitlines()[-30:]))
        print(f"5xx answers: {len(fives)}")
        print(f"lost heartbeats: {len(problems)}")
        bad = failures or problems or locust.returncode not in (0, 1) or not accepted
        return 1 if bad else 0
    finally:
        stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
