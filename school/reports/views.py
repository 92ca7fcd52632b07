"""Organiser reports: 学时 compliance rolled up the tree, as a page, CSV and XLSX."""

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access
from school.credits.service import study_year
from school.errors import NotFound
from school.orgs import service as orgs
from school.reports import exports, service

bp = Blueprint("reports", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report() -> service.HoursReport:
    """Parse ?org_id=&year= (default: my top organisation, this year), refuse outside my scope."""
    raw = request.args.get("org_id", "")
    if raw == "":
        top = orgs.top_orgs(current_user)
        if not top:
            raise NotFound()
        org_id = top[0].id
    elif raw.isdigit():
        org_id = int(raw)
    else:
        access.require(False)
    access.require(access.may_administer_org(current_user, org_id))
    year = service.check_year(request.args.get("year"), study_year())
    return service.hours_report(org_id, year, current_user)


def _filename(report: service.HoursReport, ext: str) -> str:
    return _("Study hours %(org)s %(year)s", org=report.org.name, year=report.year) + "." + ext


@bp.get("/reports/hours")
@access.organizer
def hours():
    """学时 compliance of an organisation's children (or a branch's members), with a chart."""
    report = _report()
    this_year = study_year()
    return render_template(
        "reports/hours.html",
        report=report,
        tables=service.hours_tables(report),
        years=range(this_year, this_year - 3, -1),
        quotas=service.quotas(),
    )


@bp.get("/reports/hours.csv")
@access.organizer
def hours_csv():
    """The same figures as the page, as CSV."""
    report = _report()
    body = exports.to_csv(service.hours_tables(report))
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": exports.disposition(_filename(report, "csv"))},
    )


@bp.get("/reports/hours.xlsx")
@access.organizer
def hours_xlsx():
    """The same figures as the page, as XLSX."""
    report = _report()
    body = exports.to_xlsx(service.hours_tables(report))
    return Response(
        body, mimetype=XLSX, headers={"Content-Disposition": exports.disposition(_filename(report, "xlsx"))}
    )
