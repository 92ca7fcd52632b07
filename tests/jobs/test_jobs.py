"""Jobs go through the real queue (SQLite file, or Redis when QUEUE_URL says so)."""

import os
from datetime import timedelta

from school import db
from school.extensions import huey
from school.jobs import service
from school.jobs.models import Job

CALLS: list[int] = []


@service.handler("test.count")
def count_job(job, progress):
    progress(50, "half way")
    CALLS.append(job.id)
    return {"seen": job.args.get("n")}


@service.handler("test.explode")
def explode_job(job, progress):
    raise ValueError("磁盘已满")


def drain(app) -> int:
    """Run what the queue holds now, as a worker would; returns how many tasks ran."""
    ran = 0
    while (task := huey.dequeue()) is not None:
        with app.app_context():
            huey.execute(task)
        ran += 1
    return ran


def test_a_job_is_queued_after_commit_and_runs_to_done(app):
    CALLS.clear()
    with app.app_context():
        job = service.enqueue("test.count", {"n": 7})
        assert huey.pending_count() == 0  # nothing is sent before the commit
        db.session.commit()
    assert huey.pending_count() == 1
    assert drain(app) == 1
    with app.app_context():
        done = db.session.get(Job, job.id)
        assert (done.state, done.progress, done.result, done.attempts) == ("done", 100, {"seen": 7}, 1)
    assert CALLS == [job.id]


def test_a_rolled_back_job_is_never_sent(app):
    with app.app_context():
        service.enqueue("test.count")
        db.session.rollback()
    assert huey.pending_count() == 0


def test_a_job_sent_twice_runs_once(app):
    CALLS.clear()
    with app.app_context():
        job = service.enqueue("test.count")
        db.session.commit()
        service.send(job.id)
    drain(app)
    assert CALLS == [job.id]


def test_a_failing_job_is_retried_then_marked_failed_with_its_error(app):
    with app.app_context():
        job = service.enqueue("test.explode", max_attempts=2)
        db.session.commit()
        assert service.run(job.id, app.config) == "queued"
        assert service.run(job.id, app.config) == "failed"
        failed = db.session.get(Job, job.id)
        assert failed.attempts == 2 and failed.message == "磁盘已满"


FLAKY: list[int] = []


@service.handler("test.flaky")
def flaky_job(job, progress):
    FLAKY.append(job.id)
    if len(FLAKY) == 1:
        raise OSError("磁盘暂时不可用")
    return {}


def test_a_job_that_succeeds_on_retry_no_longer_shows_the_first_error(app):
    FLAKY.clear()
    with app.app_context():
        job = service.enqueue("test.flaky")
        db.session.commit()
        assert service.run(job.id, app.config) == "queued"
        assert db.session.get(Job, job.id).message == "磁盘暂时不可用"
        assert service.run(job.id, app.config) == "done"
        done = db.session.get(Job, job.id)
        assert (done.attempts, done.message) == (2, None)


def test_a_job_whose_worker_died_is_taken_back(app):
    with app.app_context():
        job = service.enqueue("test.count")
        db.session.commit()
        claimed = service.claim(job.id, db.utcnow(), 120)
        claimed.worker = f"{service.WORKER_ID.rsplit(':', 1)[0]}:{2**22 + 12345}"  # no such pid
        db.session.commit()
        assert service.claim(job.id, db.utcnow(), 120) is None  # lease still held
        assert service.sweep(db.utcnow()) == [job.id]
    drain(app)
    with app.app_context():
        assert db.session.get(Job, job.id).state == "done"


def test_an_expired_lease_lets_another_worker_claim_the_job(app):
    with app.app_context():
        job = service.enqueue("test.count")
        db.session.commit()
        service.claim(job.id, db.utcnow(), 120)
        later = db.utcnow() + timedelta(seconds=121)
        assert service.claim(job.id, later, 120) is not None


def test_running_job_of_a_live_worker_is_left_alone(app):
    with app.app_context():
        job = service.enqueue("test.count")
        db.session.commit()
        claimed = service.claim(job.id, db.utcnow(), 120)
        claimed.worker = f"{service.WORKER_ID.rsplit(':', 1)[0]}:{os.getpid()}"
        db.session.commit()
        assert service.sweep(db.utcnow()) == []


def test_jobs_cli_lists_and_retries(app):
    with app.app_context():
        job = service.enqueue("test.explode", max_attempts=1)
        db.session.commit()
        service.run(job.id, app.config)
    runner = app.test_cli_runner()
    listed = runner.invoke(app.cli, ["jobs", "list"])
    assert "test.explode" in listed.output and "failed" in listed.output
    retried = runner.invoke(app.cli, ["jobs", "retry", str(job.id)])
    assert retried.exit_code == 0, retried.output
    with app.app_context():
        assert db.session.get(Job, job.id).state == "queued"
    assert huey.pending_count() >= 1
    refused = runner.invoke(app.cli, ["jobs", "retry", "999999"])
    assert refused.exit_code != 0


def test_throttle_purge_job_forgets_old_windows(app):
    from school.accounts.models import LoginThrottle

    with app.app_context():
        old = db.utcnow() - timedelta(days=1)
        db.session.add(LoginThrottle(key="account:x", failures=2, window_start=old))
        job = service.enqueue("accounts.purge_throttle")
        db.session.commit()
    drain(app)
    with app.app_context():
        assert db.session.get(Job, job.id).result == {"removed": 1}
        assert db.session.get(LoginThrottle, "account:x") is None
