"""Lecturer authoring pages (/teach) and the members' course pages."""

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.courses import service
from school.courses.forms import CourseForm, LecturerForm, LessonForm, NewCourseForm, NewLessonForm
from school.errors import Invalid, commit_or_explain
from school.formatting import hours
from school.pagination import page_number, paginate

bp = Blueprint("courses", __name__)


def editable_course(course_id: int):
    course = service.get_course(course_id)
    access.require(access.may_edit_course(current_user, course))
    return course


def editable_lesson(lesson_id: int):
    lesson = service.get_lesson(lesson_id)
    access.require(access.may_edit_course(current_user, lesson.course))
    return lesson


def apply_or_explain(change, done_message) -> None:
    """Run a change and commit it with a note, or roll back and show why it was refused; either
    way the lecturer stays in the editor."""
    saved, _result = commit_or_explain(change)
    if saved:
        flash(done_message(), "info")


def form_error(form) -> str:
    for field in form:
        for error in field.errors:
            return f"{field.label.text}：{error}"
    return _("Please check what you entered.")


@bp.get("/teach")
@access.lecturer
def teach():
    """My courses, and a new one."""
    page = paginate(service.editable_courses(current_user), page_number(request.args.get("page")), 20)
    return render_template("courses/teach.html", page=page, form=NewCourseForm())


@bp.post("/teach/courses")
@access.lecturer
def create_course():
    """Start a new draft course."""
    form = NewCourseForm()
    if not form.validate():
        raise Invalid(form_error(form))
    course = service.create_course(current_user, form.title.data)
    db.session.commit()
    return redirect(url_for("courses.edit_course", course_id=course.id))


@bp.route("/teach/courses/<int:course_id>", methods=["GET", "POST"])
@access.lecturer
def edit_course(course_id: int):
    """Edit a course: text, tags, cover, lessons, co-lecturers, publishing."""
    course = editable_course(course_id)
    # Plain data, not obj=: the model's tags are a list, the form's field is "a, b, c".
    form = CourseForm(
        data={
            "title": course.title,
            "description": course.description,
            "tags": ", ".join(course.tags),
            "audience": course.audience,
        }
    )
    status = 200
    if request.method == "POST":
        if form.validate():
            saved, _result = commit_or_explain(
                lambda: service.update_course(
                    course, form.title.data, form.description.data, form.tags.data, form.audience.data
                )
            )
            if not saved:
                status = 400
            else:
                flash(_("Saved."), "info")
                return redirect(url_for("courses.edit_course", course_id=course.id))
        else:
            flash(form_error(form), "error")
            status = 400
    return render_template(
        "courses/edit_course.html",
        course=course,
        form=form,
        lesson_form=NewLessonForm(prefix="lesson", meta={"csrf": False}),
        lecturer_form=LecturerForm(),
        may_manage_lecturers=_may_manage_lecturers(course),
    ), status


def _may_manage_lecturers(course) -> bool:
    return course.owner_id == current_user.id or current_user.has_role("admin")


@bp.post("/teach/courses/<int:course_id>/state")
@access.lecturer
def course_state(course_id: int):
    """Publish the course or take it back to draft."""
    course = editable_course(course_id)
    apply_or_explain(
        lambda: service.set_course_state(course, request.form.get("state", ""), db.utcnow()),
        lambda: (
            _("The course is published.")
            if course.state == "published"
            else _("The course is a draft again.")
        ),
    )
    return redirect(url_for("courses.edit_course", course_id=course_id))


@bp.post("/teach/courses/<int:course_id>/lecturers")
@access.lecturer
def add_lecturer(course_id: int):
    """Add a co-lecturer (the owner or an admin)."""
    course = editable_course(course_id)
    access.require(_may_manage_lecturers(course))
    form = LecturerForm()
    if not form.validate():
        raise Invalid(form_error(form))
    user = service.add_co_lecturer(course, form.login.data)
    db.session.commit()
    flash(_("%(name)s may now edit this course.", name=user.display_name), "info")
    return redirect(url_for("courses.edit_course", course_id=course.id))


@bp.post("/teach/courses/<int:course_id>/lecturers/<int:user_id>/remove")
@access.lecturer
def remove_lecturer(course_id: int, user_id: int):
    """Take a co-lecturer off the course (the owner or an admin)."""
    course = editable_course(course_id)
    access.require(_may_manage_lecturers(course))
    service.remove_co_lecturer(course, user_id)
    db.session.commit()
    return redirect(url_for("courses.edit_course", course_id=course.id))


@bp.post("/teach/courses/<int:course_id>/lessons")
@access.lecturer
def create_lesson(course_id: int):
    """Add a draft lesson at the end."""
    course = editable_course(course_id)
    form = NewLessonForm(prefix="lesson", meta={"csrf": False})
    if not form.validate():
        raise Invalid(form_error(form))
    lesson = service.create_lesson(course, form.title.data)
    db.session.commit()
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id))


@bp.route("/teach/lessons/<int:lesson_id>", methods=["GET", "POST"])
@access.lecturer
def edit_lesson(lesson_id: int):
    """Edit a lesson: text, 学时, completion, video, documents, subtitles."""
    lesson = editable_lesson(lesson_id)
    form = LessonForm(
        data={
            "title": lesson.title,
            "body_md": lesson.body_md,
            "credit_hours": hours(lesson.credit_hours),
            "completion": lesson.completion,
        }
    )
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                service.update_lesson(
                    lesson, form.title.data, form.body_md.data, form.credit_hours.data, form.completion.data
                )
            except Invalid as error:
                db.session.rollback()
                flash(error.message, "error")
                status = 400
            else:
                db.session.commit()
                flash(_("Saved."), "info")
                return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id))
        else:
            flash(form_error(form), "error")
            status = 400
    return render_template("courses/edit_lesson.html", lesson=lesson, course=lesson.course, form=form), status


@bp.post("/teach/lessons/<int:lesson_id>/state")
@access.lecturer
def lesson_state(lesson_id: int):
    """Publish a lesson or take it back to draft."""
    lesson = editable_lesson(lesson_id)
    apply_or_explain(
        lambda: service.set_lesson_state(lesson, request.form.get("state", "")),
        lambda: (
            _("The lesson is published.")
            if lesson.state == "published"
            else _("The lesson is a draft again.")
        ),
    )
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson_id))


@bp.post("/teach/lessons/<int:lesson_id>/move")
@access.lecturer
def move_lesson(lesson_id: int):
    """Move a lesson up or down in its course."""
    lesson = editable_lesson(lesson_id)
    service.move_lesson(lesson, -1 if request.form.get("step") == "up" else 1)
    db.session.commit()
    return redirect(url_for("courses.edit_course", course_id=lesson.course_id) + "#lessons")


@bp.post("/teach/attachments/<int:attachment_id>/delete")
@access.lecturer
def delete_attachment(attachment_id: int):
    """Remove a document from a lesson."""
    from school.media.models import Attachment
    from school.media.storage import remove

    item = db.session.get(Attachment, attachment_id)
    if item is None:
        raise Invalid(_("No such document."))
    access.require(access.may_edit_course(current_user, item.lesson.course))
    lesson_id = item.lesson_id
    remove(item.path)
    db.session.delete(item)
    db.session.commit()
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson_id))


# --- members -------------------------------------------------------------------------------


NEW_DAYS = 30  # a course counts as 最新 this long after it was published


@bp.get("/courses")
@access.signed_in
def catalogue():
    """Published courses: all, assigned to me, new, or with one tag."""
    from school.plans.service import assigned_course_ids

    tag = (request.args.get("tag") or "").strip()[:32] or None
    show = request.args.get("show") if request.args.get("show") in ("assigned", "new") else None
    assigned = assigned_course_ids(current_user)
    hidden = access.hidden_course_ids(current_user)
    new_since = db.utcnow() - timedelta(days=NEW_DAYS)
    stmt = service.catalogue_courses(
        tag=tag,
        course_ids=assigned if show == "assigned" else None,
        published_since=new_since if show == "new" else None,
        hidden=hidden,
    )
    page = paginate(stmt, page_number(request.args.get("page")), 20)
    ids = [c.id for c in page.items]
    return render_template(
        "courses/catalogue.html",
        page=page,
        tag=tag,
        show=show,
        tags=service.catalogue_tags(12, hidden),
        assigned=assigned,
        new_since=new_since,
        lesson_counts=service.published_lesson_counts(ids),
        completed_counts=service.completed_lesson_counts(current_user.id, ids),
    )


@bp.get("/courses/<int:course_id>")
@access.signed_in
def course(course_id: int):
    """A course, its lessons and my progress on each."""
    from school.learning.service import progress_by_lesson

    item = service.get_course(course_id)
    access.require(access.may_view_course(current_user, item))
    lessons = [x for x in item.lessons if access.may_view_lesson(current_user, x)]
    progress = progress_by_lesson(current_user.id, [x.id for x in lessons])
    completed = sum(1 for x in lessons if x.id in progress and progress[x.id].completed_at is not None)
    return render_template(
        "courses/course.html", course=item, lessons=lessons, progress=progress, completed=completed
    )


@bp.get("/lessons/<int:lesson_id>")
@access.signed_in
def lesson(lesson_id: int):
    """A lesson: player, study progress, text, documents."""
    item = service.get_lesson(lesson_id)
    access.require(access.may_view_lesson(current_user, item))
    from school.courses.markdown import render
    from school.learning import service as learning

    visible = [x for x in item.course.lessons if access.may_view_lesson(current_user, x)]
    index = visible.index(item)
    media = item.media if item.media is not None and item.media.state == "ready" else None
    return render_template(
        "courses/lesson.html",
        lesson=item,
        course=item.course,
        body=render(item.body_md),
        previous=visible[index - 1] if index > 0 else None,
        next=visible[index + 1] if index + 1 < len(visible) else None,
        media=media,
        renditions={n: media.rendition(n) for n in ("360p", "high", "audio", "poster")} if media else {},
        duration=learning.media_duration(item),
        progress=learning.progress_json(learning.get_progress(current_user.id, item.id), item),
        read_minimum=current_app.config["READ_MINIMUM_SECONDS"],
    )
