"""Report exports run as jobs (large exports) with progress, and the hourly removal of old files."""

from huey import crontab

from school.extensions import huey
from school.jobs.service import handler
from school.reports import export_jobs


@handler(export_jobs.JOB_KIND)
def export_report(job, progress) -> dict:
    """Write a report's CSV/XLSX file for the organizer who asked (see export_jobs.run_export)."""
    return export_jobs.run_export(job, progress)


@handler("reports.expire_exports")
def expire_exports(job, progress) -> dict:
    """Delete export files past EXPORT_KEEP_HOURS."""
    from school import db

    return {"removed": export_jobs.expire_exports(db.utcnow())}


@huey.periodic_task(crontab(minute="23"))
def hourly_expire_exports() -> None:
    """Hourly: queue the removal of expired export files."""
    from school import db
    from school.jobs import service
    from school.worker import get_app

    with get_app().app_context():
        service.enqueue("reports.expire_exports")
        db.session.commit()
