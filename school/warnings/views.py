"""Organizer and admin pages for warnings (防瘫预警) and their rules."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from school import access, db
from school.errors import commit_or_explain
from school.orgs import service as orgs
from school.pagination import page_number, paginate
from school.warnings import service
from school.warnings.forms import ORG_KIND_NAMES, AcknowledgeForm, RuleForm

bp = Blueprint("warnings", __name__)

STATES = ("active", "resolved", "all")


def _names() -> dict:
    return dict(
        rule_names=service.RULE_NAMES,
        level_names=service.LEVEL_NAMES,
        state_names=service.STATE_NAMES,
        action_names=service.ACTION_NAMES,
        org_kind_names=ORG_KIND_NAMES,
        describe=service.describe,
    )


@bp.get("/warnings")
@access.organizer
def index():
    """Warnings in my subtree (optionally under ?org_id=), open and worst first."""
    org_id = access.org_param(request.args.get("org_id"))
    state = request.args.get("state", "active")
    if state not in STATES:
        state = "active"
    stmt = service.warnings_stmt(current_user, org_id, state)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "warnings/index.html",
        page=page,
        state=state,
        org=orgs.get_org(org_id) if org_id else None,
        counts=service.counts_by_level(current_user),
        **_names(),
    )


@bp.route("/warnings/<int:warning_id>", methods=["GET", "POST"])
@access.organizer
def show(warning_id: int):
    """One warning with its history; POST acknowledges it with a note."""
    warning = service.get_warning(current_user, warning_id)
    form = AcknowledgeForm()
    status = 200
    if request.method == "POST":
        saved, _result = commit_or_explain(
            lambda: service.acknowledge(warning, current_user, form.note.data, db.utcnow())
        )
        if saved:
            flash(_("Acknowledged."), "info")
            return redirect(url_for("warnings.show", warning_id=warning.id))
        status = 400
        warning = service.get_warning(current_user, warning_id)
    return (
        render_template(
            "warnings/show.html", warning=warning, form=form, trail=orgs.ancestors(warning.org), **_names()
        ),
        status,
    )


@bp.get("/warnings/rules")
@access.admin
def rules():
    """The rules, per level of the tree, for admins to tune."""
    service.ensure_default_rules()
    db.session.commit()
    return render_template("warnings/rules.html", rules=service.rules(), **_names())


def _rule_form(rule=None) -> RuleForm:
    form = RuleForm(obj=rule) if rule is not None and request.method == "GET" else RuleForm()
    form.kind.choices = [SelectChoice(kind, name) for kind, name in service.RULE_NAMES.items()]
    if rule is None and request.method == "GET":
        form.enabled.data = True
        form.days.data, form.threshold.data, form.min_members.data = "30", "50", "3"
        form.orange_after_days.data, form.red_after_days.data = "14", "30"
    return form


def _save_rule(form: RuleForm, rule=None):
    data = service.RuleInput(
        kind=form.kind.data or "",
        org_kind=form.org_kind.data or "",
        days=form.days.data or "",
        threshold=form.threshold.data or "",
        min_members=form.min_members.data or "",
        orange_after_days=form.orange_after_days.data or "",
        red_after_days=form.red_after_days.data or "",
        enabled=bool(form.enabled.data),
    )
    saved, _result = commit_or_explain(lambda: service.save_rule(data, rule, db.utcnow()))
    if not saved:
        return None
    flash(_("Saved. The next evaluation uses it."), "info")
    return redirect(url_for("warnings.rules"))


@bp.route("/warnings/rules/new", methods=["GET", "POST"])
@access.admin
def new_rule():
    """Add a rule."""
    form = _rule_form()
    if request.method == "POST":
        response = _save_rule(form)
        if response is not None:
            return response
        return render_template("warnings/rule_form.html", form=form, rule=None), 400
    return render_template("warnings/rule_form.html", form=form, rule=None)


@bp.route("/warnings/rules/<int:rule_id>", methods=["GET", "POST"])
@access.admin
def edit_rule(rule_id: int):
    """Change a rule (turning it off resolves its warnings at the next evaluation)."""
    rule = service.get_rule(rule_id)
    form = _rule_form(rule)
    if request.method == "GET":
        form.threshold.data = str(rule.threshold)
        for name in ("days", "min_members", "orange_after_days", "red_after_days"):
            getattr(form, name).data = str(getattr(rule, name))
    if request.method == "POST":
        response = _save_rule(form, rule)
        if response is not None:
            return response
        return render_template("warnings/rule_form.html", form=form, rule=rule), 400
    return render_template("warnings/rule_form.html", form=form, rule=rule)


@bp.post("/warnings/evaluate")
@access.admin
def evaluate_now():
    """Run the evaluation now instead of waiting for the nightly job."""
    outcome = service.evaluate()
    db.session.commit()
    flash(
        _(
            "Evaluated: %(raised)d raised, %(escalated)d escalated, %(resolved)d resolved.",
            raised=len(outcome.raised),
            escalated=len(outcome.escalated),
            resolved=len(outcome.resolved),
        ),
        "info",
    )
    target = request.form.get("next", "")
    if target not in ("rules", "index"):
        abort(400)
    return redirect(url_for("warnings.rules" if target == "rules" else "warnings.index"))
