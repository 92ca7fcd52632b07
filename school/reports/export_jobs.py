"""Building any report from plain parameters (for pages, inline exports and export jobs), and the
files large exports are written to.

A report is named by a kind ("hours", "plan", "course") and its parameters; `build()` checks the
viewer's scope every time, so a job re-checks it when it runs, not only when it was asked for.
Export files live under the instance folder with a random name, belong to the job's creator and
are deleted after EXPORT_KEEP_HOURS.
"""

import errno
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from school import access, db, settings
from school.accounts.models import User
from school.audit import service as audit
from school.credits.service import local_now, study_year
from school.errors import DiskFull, Forbidden, Invalid, NotFound
from school.jobs.models import Job
from school.orgs import service as orgs
from school.reports import courses, exports, plans, service, trends
from school.reports.service import Table

KINDS = ("hours", "plan", "course")
FORMATS = ("csv", "xlsx")
JOB_KIND = "reports.export"


@dataclass
class Built:
    report: object
    tables: list[Table]
    filename: str  # without extension
    trend: list[trends.Week]


def _int(raw, message) -> int:
    if raw is None or not str(raw).isdigit():
        raise Invalid(message)
    return int(raw)


def default_org(viewer: User) -> int:
    top = orgs.top_orgs(viewer)
    if not top:
        raise NotFound()
    return top[0].id


def checked_org(viewer: User, raw) -> int:
    """?org_id= (default: my top organisation), refused outside my subtree."""
    if raw in (None, ""):
        return default_org(viewer)
    if not str(raw).isdigit() or not access.may_administer_org(viewer, int(raw)):
        raise Forbidden(_("You may only see reports of the organisations you manage."))
    return int(raw)


def build(kind: str, params: dict, viewer: User) -> Built:
    """The report of this kind for these parameters, refused outside the viewer's scope."""
    today = local_now().date()
    if kind == "hours":
        org_id = checked_org(viewer, params.get("org_id"))
        year = service.check_year(params.get("year"), study_year())
        report = service.hours_report(org_id, year, viewer)
        name = _("Study hours %(org)s %(year)s", org=report.org.name, year=year)
        weeks = trends.hours_weeks(org_id, year, today)
        return Built(report, service.hours_tables(report), name, weeks)
    if kind == "plan":
        plan_id = _int(params.get("plan_id"), _("No such study plan."))
        plan, org_id = plans.report_node(viewer, plan_id, params.get("org_id"))
        report = plans.plan_report(plan, org_id, viewer, today)
        name = _("Study plan %(title)s %(org)s", title=plan.title, org=report.org.name)
        lesson_ids = plans.plan_lesson_ids(plan)
        weeks = trends.plan_weeks(plan, org_id, lesson_ids, today)
        return Built(report, plans.plan_tables(report), name, weeks)
    if kind == "course":
        course = courses.get_course(_int(params.get("course_id"), _("No such published course.")))
        org_id = checked_org(viewer, params.get("org_id"))
        report = courses.course_report(course, org_id, viewer)
        name = _("Course %(title)s %(org)s", title=course.title, org=report.org.name)
        return Built(report, courses.course_tables(report), name, [])
    raise Invalid(_("Unknown report."))


def export_tables(built: Built) -> list[Table]:
    """What an export writes: the page's tables and, when the page has one, its weekly trend."""
    if built.trend and isinstance(built.report, service.HoursReport):
        return [*built.tables, trends.hours_trend_table(built.trend)]
    if built.trend:
        return [*built.tables, trends.plan_trend_table(built.trend)]
    return built.tables


def row_count(tables: list[Table]) -> int:
    return sum(len(t.rows) for t in tables)


def render(tables: list[Table], fmt: str, progress=None) -> bytes:
    if fmt == "csv":
        return exports.to_csv(tables, progress=progress)
    return exports.to_xlsx(tables, progress=progress)


def clean_params(kind: str, raw: dict) -> dict:
    """Only the parameters a report of this kind takes, as strings (they go into the job row)."""
    if kind not in KINDS:
        raise Invalid(_("Unknown report."))
    names = {"hours": ("org_id", "year"), "plan": ("plan_id", "org_id"), "course": ("course_id", "org_id")}
    return {name: str(raw.get(name) or "") for name in names[kind]}


def request_export(viewer: User, kind: str, fmt: str, raw: dict) -> Job:
    """Queue an export of a report the viewer may see; the file is written by the worker."""
    from school.jobs import service as jobs

    if fmt not in FORMATS:
        raise Invalid(_("Choose CSV or Excel."))
    params = clean_params(kind, raw)
    built = build(kind, params, viewer)  # refuses now what the job would refuse later
    job = jobs.enqueue(JOB_KIND, {"kind": kind, "format": fmt, "params": params}, created_by_id=viewer.id)
    audit.record(
        "export.request",
        org_id=built.report.org.id,
        target=job,
        details={"report": kind, "format": fmt, **params},
        actor=viewer,
    )
    return job


def export_dir() -> Path:
    path = settings.instance_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_export(job: Job, progress) -> dict:
    """Job handler: build the report as its creator sees it now and write the file."""
    viewer = db.session.get(User, job.created_by_id) if job.created_by_id else None
    if viewer is None or not viewer.active or not access.has_role(viewer, "organizer"):
        from school.jobs.service import JobRejected

        raise JobRejected("the person who asked for this export may no longer see reports")
    kind, fmt, params = job.args["kind"], job.args["format"], job.args["params"]
    progress(5, "building the report")
    built = build(kind, params, viewer)
    tables = export_tables(built)
    # End the read before the slow render and file write: a worker's transaction on SQLite holds
    # the write lock, and the site (sign-ins, progress) must not wait for a large export.
    db.session.commit()
    total = max(1, row_count(tables))
    done = 0

    def tick(rows: int) -> None:
        nonlocal done
        done += rows
        progress(10 + 85 * done / total)

    body = render(tables, fmt, progress=tick)
    name = f"{job.id}-{secrets.token_hex(8)}.{fmt}"
    path = export_dir() / name
    partial = path.with_suffix(".part")
    try:
        with open(partial, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())  # whole on disk before it gets its final name
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)  # never leave a half file behind
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            # Retried by the job runner (DiskFull is no JobRejected); the page shows this reason.
            raise DiskFull(_("The server's storage is full, so the export could not be written.")) from None
        raise
    org_id = built.report.org.id  # the download's audit entry is filed under it
    return {"file": name, "filename": f"{built.filename}.{fmt}", "rows": row_count(tables), "org_id": org_id}


def expires_at(job: Job) -> datetime | None:
    if job.finished_at is None:
        return None
    return job.finished_at + timedelta(hours=current_app.config["EXPORT_KEEP_HOURS"])


def export_job(viewer: User, job_id: int) -> Job:
    """An export job the viewer asked for; anyone else's is not found (not even admins')."""
    job = db.session.get(Job, job_id)
    if job is None or job.kind != JOB_KIND or job.created_by_id != viewer.id:
        raise NotFound(_("No such export."))
    # The file holds one organisation's figures: once the requester's grant no longer covers it
    # (moved to another district), the export is theirs no more (tests/security/
    # test_authorization_matrix.py).
    org_id = (job.result or {}).get("org_id")
    if org_id is not None and not access.may_administer_org(viewer, org_id):
        raise NotFound(_("No such export."))
    return job


def export_file(job: Job, now: datetime) -> tuple[Path, str]:
    """(path, download name) of a finished export, refused once it has expired."""
    if job.state != "done" or not job.result:
        raise NotFound(_("This export is not ready yet."))
    path = export_dir() / Path(job.result["file"]).name
    if now >= expires_at(job) or not path.exists():
        raise NotFound(_("This export has expired. Please export the report again."))
    return path, job.result["filename"]


def expire_exports(now: datetime) -> int:
    """Delete export files older than EXPORT_KEEP_HOURS (and stray partial files); how many."""
    keep = timedelta(hours=current_app.config["EXPORT_KEEP_HOURS"])
    removed = 0
    for path in export_dir().iterdir():
        if datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None) < now - keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
