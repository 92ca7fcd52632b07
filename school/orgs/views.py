"""Organizer pages: the members of my subtree, and an organisation with its children."""

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user

from school import access
from school.orgs import service
from school.pagination import page_number, paginate

bp = Blueprint("orgs", __name__)


def org_filter(raw: str | None) -> int | None:
    """The ?org_id= filter, refused when it is outside the viewer's subtree."""
    if raw in (None, ""):
        return None
    if not str(raw).isdigit():
        access.require(False)
    org_id = int(raw)
    access.require(access.may_administer_org(current_user, org_id))
    return org_id


@bp.get("/members")
@access.organizer
def members():
    """Members of my subtree, searchable by name or phone, paged."""
    org_id = org_filter(request.args.get("org_id"))
    text = request.args.get("q", "")
    stmt = service.members_stmt(current_user, org_id, text)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "orgs/members.html",
        page=page,
        q=text,
        org=service.get_org(org_id) if org_id else None,
        top=service.top_orgs(current_user),
    )


@bp.get("/orgs/<int:org_id>")
@access.organizer
def org(org_id: int):
    """One organisation: breadcrumbs, head-count, children with theirs."""
    access.require(access.may_administer_org(current_user, org_id))
    node = service.get_org(org_id)
    return render_template(
        "orgs/org.html",
        org=node,
        trail=service.ancestors(node),
        total=service.member_count(node),
        children=service.children_with_counts(node),
    )
