"""Organiser reports: 学时 compliance, plan completion and per-course figures rolled up the tree, as
pages, CSV and XLSX (large exports run as jobs)."""

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.audit import service as audit
from school.credits.service import study_year
from school.reports import courses, export_jobs, exports, service

bp = Blueprint("reports", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIMETYPES = {"csv": "text/csv", "xlsx": XLSX}


def _download(kind: str, params: dict, fmt: str) -> Response:
    """The same figures as the page, as a file (written here: small reports)."""
    built = export_jobs.build(kind, params, current_user)
    body = export_jobs.render(export_jobs.export_tables(built), fmt)
    audit.record_now(
        "export.download", org_id=built.report.org.id, details={"report": kind, "format": fmt, **params}
    )
    return Response(
        body,
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": exports.disposition(f"{built.filename}.{fmt}")},
    )


def _export_context(kind: str, params: dict, built: export_jobs.Built) -> dict:
    """What the page's export buttons need: inline links, or a form that queues a job."""
    rows = export_jobs.row_count(export_jobs.export_tables(built))
    return {
        "export_kind": kind,
        "export_params": params,
        "export_as_job": rows > current_app.config["EXPORT_INLINE_ROWS"],
    }


def _hours_params() -> dict:
    return {"org_id": request.args.get("org_id", ""), "year": request.args.get("year", "")}


@bp.get("/reports/hours")
@access.organizer
def hours():
    """学时 compliance of an organisation's children (or a branch's members), with a chart."""
    built = export_jobs.build("hours", _hours_params(), current_user)
    report = built.report
    params = {"org_id": report.org.id, "year": report.year}
    this_year = study_year()
    return render_template(
        "reports/hours.html",
        report=report,
        tables=built.tables,
        weeks=built.trend,
        trend=export_jobs.trends.hours_trend_table(built.trend),
        years=range(this_year, this_year - 3, -1),
        quotas=service.quotas(),
        drill=lambda org_id: url_for("reports.hours", org_id=org_id, year=report.year),
        **_export_context("hours", params, built),
    )


@bp.get("/reports/hours.csv")
@access.organizer
def hours_csv():
    """The same figures as the page, as CSV."""
    return _download("hours", _hours_params(), "csv")


@bp.get("/reports/hours.xlsx")
@access.organizer
def hours_xlsx():
    """The same figures as the page, as XLSX."""
    return _download("hours", _hours_params(), "xlsx")


def _plan_params(plan_id: int) -> dict:
    return {"plan_id": plan_id, "org_id": request.args.get("org_id", "")}


@bp.get("/reports/plans/<int:plan_id>")
@access.organizer
def plan(plan_id: int):
    """A study plan's completion rolled up from its organisation (or a node inside it)."""
    built = export_jobs.build("plan", _plan_params(plan_id), current_user)
    report = built.report
    return render_template(
        "reports/plan.html",
        report=report,
        tables=built.tables,
        weeks=built.trend,
        trend=export_jobs.trends.plan_trend_table(built.trend),
        drill=lambda org_id: url_for("reports.plan", plan_id=plan_id, org_id=org_id),
        courses=sorted(
            {i.course or i.lesson.course for i in report.plan.items}, key=lambda c: (c.title, c.id)
        ),
        **_export_context("plan", {"plan_id": plan_id, "org_id": report.org.id}, built),
    )


@bp.get("/reports/plans/<int:plan_id>.csv")
@access.organizer
def plan_csv(plan_id: int):
    """The plan report as CSV."""
    return _download("plan", _plan_params(plan_id), "csv")


@bp.get("/reports/plans/<int:plan_id>.xlsx")
@access.organizer
def plan_xlsx(plan_id: int):
    """The plan report as XLSX."""
    return _download("plan", _plan_params(plan_id), "xlsx")


@bp.get("/reports/courses")
@access.organizer
def course_picker():
    """Published courses to report on, for my organisation (or ?org_id=)."""
    org_id = export_jobs.checked_org(current_user, request.args.get("org_id"))
    return render_template("reports/courses.html", items=courses.reportable_courses(), org_id=org_id)


def _course_params(course_id: int) -> dict:
    return {"course_id": course_id, "org_id": request.args.get("org_id", "")}


@bp.get("/reports/courses/<int:course_id>")
@access.organizer
def course(course_id: int):
    """One course among my members: completion, drop-off by lesson, quizzes, most-missed questions."""
    built = export_jobs.build("course", _course_params(course_id), current_user)
    report = built.report
    return render_template(
        "reports/course.html",
        report=report,
        tables=built.tables,
        **_export_context("course", {"course_id": course_id, "org_id": report.org.id}, built),
    )


@bp.get("/reports/courses/<int:course_id>.csv")
@access.organizer
def course_csv(course_id: int):
    """The course report as CSV."""
    return _download("course", _course_params(course_id), "csv")


@bp.get("/reports/courses/<int:course_id>.xlsx")
@access.organizer
def course_xlsx(course_id: int):
    """The course report as XLSX."""
    return _download("course", _course_params(course_id), "xlsx")


@bp.post("/reports/exports")
@access.organizer
def export_start():
    """Queue an export of a large report and go to the page that follows it."""
    job = export_jobs.request_export(
        current_user, request.form.get("kind", ""), request.form.get("format", ""), request.form
    )
    db.session.commit()
    return redirect(url_for("reports.export_status", job_id=job.id))


@bp.get("/reports/exports/<int:job_id>")
@access.organizer
def export_status(job_id: int):
    """An export I asked for: live progress, then its download link."""
    job = export_jobs.export_job(current_user, job_id)
    return render_template("reports/export.html", job=job, expires_at=export_jobs.expires_at(job))


@bp.get("/reports/exports/<int:job_id>.json")
@access.organizer
def export_status_json(job_id: int):
    """State and percentage of an export I asked for (polled by static/js/export.js)."""
    job = export_jobs.export_job(current_user, job_id)
    ready = job.state == "done"
    return jsonify(
        state=job.state,
        progress=job.progress,
        download=url_for("reports.export_download", job_id=job.id) if ready else None,
        failed=_("The export failed. Please try again later.") if job.state == "failed" else None,
    )


@bp.get("/reports/exports/<int:job_id>/download")
@access.organizer
def export_download(job_id: int):
    """The file of an export I asked for, until it expires."""
    job = export_jobs.export_job(current_user, job_id)
    path, filename = export_jobs.export_file(job, db.utcnow())
    audit.record_now(
        "export.download",
        org_id=job.result.get("org_id"),
        target=job,
        details={"report": job.args["kind"], "format": job.args["format"], **job.args["params"]},
    )
    fmt = path.suffix.lstrip(".")
    response = send_file(path, mimetype=MIMETYPES[fmt], max_age=0)
    response.headers["Content-Disposition"] = exports.disposition(filename)
    return response
