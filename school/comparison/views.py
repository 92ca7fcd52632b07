"""Comparing organisations: the children of a node side by side, as a page, CSV and XLSX."""

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access
from school.audit import service as audit
from school.comparison import service
from school.credits.service import local_now
from school.errors import Invalid, NotFound
from school.orgs import service as orgs
from school.reports import exports

bp = Blueprint("comparison", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _comparison() -> service.Comparison:
    """Parse ?org_id=&period=&from=&to=&plan_id=&sort= (default: my top organisation, last 30
    days); refuse organisations and plans outside my scope."""
    args = request.args
    raw = args.get("org_id", "")
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
    node = orgs.get_org(org_id)
    period = service.parse_period(args.get("period"), args.get("from"), args.get("to"), local_now().date())
    plan = None
    raw_plan = args.get("plan_id", "").strip()
    if raw_plan:
        if not raw_plan.isdigit():
            raise Invalid(_("No such study plan."))
        plan = service.resolve_plan(current_user, node, int(raw_plan))
    sort = service.check_sort(args.get("sort"), plan)
    personal = bool(current_app.config["PERSONAL_RANKINGS"])
    return service.compare(node.id, period, current_user, plan, sort, personal)


def _query(result: service.Comparison, **changes) -> dict:
    """The URL parameters of this comparison, with some changed (for links and downloads)."""
    period = result.period
    query = {"org_id": result.org.id, "period": period.kind, "sort": result.sort}
    if period.kind == "custom":
        query.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
    if result.plan is not None:
        query["plan_id"] = result.plan.id
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}


def _filename(result: service.Comparison, ext: str) -> str:
    name = _(
        "Comparison %(org)s %(first)s to %(last)s",
        org=result.org.name,
        first=result.period.first.isoformat(),
        last=result.period.last.isoformat(),
    )
    return f"{name}.{ext}"


@bp.get("/compare")
@access.organizer
def compare():
    """The children of an organisation side by side over a period, by rates per member."""
    result = _comparison()
    return render_template(
        "comparison/compare.html",
        result=result,
        tables=service.tables(result),
        bars=service.bars(result),
        periods=service.PERIODS,
        measures=service.MEASURES,
        columns=["name", "members", *service.measure_columns(result)],
        percent=service.PERCENT_MEASURES,
        plans=service.plan_choices(result.org),
        min_members=service.MIN_MEMBERS,
        query=lambda **changes: _query(result, **changes),
    )


@bp.get("/compare.csv")
@access.organizer
def compare_csv():
    """The same figures as the page, as CSV."""
    result = _comparison()
    audit.record_now(
        "export.download",
        org_id=result.org.id,
        details={"report": "comparison", "format": "csv", **_query(result)},
    )
    return Response(
        exports.to_csv(service.tables(result)),
        mimetype="text/csv",
        headers={"Content-Disposition": exports.disposition(_filename(result, "csv"))},
    )


@bp.get("/compare.xlsx")
@access.organizer
def compare_xlsx():
    """The same figures as the page, as XLSX."""
    result = _comparison()
    audit.record_now(
        "export.download",
        org_id=result.org.id,
        details={"report": "comparison", "format": "xlsx", **_query(result)},
    )
    return Response(
        exports.to_xlsx(service.tables(result)),
        mimetype=XLSX,
        headers={"Content-Disposition": exports.disposition(_filename(result, "xlsx"))},
    )
