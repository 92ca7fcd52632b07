"""Locust users of the mixed-load soak (run by bench/soak.py, which sets SOAK_PLAN and SOAK_LEDGER).

Members sign in, browse and play lesson videos, sending heartbeats as the player does (the played
interval equals the wall-clock time since the last beat, so every beat is plausible); organizers
open reports and download exports; a lecturer uploads a video in chunks and waits for its
transcode. Each accepted beat is counted per viewing session in SOAK_LEDGER, which bench/soak.py
compares with the database: a beat the client saw accepted and the server did not keep is lost.
"""

import itertools
import json
import os
import random
import re
import time
from pathlib import Path

from locust import HttpUser, between, events, task

PLAN = json.loads(Path(os.environ["SOAK_PLAN"]).read_text())
BEAT_SECONDS = PLAN["beat_seconds"]
LEDGER: dict[str, dict] = {}  # viewing session id → {"accepted": n, "refused": n}
_members = itertools.count()
_organizers = itertools.count()
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
FORM_TOKEN = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"')


@events.quitting.add_listener
def write_ledger(environment, **_):
    Path(os.environ["SOAK_LEDGER"]).write_text(json.dumps(LEDGER))


class SignedIn(HttpUser):
    abstract = True
    login = password = ""

    def sign_in(self) -> None:
        page = self.client.get("/sign-in", name="/sign-in")
        token = FORM_TOKEN.search(page.text).group(1)
        with self.client.post(
            "/sign-in",
            data={"login": self.login, "password": self.password, "csrf_token": token},
            allow_redirects=False,
            catch_response=True,
            name="/sign-in [POST]",
        ) as response:
            if response.status_code != 302:
                response.failure(f"sign-in as {self.login} answered {response.status_code}")
        home = self.client.get("/", name="/")
        found = CSRF.search(home.text)
        self.csrf = found.group(1) if found else ""


class Member(SignedIn):
    """Browses the library and plays videos, beating every BEAT_SECONDS like the real player."""

    weight = PLAN["members"]
    wait_time = between(1, 3)

    def on_start(self):
        account = PLAN["member_accounts"][next(_members) % len(PLAN["member_accounts"])]
        self.login, self.password = account, PLAN["password"]
        self.sign_in()

    @task(2)
    def browse(self):
        self.client.get("/", name="/")
        self.client.get("/courses", name="/courses")
        lesson = random.choice(PLAN["lessons"])
        self.client.get(f"/courses/{lesson['course_id']}", name="/courses/[id]")
        self.client.get(f"/search?q={random.choice(PLAN['queries'])}", name="/search")

    @task(3)
    def play(self):
        """Open a lesson, then play a stretch of it with heartbeats (a few beats, then move on)."""
        lesson = random.choice(PLAN["lessons"])
        self.client.get(f"/lessons/{lesson['id']}", name="/lessons/[id]")
        response = self.client.post(
            f"/api/v1/lessons/{lesson['id']}/viewings",
            headers={"X-CSRFToken": self.csrf},
            name="/api/v1/lessons/[id]/viewings",
        )
        if response.status_code != 201:
            return
        session_id = response.json()["session_id"]
        entry = LEDGER.setdefault(session_id, {"accepted": 0, "refused": 0})
        position, last = 0.0, time.monotonic()
        for seq in range(1, random.randint(3, 6)):
            time.sleep(BEAT_SECONDS)  # gevent-patched: the user waits, the process does not
            now = time.monotonic()
            played = min(now - last, lesson["duration"] - position)
            body = {"seq": seq, "from": round(position, 2), "to": round(position + played, 2), "rate": 1}
            with self.client.post(
                f"/api/v1/viewings/{session_id}/beats",
                json=body,
                catch_response=True,
                name="/api/v1/viewings/[id]/beats",
            ) as beat:
                if beat.status_code == 200:
                    entry["accepted"] += 1
                    position, last = position + played, now
                else:
                    entry["refused"] += 1
                    beat.failure(f"beat refused: {beat.status_code} {beat.text[:200]}")
                    return
            if position >= lesson["duration"]:
                return


class Organizer(SignedIn):
    """Opens reports, the comparison and warnings, and downloads exports."""

    weight = PLAN["organizers"]
    wait_time = between(2, 5)

    def on_start(self):
        accounts = PLAN["organizer_accounts"]
        self.login, self.password = accounts[next(_organizers) % len(accounts)], PLAN["password"]
        self.sign_in()

    @task
    def reports(self):
        for url in PLAN["organizer_pages"]:
            self.client.get(url, name=url.split("?")[0])

    @task
    def exports(self):
        for url in PLAN["organizer_exports"]:
            self.client.get(url, name=url.split("?")[0])


class Lecturer(SignedIn):
    """Uploads a small video to a draft lesson in chunks, then waits for its transcode."""

    weight = 1
    fixed_count = 1
    wait_time = between(20, 40)

    def on_start(self):
        self.login, self.password = PLAN["lecturer_account"], PLAN["password"]
        self.sign_in()
        self.video = Path(PLAN["upload_file"]).read_bytes()

    @task
    def upload(self):
        headers = {"X-CSRFToken": self.csrf, "Accept": "application/json"}
        started = self.client.post(
            "/api/v1/uploads",
            json={
                "purpose": "video",
                "filename": "压测上传.mp4",
                "size": len(self.video),
                "lesson_id": PLAN["upload_lesson_id"],
            },
            headers=headers,
            name="/api/v1/uploads",
        )
        if started.status_code != 201:
            return
        upload = started.json()
        chunk = upload["chunk_size"]
        for offset in range(0, len(self.video), chunk):
            self.client.put(
                f"/api/v1/uploads/{upload['id']}?offset={offset}",
                data=self.video[offset : offset + chunk],
                headers={**headers, "Content-Type": "application/octet-stream"},
                name="/api/v1/uploads/[id] [PUT]",
            )
        done = self.client.post(
            f"/api/v1/uploads/{upload['id']}/complete", headers=headers, name="/api/v1/uploads/[id]/complete"
        )
        job_id = (done.json() or {}).get("job_id") if done.status_code == 200 else None
        deadline = time.monotonic() + 120
        while job_id and time.monotonic() < deadline:
            state = self.client.get(f"/api/v1/jobs/{job_id}", name="/api/v1/jobs/[id]").json()
            if state.get("state") in ("done", "failed"):
                if state["state"] == "failed":
                    events.request.fire(
                        request_type="JOB",
                        name="transcode",
                        response_time=0,
                        response_length=0,
                        exception=RuntimeError(f"transcode failed: {state}"),
                    )
                break
            time.sleep(2)
