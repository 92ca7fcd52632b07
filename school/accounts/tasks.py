"""Account jobs run by the worker."""

from school import db
from school.accounts.service import purge_throttle
from school.jobs.service import handler


@handler("accounts.purge_throttle")
def purge_throttle_job(job, progress) -> dict:
    """Forget finished sign-in throttle windows (also run hourly by the worker)."""
    from flask import current_app

    removed = purge_throttle(db.utcnow(), current_app.config)
    db.session.commit()
    return {"removed": removed}
