"""Huey tasks. The queue carries job ids only; the worker builds the app once (school.worker)."""

from huey import crontab

from school.extensions import huey


def _app():
    from school.worker import get_app

    return get_app()


@huey.task(retries=0)
def run_job(job_id: int) -> str:
    """Run one job row to its end."""
    from school.jobs import service

    app = _app()
    with app.app_context():
        return service.run(job_id, app.config)


@huey.periodic_task(crontab(minute="*"))
def sweep_jobs() -> list:
    """Every minute: resend jobs whose worker died or that never reached the queue."""
    from school import db
    from school.jobs import service

    with _app().app_context():
        return service.sweep(db.utcnow())


@huey.periodic_task(crontab(minute="7"))
def hourly_cleanup() -> None:
    """Hourly: forget finished sign-in failure windows, delete expired partial uploads."""
    from school import db
    from school.jobs import service

    with _app().app_context():
        service.enqueue("accounts.purge_throttle")
        service.enqueue("media.expire_uploads")
        db.session.commit()
