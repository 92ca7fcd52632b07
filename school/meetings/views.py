"""Organizer pages: record an offline lesson or meeting (三会一课), correct or cancel it, group viewing."""

import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.errors import Invalid
from school.formatting import hours as hours_text
from school.meetings import service
from school.meetings.forms import KIND_LABELS, CancelForm, MeetingForm
from school.meetings.models import KINDS
from school.orgs import service as orgs
from school.pagination import page_number, paginate

bp = Blueprint("meetings", __name__)

YEARS_BACK = 5  # years offered by the list's year filter


def org_or_first(raw: str | None) -> int:
    """The org of ?org_id=, or the first one I manage."""
    org_id = access.org_param(raw)
    if org_id is None:
        top = orgs.top_orgs(current_user)
        if not top:
            abort(404)
        org_id = top[0].id
    return org_id


def _int_arg(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else None


def meeting_input(form: MeetingForm) -> service.MeetingInput:
    """The posted form as the service takes it (checkboxes and the attendance file included)."""
    upload = request.files.get("file")
    return service.MeetingInput(
        kind=form.kind.data or "",
        held_on=form.held_on.data or "",
        topic=form.topic.data or "",
        lecturer=form.lecturer.data or "",
        hours=form.hours.data or "",
        attendee_ids=request.form.getlist("attendees"),
        file_data=upload.read() if upload and upload.filename else b"",
        file_name=(upload.filename or "") if upload else "",
        reason=form.reason.data or "",
    )


def explain(error: Invalid) -> list[str]:
    """Undo the request's writes and flash why; returns the per-row problems of an attendance list."""
    db.session.rollback()
    flash(error.message or _("The request could not be understood."), "error")
    return getattr(error, "rows", [])


def _ticked() -> set[int]:
    return {int(v) for v in request.form.getlist("attendees") if v.isdigit() and len(v) < 12}


@bp.get("/meetings")
@access.organizer
def index():
    """Offline lessons and meetings of my subtree (or under ?org_id=), by kind, year and quarter."""
    org_id = access.org_param(request.args.get("org_id"))
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    this_year = service.today().year
    year = _int_arg("year", this_year - 50, this_year)
    quarter = _int_arg("quarter", 1, 4) if year else None
    stmt = service.meetings_stmt(current_user, org_id, kind, year, quarter)
    page = paginate(stmt, page_number(request.args.get("page")), current_app.config["PER_PAGE"])
    return render_template(
        "meetings/index.html",
        page=page,
        counts=service.attendee_counts([m.id for m in page.items]),
        org=orgs.get_org(org_id) if org_id else None,
        choices=service.org_choices(current_user, org_id),
        kind=kind,
        year=year,
        quarter=quarter,
        years=range(this_year, this_year - YEARS_BACK, -1),
        kinds=KIND_LABELS,
    )


def _render_form(form, org, ticked, problems, status, meeting=None, lesson=None):
    people, complete = service.roster_choices(org.id, meeting)
    template = "meetings/group_viewing.html" if lesson is not None else "meetings/form.html"
    media = lesson.media if lesson is not None and lesson.media is not None else None
    return render_template(
        template,
        form=form,
        org=org,
        people=people,
        complete=complete,
        ticked=ticked,
        problems=problems,
        meeting=meeting,
        lesson=lesson,
        media=media if media is not None and media.state == "ready" else None,
        choices=service.org_choices(current_user, None) if meeting is None else [],
        roster_max=service.ROSTER_MAX,
        kinds=KIND_LABELS,
    ), status


@bp.route("/meetings/new", methods=["GET", "POST"])
@access.organizer
def new():
    """Record an offline lesson or meeting of ?org_id= and credit its attendees."""
    org = orgs.get_org(org_or_first(request.args.get("org_id")))
    return _record(org, None)


@bp.route("/meetings/group-viewing/new", methods=["GET", "POST"])
@access.organizer
def group_viewing():
    """Group viewing (集体收看): play ?lesson_id= on a big screen and tick who watched it."""
    org = orgs.get_org(org_or_first(request.args.get("org_id")))
    if not request.args.get("lesson_id"):
        return render_template(
            "meetings/pick_lesson.html",
            org=org,
            lessons=service.published_lessons(),
            choices=service.org_choices(current_user, None),
        )
    lesson = service.viewing_lesson(request.args.get("lesson_id"))
    access.require(access.may_view_lesson(current_user, lesson))
    return _record(org, lesson)


def _record(org, lesson):
    form = MeetingForm()
    if request.method == "GET":
        form.held_on.data = service.today().isoformat()
        form.token.data = secrets.token_urlsafe(24)
        if lesson is not None:
            form.topic.data = lesson.title
            form.hours.data = service.default_hours(lesson)
        else:
            form.hours.data = "1"
        return _render_form(form, org, set(), [], 200, lesson=lesson)
    try:
        meeting = service.record_meeting(
            current_user,
            org.id,
            meeting_input(form),
            token=form.token.data or "",
            on=service.today(),
            config=current_app.config,
            lesson=lesson,
        )
    except Invalid as error:
        problems = explain(error)
        return _render_form(form, org, _ticked(), problems, 400, lesson=lesson)
    db.session.commit()
    flash(_("Saved. Each attendee was credited %(h)s study hours.", h=hours_text(meeting.hours)), "info")
    return redirect(url_for("meetings.show", meeting_id=meeting.id))


@bp.get("/meetings/<int:meeting_id>")
@access.organizer
def show(meeting_id: int):
    """One meeting: what, when, who attended, and every credit and correction made for it."""
    meeting = service.get_meeting(current_user, meeting_id)
    return _render_show(meeting, CancelForm(), 200)


def _render_show(meeting, cancel_form, status):
    return render_template(
        "meetings/show.html",
        meeting=meeting,
        present=service.present(meeting),
        history=service.history(meeting),
        trail=orgs.ancestors(meeting.org),
        kinds=KIND_LABELS,
        cancel_form=cancel_form,
    ), status


@bp.route("/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@access.organizer
def edit(meeting_id: int):
    """Correct a meeting: its details, who attended and the hours (credit taken back is reversed)."""
    meeting = service.get_meeting(current_user, meeting_id)
    if meeting.cancelled_at is not None:
        message = _("This meeting was cancelled and can no longer be changed.")
        if request.method == "POST":
            raise Invalid(message)
        flash(message, "error")
        return redirect(url_for("meetings.show", meeting_id=meeting.id))
    present_ids = {r.user_id for r in service.present(meeting)}
    if request.method == "GET":
        form = MeetingForm(
            data={
                "kind": meeting.kind,
                "held_on": meeting.held_on.isoformat(),
                "topic": meeting.topic,
                "lecturer": meeting.lecturer,
                "hours": hours_text(meeting.hours),
            }
        )
        return _render_form(form, meeting.org, present_ids, [], 200, meeting=meeting)
    form = MeetingForm()
    try:
        service.update_meeting(
            current_user, meeting, meeting_input(form), on=service.today(), config=current_app.config
        )
    except Invalid as error:
        problems = explain(error)
        meeting = service.get_meeting(current_user, meeting_id)
        return _render_form(form, meeting.org, _ticked(), problems, 400, meeting=meeting)
    db.session.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("meetings.show", meeting_id=meeting.id))


@bp.post("/meetings/<int:meeting_id>/cancel")
@access.organizer
def cancel(meeting_id: int):
    """Cancel a meeting recorded by mistake: every attendee's credit is reversed."""
    meeting = service.get_meeting(current_user, meeting_id)
    form = CancelForm()
    try:
        service.cancel_meeting(current_user, meeting, form.reason.data or "")
    except Invalid as error:
        explain(error)
        return _render_show(service.get_meeting(current_user, meeting_id), form, 400)
    db.session.commit()
    flash(_("The meeting is cancelled and its study hours were taken back."), "info")
    return redirect(url_for("meetings.show", meeting_id=meeting.id))
