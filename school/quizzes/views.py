"""Quiz pages: taking a lesson quiz or the daily quiz, and the lecturers' question bank editor."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from school import access, db
from school.courses import service as courses
from school.errors import NotFound, commit_or_explain
from school.quizzes import service
from school.quizzes.models import KINDS

bp = Blueprint("quizzes", __name__)


# --- template globals for pages other features own ---------------------------------------------


@bp.app_template_global()
def lesson_quiz_state(lesson):
    """The lesson page's quiz box: rules, attempts, grade; None when the lesson has no quiz."""
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return None
    return service.lesson_quiz_state(user, lesson, db.utcnow())


@bp.app_template_global()
def daily_quiz_state():
    """The home page's daily quiz card for the signed-in user (None when signed out)."""
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return None
    return service.daily_state(user, service.local_today())


# --- members: taking quizzes -------------------------------------------------------------------


@bp.post("/lessons/<int:lesson_id>/quiz")
@access.signed_in
def start_lesson_quiz(lesson_id: int):
    """Begin (or resume) a try at a lesson's quiz."""
    lesson = courses.get_lesson(lesson_id)
    attempt = service.start_lesson_attempt(current_user, lesson, db.utcnow())
    db.session.commit()
    return redirect(url_for("quizzes.attempt", attempt_id=attempt.id))


@bp.get("/quizzes/attempts/<int:attempt_id>")
@access.signed_in
def attempt(attempt_id: int):
    """An open attempt's answer form, or a submitted one's result with the explanations."""
    item = service.get_own_attempt(current_user, attempt_id)
    lesson = courses.get_lesson(item.lesson_id) if item.lesson_id else None
    now = db.utcnow()
    if item.state == "open":
        if lesson is not None:  # its questions stay shut with a lesson taken back meanwhile
            access.require(access.may_view_lesson(current_user, lesson))
        seconds_left = None
        if item.deadline_at is not None:
            seconds_left = max(0, int((item.deadline_at - now).total_seconds()))
        return render_template(
            "quizzes/attempt.html",
            attempt=item,
            lesson=lesson,
            items=item.items,
            seconds_left=seconds_left,
            expired=service.expired(item, now),
        )
    state = service.lesson_quiz_state(current_user, lesson, now) if lesson else None
    return render_template(
        "quizzes/result.html",
        attempt=item,
        lesson=lesson,
        rows=list(zip(item.items, item.answers, item.results, strict=True)),
        state=state,
    )


@bp.post("/quizzes/attempts/<int:attempt_id>/submit")
@access.signed_in
def submit(attempt_id: int):
    """Grade the answers; a second submit, a late one or another's attempt is refused."""
    item = service.get_own_attempt(current_user, attempt_id)
    posted = [request.form.getlist(f"q{i}") for i in range(item.total)]
    service.submit_attempt(current_user, attempt_id, posted, db.utcnow())
    db.session.commit()
    return redirect(url_for("quizzes.attempt", attempt_id=attempt_id))


@bp.get("/daily")
@access.signed_in
def daily():
    """Today's daily quiz: its rules and a start button, the open quiz, or today's result."""
    state = service.daily_state(current_user, service.local_today())
    if state["attempt"] is not None:
        return redirect(url_for("quizzes.attempt", attempt_id=state["attempt"].id))
    return render_template("quizzes/daily.html", state=state)


@bp.post("/daily")
@access.signed_in
def start_daily():
    """Draw today's daily quiz (or go back to the one already drawn)."""
    attempt = service.start_daily(current_user, service.local_today(), db.utcnow())
    db.session.commit()
    return redirect(url_for("quizzes.attempt", attempt_id=attempt.id))


# --- lecturers: the question bank --------------------------------------------------------------


def editable_course(course_id: int):
    course = courses.get_course(course_id)
    access.require(access.may_edit_course(current_user, course))
    return course


def editable_question(course, question_id: int):
    question = service.get_question(question_id)
    if question.course_id != course.id:
        raise NotFound()
    return question


@bp.get("/teach/courses/<int:course_id>/questions")
@access.lecturer
def bank(course_id: int):
    """A course's question bank and each lesson's quiz settings."""
    course = editable_course(course_id)
    questions = service.course_questions(course.id)
    quizzes = {lesson.id: service.quiz_settings(lesson.id) for lesson in course.lessons}
    return render_template("quizzes/bank.html", course=course, questions=questions, quizzes=quizzes)


def _question_form_data(question) -> MultiDict:
    """The editor's fields filled from a question (or empty for a new one)."""
    if question is None:
        return MultiDict({"kind": "single"})
    data = MultiDict(
        {
            "kind": question.kind,
            "stem": question.stem,
            "explanation": question.explanation,
            "lesson_id": str(question.lesson_id or ""),
        }
    )
    for i, text in enumerate(question.options):
        data[f"option{i}"] = text
    if question.kind in ("single", "multiple"):
        data.setlist("correct", [str(i) for i in question.answer])
    elif question.kind == "truefalse":
        data["truth"] = "true" if question.answer[0] else "false"
    else:
        data["accepted"] = "\n".join(question.answer)
    return data


def _edit_question(course, question):
    status = 200
    data = _question_form_data(question)
    if request.method == "POST":
        data = request.form
        saved, _result = commit_or_explain(
            lambda: service.save_question(course, service.question_from_form(course, request.form), question)
        )
        if not saved:
            status = 400
        else:
            flash(_("Question saved."), "info")
            if request.form.get("next") == "new":
                return redirect(url_for("quizzes.new_question", course_id=course.id))
            return redirect(url_for("quizzes.bank", course_id=course.id))
    return render_template(
        "quizzes/edit_question.html",
        course=course,
        question=question,
        data=data,
        kinds=KINDS,
        option_slots=range(service.MAX_OPTIONS),
    ), status


@bp.route("/teach/courses/<int:course_id>/questions/new", methods=["GET", "POST"])
@access.lecturer
def new_question(course_id: int):
    """Add a question to the course's bank."""
    return _edit_question(editable_course(course_id), None)


@bp.route("/teach/courses/<int:course_id>/questions/<int:question_id>", methods=["GET", "POST"])
@access.lecturer
def edit_question(course_id: int, question_id: int):
    """Change a question of the course's bank."""
    course = editable_course(course_id)
    return _edit_question(course, editable_question(course, question_id))


@bp.post("/teach/courses/<int:course_id>/questions/<int:question_id>/delete")
@access.lecturer
def delete_question(course_id: int, question_id: int):
    """Remove a question from the bank."""
    course = editable_course(course_id)
    service.delete_question(editable_question(course, question_id))
    db.session.commit()
    flash(_("Question deleted."), "info")
    return redirect(url_for("quizzes.bank", course_id=course.id))


@bp.route("/teach/lessons/<int:lesson_id>/quiz", methods=["GET", "POST"])
@access.lecturer
def lesson_settings(lesson_id: int):
    """A lesson's quiz settings: on or off, questions drawn, pass mark, attempts, grading, time."""
    lesson = courses.get_lesson(lesson_id)
    access.require(access.may_edit_course(current_user, lesson.course))
    status = 200
    if request.method == "POST":
        form = request.form
        saved, _result = commit_or_explain(
            lambda: service.set_quiz_settings(
                lesson,
                form.get("enabled") == "1",
                form.get("question_count", ""),
                form.get("pass_percent", ""),
                form.get("max_attempts", ""),
                form.get("grading", ""),
                form.get("time_limit_minutes", ""),
            )
        )
        if not saved:
            status = 400
        else:
            flash(_("Quiz settings saved."), "info")
            return redirect(url_for("quizzes.lesson_settings", lesson_id=lesson.id))
    return render_template(
        "quizzes/lesson_settings.html",
        lesson=lesson,
        course=lesson.course,
        pool=len(service.quiz_pool(lesson)),
        values=request.form if request.method == "POST" else _settings_values(lesson),
    ), status


def _settings_values(lesson) -> dict:
    settings = service.quiz_settings(lesson.id)
    if settings is None:
        return {
            "enabled": "",
            "question_count": 5,
            "pass_percent": 60,  # nosec B105 # a pass mark, not a password
            "max_attempts": 0,
            "grading": "highest",
        }
    return {
        "enabled": "1" if settings.enabled else "",
        "question_count": settings.question_count,
        "pass_percent": settings.pass_percent,
        "max_attempts": settings.max_attempts,
        "grading": settings.grading,
        "time_limit_minutes": settings.time_limit_minutes or "",
    }
