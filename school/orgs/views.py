"""Organizer pages: the members of my subtree, an organisation with its children, and changes to
the tree (add, rename, move, close, reopen)."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from school import access, db
from school.errors import Invalid
from school.orgs import service
from school.orgs.forms import KIND_CHOICES, KIND_NAMES, MoveForm, NewOrgForm, RenameForm
from school.pagination import page_number, paginate
from school.plans.forms import CATEGORY_CHOICES

bp = Blueprint("orgs", __name__)


def member_filter(args) -> service.MemberFilter:
    """The list's ?category=&state=&idle= filters; an unknown value is refused with a message."""
    category = args.get("category") or None
    if category is not None and category not in service.MEMBER_CATEGORIES:
        raise Invalid(_("Unknown member category."))
    state = args.get("state") or None
    if state is not None and state not in service.MEMBER_STATES:
        raise Invalid(_("Unknown member state."))
    idle = args.get("idle") or None
    if idle is not None and idle not in {str(d) for d in service.IDLE_DAYS}:
        raise Invalid(_("Choose 30 or 90 days."))
    return service.MemberFilter(category, state, int(idle) if idle else None)


@bp.get("/members")
@access.organizer
def members():
    """Members of my subtree, searchable by name or phone, filtered by category, branch, state and
    recent study, paged."""
    org_id = access.org_param(request.args.get("org_id"))
    text = request.args.get("q", "")
    filters = member_filter(request.args)
    stmt = service.members_stmt(current_user, org_id, text, filters)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "orgs/members.html",
        page=page,
        q=text,
        filters=filters,
        org=service.get_org(org_id) if org_id else None,
        top=service.top_orgs(current_user),
        org_options=service.org_options(current_user),
        categories=CATEGORY_CHOICES,
        idle_days=service.IDLE_DAYS,
    )


@bp.get("/orgs/<int:org_id>")
@access.organizer
def org(org_id: int):
    """One organisation: breadcrumbs, head-count, children with theirs, and its history."""
    access.require(access.may_administer_org(current_user, org_id))
    node = service.get_org(org_id)
    return render_template(
        "orgs/org.html",
        org=node,
        trail=service.ancestors(node),
        total=service.member_count(node),
        children=service.children_with_counts(node),
        events=service.org_events(node),
        may_edit=access.may_edit_org(current_user, node.id),
        kind_names=KIND_NAMES,
    )


def _editable(org_id: int):
    """The org, when the viewer may change it (strictly inside their subtree; admins anywhere)."""
    access.require(access.may_edit_org(current_user, org_id))
    return service.get_org(org_id)


def _refused(error: Invalid) -> None:
    db.session.rollback()
    flash(error.message, "error")


@bp.route("/orgs/<int:org_id>/new", methods=["GET", "POST"])
@access.organizer
def new_child(org_id: int):
    """Add an organisation under this one."""
    access.require(access.may_administer_org(current_user, org_id))
    parent = service.get_org(org_id)
    form = NewOrgForm()
    status = 200
    if request.method == "POST":
        try:
            child = service.add_child(current_user, parent, form.name.data, form.kind.data)
        except Invalid as error:
            _refused(error)
            status = 400
        else:
            db.session.commit()
            flash(_("%(name)s has been added.", name=child.name), "info")
            return redirect(url_for("orgs.org", org_id=child.id))
        parent = service.get_org(org_id)
    return render_template("orgs/new.html", form=form, parent=parent, kinds=KIND_CHOICES), status


@bp.route("/orgs/<int:org_id>/rename", methods=["GET", "POST"])
@access.organizer
def rename(org_id: int):
    """Rename an organisation below my own."""
    node = _editable(org_id)
    form = RenameForm() if request.method == "POST" else RenameForm(data={"name": node.name})
    status = 200
    if request.method == "POST":
        try:
            service.rename_org(current_user, node, form.name.data)
        except Invalid as error:
            _refused(error)
            status = 400
            node = service.get_org(org_id)
        else:
            db.session.commit()
            flash(_("Saved."), "info")
            return redirect(url_for("orgs.org", org_id=node.id))
    return render_template("orgs/rename.html", form=form, org=node), status


@bp.route("/orgs/<int:org_id>/move", methods=["GET", "POST"])
@access.organizer
def move(org_id: int):
    """Move an organisation, with everything under it, under another one in my subtree."""
    node = _editable(org_id)
    form = MoveForm()
    status = 200
    if request.method == "POST":
        parent_id = form.parent_id.data
        try:
            if parent_id is None:
                raise Invalid(_("Choose where to move it."))
            access.require(access.may_administer_org(current_user, parent_id))
            service.relocate_org(current_user, node, service.get_org(parent_id))
        except Invalid as error:
            _refused(error)
            status = 400
            node = service.get_org(org_id)
        else:
            db.session.commit()
            flash(_("%(name)s has been moved.", name=node.name), "info")
            return redirect(url_for("orgs.org", org_id=org_id))
    options = service.org_options(current_user, leave_out=node.id, below_level=service.KIND_LEVEL[node.kind])
    form.parent_id.choices = [SelectChoice(o.id, o.label) for o in options if o.id != node.parent_id]
    return render_template("orgs/move.html", form=form, org=node, trail=service.ancestors(node)), status


@bp.post("/orgs/<int:org_id>/close")
@access.organizer
def close(org_id: int):
    """Close an organisation that has no active members and nothing open under it."""
    node = _editable(org_id)
    try:
        service.close_org(current_user, node, db.utcnow())
    except Invalid as error:
        _refused(error)
    else:
        db.session.commit()
        flash(_("%(name)s is closed.", name=node.name), "info")
    return redirect(url_for("orgs.org", org_id=org_id))


@bp.post("/orgs/<int:org_id>/reopen")
@access.organizer
def reopen(org_id: int):
    """Reopen a closed organisation."""
    node = _editable(org_id)
    try:
        service.reopen_org(current_user, node)
    except Invalid as error:
        _refused(error)
    else:
        db.session.commit()
        flash(_("%(name)s is open again.", name=node.name), "info")
    return redirect(url_for("orgs.org", org_id=org_id))
