"""Heartbeats accepted per second under gunicorn (2 sync workers), against a bare Flask "hello".

    python bench/heartbeats.py                                   # SQLite instance in a temp folder
    python bench/heartbeats.py --database-url postgresql://postgres@127.0.0.1:5432/test --reset

Sets up an instance (`db upgrade`), adds CONNECTIONS members and one long lesson, opens one viewing
session per member (backdated two days, so the wall-clock budget never refuses a beat: we measure
the accept path, not the refusal), signs each member in, then `wrk` sends beats — one connection
per member, each beat 1 s further into the video with the next seq — for DURATION seconds after a
warm-up. Afterwards every session is checked against the database: every beat wrk saw accepted is
stored, the watched union is exactly [0, beats] (no lost interval), and nothing was refused.
The last line is `ratio: X.XX`: beats/s ÷ the bare Flask app's requests/s on the same gunicorn.
`--reset` drops and recreates the PostgreSQL schema first (a scratch database only).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from live_site import BIN, ROOT, free_port, instance_env, stop, wait_healthy
from pages import HELLO_APP, sign_in_cookie, start_gunicorn

sys.path.insert(0, str(ROOT))  # the school package and tests.factories

WARM_UP, DURATION, CONNECTIONS = 3, 15, 8
PASSWORD = "bench-pass-2026"
LUA = r"""
local n = 0
local ids = {%(ids)s}
local cookies = {%(cookies)s}
local firsts = {%(firsts)s}
local threads = {}
function setup(thread)
  n = n + 1
  thread:set("sid", ids[n])
  thread:set("cookie", cookies[n])
  thread:set("firsts_seq", firsts[n])
  table.insert(threads, thread)
end
accepted, refused = 0, 0
-- The next beat follows the last accepted one, counted on answers: wrk may build a request it
-- never sends, so a count kept in request() would leave gaps in the intervals.
function request()
  local seq = firsts_seq + accepted + 1
  local body = string.format('{"seq":%%d,"from":%%d,"to":%%d,"rate":1}', seq, seq - 1, seq)
  return wrk.format("POST", "/api/v1/viewings/" .. sid .. "/beats",
    {["Cookie"] = cookie, ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 200 then accepted = accepted + 1 else refused = refused + 1 end
end
function done(summary, latency, requests)
  for i, t in ipairs(threads) do
    io.write(string.format("thread %%d accepted %%d refused %%d\n", i, t:get("accepted"), t:get("refused")))
  end
end
"""


def flask(env: dict, *args: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own flask, fixed arguments)
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def make_rows(database_url: str) -> tuple[int, list[str], list[str]]:
    """(lesson id, session ids, member phones) created in the instance's database."""
    os.environ["DATABASE_URL"] = database_url
    from school import create_app, db
    from school.learning import service as learning
    from school.models import load_all
    from tests.factories import make_lesson, make_user

    load_all()
    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        lesson = make_lesson(duration=1_000_000.0)
        sessions, phones = [], []
        for _ in range(CONNECTIONS):
            member = make_user(password=PASSWORD)
            viewing, _ = learning.start_session(member, lesson)
            viewing.started_at -= timedelta(days=2)
            db.session.commit()
            sessions.append(viewing.id)
            phones.append(member.phone)
        return lesson.id, sessions, phones


def last_seqs(database_url: str, sessions: list[str]) -> list[int]:
    import sqlalchemy as sa

    from school import create_app, db
    from school.learning.models import ViewingSession

    with create_app({"DATABASE_URL": database_url}).app_context():
        found = dict(db.session.execute(sa.select(ViewingSession.id, ViewingSession.last_seq)).all())
        return [found[sid] for sid in sessions]


def check_rows(database_url: str, sessions: list[str], accepted: list[int]) -> list[str]:
    """Problems found comparing the database with what wrk saw (empty when none)."""
    import sqlalchemy as sa

    from school import create_app, db
    from school.learning import service as learning
    from school.learning.models import ViewingSession

    problems = []
    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        for sid, seen in zip(sessions, accepted, strict=True):
            viewing = db.session.execute(
                sa.select(ViewingSession).where(ViewingSession.id == sid)
            ).scalar_one()
            progress = learning.get_progress(viewing.user_id, viewing.lesson_id)
            # wrk may stop with a beat in flight: the server can hold at most one more than wrk saw.
            if not seen <= viewing.beats <= seen + 1 or viewing.beats != viewing.last_seq:
                problems.append(f"session {sid}: wrk saw {seen} accepted, server stored {viewing.beats}")
            if progress.watched != [(0.0, float(viewing.last_seq))]:
                problems.append(f"session {sid}: watched {progress.watched[:3]}… not [0, {viewing.last_seq}]")
    return problems


def wrk(url: str, seconds: int, script: Path | None = None) -> tuple[float, str]:
    command = ["wrk", f"-t{CONNECTIONS}", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    if script:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    if "Non-2xx or 3xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors on {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), out


def lua(sessions: list[str], cookies: list[str], last_seqs: list[int]) -> str:
    """The wrk script: thread n beats for session n, continuing after seq last_seqs[n]."""
    quote = lambda items: ", ".join(f'"{x}"' for x in items)  # noqa: E731
    return LUA % {
        "ids": quote(sessions),
        "cookies": quote(cookies),
        "firsts": ", ".join(map(str, last_seqs)),
    }


def main() -> int:
    global CONNECTIONS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the PostgreSQL schema first")
    parser.add_argument("--connections", type=int, default=8, help="members beating at once")
    args = parser.parse_args()
    CONNECTIONS = args.connections
    if not shutil.which("wrk"):
        sys.exit("bench/heartbeats.py needs wrk (apt install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="school-beats-"))
    procs: list[subprocess.Popen] = []
    try:
        env = instance_env(folder)
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
            if args.reset:
                import sqlalchemy as sa

                from school.db import engine_url

                with sa.create_engine(engine_url(args.database_url)).begin() as conn:
                    conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        os.environ.update(env)
        flask(env, "db", "upgrade")
        lesson_id, sessions, phones = make_rows(env["DATABASE_URL"])

        (folder / "bench_hello.py").write_text(HELLO_APP)
        ours, hello = free_port(), free_port()
        procs.append(start_gunicorn("app:app", env, ours, folder / "ours.log", []))
        procs.append(
            start_gunicorn("bench_hello:app", env, hello, folder / "hello.log", ["--pythonpath", str(folder)])
        )
        base, hello_url = f"http://127.0.0.1:{ours}", f"http://127.0.0.1:{hello}/"
        wait_healthy(base + "/healthz", procs[0], folder / "ours.log")
        wait_healthy(hello_url, procs[1], folder / "hello.log")
        cookies = [sign_in_cookie(base, phone, PASSWORD) for phone in phones]

        backend = env["DATABASE_URL"].split(":", 1)[0]
        print(f"database: {backend}; gunicorn 2 sync workers; wrk -t{CONNECTIONS} -c{CONNECTIONS}")
        print(f"{os.cpu_count()} CPUs shared by server, database and load generator")
        warm = folder / "warm.lua"
        warm.write_text(lua(sessions, cookies, [0] * CONNECTIONS))
        _, out = wrk(base + "/", WARM_UP, warm)
        warmed = last_seqs(env["DATABASE_URL"], sessions)
        measured = folder / "beats.lua"  # each session goes on from its last stored beat
        measured.write_text(lua(sessions, cookies, warmed))
        rate, out = wrk(base + "/", DURATION, measured)
        refused = sum(int(x) for x in re.findall(r"refused (\d+)", out))
        accepted = [a + b for a, b in zip(warmed, map(int, re.findall(r"accepted (\d+)", out)), strict=True)]
        for line in out.splitlines():
            if line.strip().startswith(("Latency", "Req/Sec")) or "requests in" in line:
                print(f"  {line.strip()}")
        problems = check_rows(env["DATABASE_URL"], sessions, accepted)
        print(f"beats refused: {refused}; lost intervals: {len(problems)}")
        for problem in problems:
            print(f"  {problem}")
        verdict = "met" if rate >= 1000 else "NOT met"
        print(f"heartbeats accepted ({backend}): {rate:.1f}/s (goal ≥ 1000/s: {verdict})")
        hello_rate, _ = wrk(hello_url, DURATION)
        print(f"bare Flask hello: {hello_rate:.1f} requests/s")
        print(f"ratio: {rate / hello_rate:.2f}")
        return 1 if refused or problems else 0
    finally:
        stop(procs)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
