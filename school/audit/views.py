"""The audit log page: admins read everything, organizers the entries of their subtree."""

from datetime import date

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.audit import service
from school.errors import Invalid
from school.orgs import service as orgs
from school.pagination import page_number, paginate
from school.reports import exports
from school.reports.service import Table

bp = Blueprint("audit", __name__)

EXPORT_MAX_ROWS = 10000


def _own_root() -> int | None:
    """Where a download of the whole log is filed: an organizer's (first) root; admins: site-wide."""
    if current_user.has_role("admin"):
        return None
    roots = current_user.organizer_org_ids
    return roots[0] if roots else None


def _day(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(_("Dates are written like 2026-11-28.")) from None


def _filters() -> service.Filters:
    """?action=&actor=&org_id=&from=&to= (an unknown action is refused with a message)."""
    args = request.args
    action = args.get("action") or None
    if action is not None and action not in service.ACTIONS:
        raise Invalid(_("Unknown action."))
    return service.Filters(
        action=action,
        actor=args.get("actor", "")[:64],
        org_id=access.org_param(args.get("org_id")),
        since=_day(args.get("from")),
        until=_day(args.get("to")),
    )


def _query(filters: service.Filters) -> dict:
    """The filters as URL parameters (for the pager and the download link)."""
    query = {
        "action": filters.action,
        "actor": filters.actor or None,
        "org_id": filters.org_id,
        "from": filters.since.isoformat() if filters.since else None,
        "to": filters.until.isoformat() if filters.until else None,
    }
    return {k: v for k, v in query.items() if v is not None}


@bp.get("/audit")
@access.organizer
def index():
    """Who did what, when and from where, in my subtree (admins: everywhere), newest first."""
    filters = _filters()
    stmt = service.entries_stmt(current_user, filters)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "audit/index.html",
        page=page,
        filters=filters,
        query=_query(filters),
        actions=service.ACTIONS,
        org=orgs.get_org(filters.org_id) if filters.org_id else None,
        org_options=orgs.org_options(current_user, include_closed=True),
        action_label=service.action_label,
        field_label=service.field_label,
    )


@bp.get("/audit.csv")
@access.organizer
def export_csv():
    """The filtered log as CSV (newest first, at most EXPORT_MAX_ROWS rows); the download is logged."""
    filters = _filters()
    entries = db.session.scalars(service.entries_stmt(current_user, filters).limit(EXPORT_MAX_ROWS)).all()
    headers = [_("Time"), _("Done by"), _("Action"), _("Organisation"), _("Concerning"), _("Details")]
    headers += [_("Address"), _("Browser")]
    rows = [
        [
            e.created_at.isoformat(sep=" ", timespec="seconds") + " UTC",
            e.actor_name or _("System"),
            service.action_label(e.action),
            e.org.name if e.org else "",
            e.target_label,
            e.details,
            e.address or "",
            e.user_agent or "",
        ]
        for e in entries
    ]
    body = exports.to_csv([Table(_("Audit log"), headers, rows, [None] * len(rows))])
    service.record_now(
        "audit.export",
        org_id=filters.org_id or _own_root(),
        details={**_query(filters), "rows": len(rows)},
    )
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": exports.disposition(_("audit-log") + ".csv")},
    )
