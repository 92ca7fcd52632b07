"""Background jobs: state in the application database, execution through the Huey queue.

A job row is the truth (state, progress, error, attempts, lease); the queue only carries its id.
A worker claims a job by taking a lease with one conditional UPDATE, so a job sent twice runs once,
and a job whose worker died (lease expired) is claimed again by the next sweep or worker start.
"""

import logging
import os
import socket
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import event

from school import db
from school.errors import Invalid, NotFound
from school.jobs.models import Job

log = logging.getLogger(__name__)


class JobRejected(Exception):
    """Raised by a handler for a failure that retrying cannot fix (e.g. not a video file)."""


# kind -> handler(job, progress) returning an optional result dict. Filled by each */tasks.py.
HANDLERS: dict[str, Callable] = {}

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def handler(kind: str) -> Callable:
    """Register the function that runs jobs of this kind."""

    def register(func: Callable) -> Callable:
        HANDLERS[kind] = func
        return func

    return register


def enqueue(
    kind: str, args: dict | None = None, created_by_id: int | None = None, max_attempts: int = 3
) -> Job:
    """Add a job; it is sent to the queue once the surrounding transaction commits."""
    if kind not in HANDLERS:
        raise Invalid(f"unknown job kind {kind}")
    job = Job(kind=kind, args=args or {}, created_by_id=created_by_id, max_attempts=max_attempts)
    db.session.add(job)
    db.session.flush()
    db.session.info.setdefault("jobs_to_send", []).append(job.id)
    return job


@event.listens_for(db.session, "after_commit")
def _send_after_commit(session) -> None:
    # Sending before the commit would let a fast worker look for a row it cannot see yet.
    ids = session.info.pop("jobs_to_send", [])
    for job_id in ids:
        send(job_id)


@event.listens_for(db.session, "after_rollback")
def _forget_on_rollback(session) -> None:
    session.info.pop("jobs_to_send", None)


def send(job_id: int, delay: int = 0) -> None:
    """Put a job id on the queue; a queue outage is logged, and the sweep sends it later."""
    from school.jobs.tasks import run_job

    try:
        if delay:
            run_job.schedule(args=(job_id,), delay=delay)
        else:
            run_job(job_id)
    except Exception:  # the row stays queued; sweep() resends it
        log.exception("could not send job %s to the queue", job_id)


class Progress:
    """Handed to a handler: report(percent, message) saves progress and renews the lease.

    It commits the handler's work so far, so handlers keep their steps idempotent.
    """

    def __init__(self, job: Job, lease_seconds: int):
        self.job = job
        self.lease = timedelta(seconds=lease_seconds)

    def __call__(self, percent: float, message: str | None = None) -> None:
        self.job.progress = max(0, min(99, int(percent)))
        if message is not None:
            self.job.message = message[:500]
        self.job.lease_expires_at = db.utcnow() + self.lease
        db.session.commit()


def claim(job_id: int, now: datetime, lease_seconds: int) -> Job | None:
    """Take the lease of a queued job (or of a running one whose lease ran out); None if taken."""
    claimable = sa.or_(Job.state == "queued", sa.and_(Job.state == "running", Job.lease_expires_at < now))
    result = db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, claimable)
        .values(
            state="running",
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            worker=WORKER_ID,
            started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    job = db.session.get(Job, job_id)
    db.session.refresh(job)
    return job


def run(job_id: int, config: dict) -> str:
    """Run one job to its end; returns its final state. Called by the worker's Huey task."""
    job = claim(job_id, db.utcnow(), config["JOB_LEASE_SECONDS"])
    if job is None:
        return "skipped"
    func = HANDLERS.get(job.kind)
    earlier_error = job.message if job.attempts > 1 else None
    try:
        if func is None:
            raise RuntimeError(f"no handler for job kind {job.kind!r}")
        result = func(job, Progress(job, config["JOB_LEASE_SECONDS"]))
    except Exception as error:
        db.session.rollback()
        log.warning("job %s (%s) failed: %s", job_id, job.kind, error)
        job = db.session.get(Job, job_id)
        job.message = (str(error) or error.__class__.__name__)[:500]
        log.debug("%s", traceback.format_exc())
        job.lease_expires_at = None
        if job.attempts < job.max_attempts and not isinstance(error, JobRejected):
            job.state = "queued"
            db.session.commit()
            send(job_id, delay=min(300, 10 * 2 ** (job.attempts - 1)))
        else:
            job.state = "failed"
            job.finished_at = db.utcnow()
            db.session.commit()
        return job.state
    job.state, job.progress, job.result = "done", 100, result
    job.finished_at, job.lease_expires_at = db.utcnow(), None
    if earlier_error is not None and job.message == earlier_error:
        job.message = None  # the error of an attempt a later one got past is no longer news
    db.session.commit()
    return "done"


def retry(job_id: int) -> Job:
    """Queue a failed job again with a fresh set of attempts."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise NotFound(_("No such job."))
    if job.state != "failed":
        raise Invalid(_("Only failed jobs can be retried."))
    job.state, job.attempts, job.progress, job.finished_at = "queued", 0, 0, None
    db.session.info.setdefault("jobs_to_send", []).append(job.id)
    return job


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(now: datetime, worker_start: bool = False) -> list[int]:
    """Resend jobs that were lost: expired leases, dead local workers, queued rows never sent.

    Runs every minute in the worker, and at worker start.
    """
    host = socket.gethostname()
    lost = []
    for job in db.session.scalars(sa.select(Job).where(Job.state.in_(("queued", "running")))):
        if job.state == "running":
            owner_host, _sep, pid = (job.worker or "").rpartition(":")
            dead_here = owner_host == host and pid.isdigit() and not pid_alive(int(pid))
            expired = job.lease_expires_at is not None and job.lease_expires_at < now
            if dead_here or expired:
                job.state, job.lease_expires_at = "queued", None
                lost.append(job.id)
        elif worker_start or job.created_at < now - timedelta(minutes=2):
            lost.append(job.id)
    db.session.commit()
    for job_id in lost:
        send(job_id)
    return lost


def list_jobs(limit: int = 50, state: str | None = None) -> list[Job]:
    """The newest jobs, optionally in one state."""
    stmt = sa.select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Job.state == state)
    return list(db.session.scalars(stmt))
