"""Organiser pages for study plans: the plans of my subtree, create, edit, close and reopen."""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from school import access, db
from school.errors import commit_or_explain
from school.orgs import service as orgs
from school.pagination import page_number, paginate
from school.plans import service
from school.plans.forms import CATEGORY_CHOICES, PlanForm

bp = Blueprint("plans", __name__)


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        return None


def plan_input(form: PlanForm) -> service.PlanInput:
    """The form's values as the service takes them."""
    hours_raw = (form.required_hours.data or "").strip()
    hours = None
    if hours_raw:
        try:
            hours = Decimal(hours_raw)
        except InvalidOperation:
            hours = Decimal(-1)  # refused by the service with the range message
        if not hours.is_finite():
            hours = Decimal(-1)
    return service.PlanInput(
        title=form.title.data or "",
        description=form.description.data or "",
        starts_on=_date(form.starts_on.data),
        due_on=_date(form.due_on.data),
        required_hours=hours,
        course_ids=form.courses.data or [],
        lesson_ids=form.lessons.data or [],
        org_ids=form.orgs.data or [],
        categories=form.categories.data or [],
        member_logins=[s for s in re.split(r"[\s,，、;；]+", form.members.data or "") if s],
    )


def fill_choices(form: PlanForm, org_id: int) -> None:
    form.courses.choices = [SelectChoice(c.id, c.title) for c in service.published_courses()]
    form.lessons.choices = [
        SelectChoice(lesson.id, f"{lesson.course.title} · {lesson.title}")
        for lesson in service.published_lessons()
    ]
    form.orgs.choices = [SelectChoice(o.id, o.name) for o in service.target_org_choices(org_id)]


def plan_form_data(plan) -> dict:
    return {
        "title": plan.title,
        "description": plan.description,
        "starts_on": plan.starts_on.isoformat(),
        "due_on": plan.due_on.isoformat(),
        "required_hours": "" if plan.required_hours is None else f"{plan.required_hours.normalize():f}",
        "courses": [i.course_id for i in plan.items if i.course_id],
        "lessons": [i.lesson_id for i in plan.items if i.lesson_id],
        "orgs": [t.org_id for t in plan.targets if t.kind == "org"],
        "categories": [t.category for t in plan.targets if t.kind == "category"],
        "members": "\n".join(
            (t.user.phone or t.user.username or "") for t in plan.targets if t.kind == "member"
        ),
    }


def save_or_explain(form: PlanForm, org_id: int, plan=None):
    """Save the plan and go to its page, or roll back and show the form again with the reason."""
    ok, saved = commit_or_explain(lambda: service.save_plan(current_user, org_id, plan_input(form), plan))
    if not ok:
        return None
    flash(_("Saved."), "info")
    return redirect(url_for("plans.show", plan_id=saved.id))


@bp.get("/plans")
@access.organizer
def index():
    """Study plans of my subtree (optionally under one org), open ones first."""
    org_id = access.org_param(request.args.get("org_id"))
    stmt = service.plans_stmt(current_user, org_id)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "plans/index.html",
        page=page,
        org=orgs.get_org(org_id) if org_id else None,
        top=orgs.top_orgs(current_user),
        today=service._today(),
    )


@bp.route("/plans/new", methods=["GET", "POST"])
@access.organizer
def new():
    """A new plan for ?org_id= (default: the first organisation I manage)."""
    org_id = access.org_param(request.args.get("org_id"))
    if org_id is None:
        top = orgs.top_orgs(current_user)
        if not top:
            abort(404)
        org_id = top[0].id
    org = orgs.get_org(org_id)
    form = PlanForm()
    fill_choices(form, org_id)
    status = 200
    if request.method == "POST":
        response = save_or_explain(form, org_id)
        if response is not None:
            return response
        status = 400
    return render_template("plans/form.html", form=form, org=org, plan=None), status


@bp.get("/plans/<int:plan_id>")
@access.organizer
def show(plan_id: int):
    """One plan: what it asks, whom it reaches and how many have completed it."""
    plan = service.get_plan(current_user, plan_id)
    reached, done = service.plan_summary(plan)
    return render_template(
        "plans/show.html",
        plan=plan,
        reached=reached,
        done=done,
        lessons=len(service.plan_lesson_ids(plan)),
        trail=orgs.ancestors(plan.org),
        category_names={c.value: c.label for c in CATEGORY_CHOICES},
    )


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@access.organizer
def edit(plan_id: int):
    """Change a plan's dates, items and targets (its organisation stays)."""
    plan = service.get_plan(current_user, plan_id)
    form = PlanForm() if request.method == "POST" else PlanForm(data=plan_form_data(plan))
    fill_choices(form, plan.org_id)
    status = 200
    if request.method == "POST":
        response = save_or_explain(form, plan.org_id, plan)
        if response is not None:
            return response
        status = 400
        plan = service.get_plan(current_user, plan_id)
    return render_template("plans/form.html", form=form, org=plan.org, plan=plan), status


@bp.post("/plans/<int:plan_id>/close")
@access.organizer
def close(plan_id: int):
    """Close a plan: members no longer see it and get no reminders."""
    plan = service.get_plan(current_user, plan_id)
    service.set_closed(plan, True, db.utcnow())
    db.session.commit()
    flash(_("The study plan is closed."), "info")
    return redirect(url_for("plans.show", plan_id=plan.id))


@bp.post("/plans/<int:plan_id>/reopen")
@access.organizer
def reopen(plan_id: int):
    """Reopen a closed plan."""
    plan = service.get_plan(current_user, plan_id)
    service.set_closed(plan, False, db.utcnow())
    db.session.commit()
    flash(_("The study plan is open again."), "info")
    return redirect(url_for("plans.show", plan_id=plan.id))
