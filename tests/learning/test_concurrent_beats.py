"""Four devices of one member send beats for the same lesson at once, through gunicorn with four
worker processes, on the test database (SQLite, or PostgreSQL in CI): no interval is lost, every
beat gets a clean answer, and the lesson is credited once."""

import os
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bench.live_site import BIN, ROOT, free_port, wait_healthy
from school import db
from school.credits.models import CreditEntry
from school.learning import service as learning
from school.learning.models import ViewingSession
from tests.conftest import DATABASE_URL, csrf_from
from tests.factories import PASSWORD, make_lesson, make_user

DEVICES, BEATS, STEP = 4, 15, 10.0  # each device plays its own 150 s part in 10 s beats


@pytest.fixture()
def server(app, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "PORT": str(port), "WEB_WORKERS": "4"}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            [str(BIN / "gunicorn"), "-c", "school/gunicorn_conf.py", "app:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/sign-in", proc, log, seconds=60)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def device(url: str, phone: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{url}/sign-in")
    http.post(
        f"{url}/sign-in", data={"login": phone, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    http.headers["X-CSRFToken"] = http.get(f"{url}/api/v1/csrf-token").json()["csrf_token"]
    return http


def test_four_devices_and_four_processes_lose_no_interval(app, server):
    url, log = server
    with app.app_context():
        member = make_user()
        lesson = make_lesson(duration=DEVICES * BEATS * STEP, credit="3")
        phone, lesson_id = member.phone, lesson.id
    devices = [device(url, phone) for _ in range(DEVICES)]
    sessions = []
    for http in devices:  # each opening takes over from the one before
        answer = http.post(f"{url}/api/v1/lessons/{lesson_id}/viewings")
        assert answer.status_code == 201, answer.text
        sessions.append(answer.json()["session_id"])
    with app.app_context():  # as if every device had been playing for an hour
        for viewing in db.session.scalars(sa.select(ViewingSession).where(ViewingSession.id.in_(sessions))):
            viewing.started_at -= timedelta(hours=1)
        db.session.commit()

    answers: list[tuple[int, int, str]] = []
    failures: list[str] = []
    go = threading.Barrier(DEVICES)

    def play(k: int) -> None:
        http, sid = devices[k], sessions[k]
        go.wait()
        try:
            for i in range(BEATS):
                a = (k * BEATS + i) * STEP
                body = {"seq": i + 1, "from": a, "to": a + STEP, "rate": 1}
                for attempt in range(2):  # every beat is sent twice, as after a lost answer
                    r = http.post(f"{url}/api/v1/viewings/{sid}/beats", json=body, timeout=30)
                    code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
                    answers.append((attempt, r.status_code, code))
        except Exception as error:  # noqa: BLE001 (collected and reported below)
            failures.append(repr(error))

    threads = [threading.Thread(target=play, args=(k,)) for k in range(DEVICES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    assert [a for a in answers if a[0] == 0 and a[1] != 200] == [], Path(log).read_text()[-3000:]
    assert {a[1:] for a in answers if a[0] == 1} == {(409, "stale_seq")}
    with app.app_context():
        progress = learning.get_progress(member.id, lesson_id)
        assert progress.watched == [(0.0, DEVICES * BEATS * STEP)]
        assert progress.coverage == 1.0 and progress.completed_at is not None
        credits = db.session.scalars(
            sa.select(CreditEntry.amount).where(CreditEntry.user_id == member.id)
        ).all()
        assert [float(c) for c in credits] == [3.0]
    assert "Traceback" not in Path(log).read_text()
