"""Quiz rules: the question bank, lesson quiz settings, attempts, grading and the daily quiz.

Attempts are drawn and graded here, on the server. The page gets the questions and options in
the order drawn for the attempt, never the answer key; the form posts the positions chosen, which
only the attempt's stored snapshot maps to right or wrong.
"""

import json
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from school import access, db
from school.accounts.models import User
from school.courses.models import Course, Lesson
from school.credits import service as credits
from school.errors import Conflict, Invalid, NotFound
from school.quizzes.models import GRADINGS, KINDS, Attempt, LessonQuiz, Question

MAX_OPTIONS = 8
MIN_OPTIONS = 2
LETTERS = "ABCDEFGH"
# Seconds a timed attempt may still be submitted after its limit: the page's countdown submits at
# zero and the request needs a moment on a slow mobile network.
SUBMIT_GRACE_SECONDS = 30
# Share of the daily quiz to get right for it to count as passed (and earn its credit).
MAX_FILL_LENGTH = 200

_rng = random.SystemRandom()


# --- the question bank -------------------------------------------------------------------------


def course_questions(course_id: int) -> list[Question]:
    """A course's bank in its order."""
    return list(
        db.session.scalars(
            sa.select(Question)
            .where(Question.course_id == course_id)
            .order_by(Question.position, Question.id)
        )
    )


def get_question(question_id: int) -> Question:
    """The question with this id, or NotFound."""
    question = db.session.get(Question, question_id)
    if question is None:
        raise NotFound()
    return question


def _clean_text(value, limit: int) -> str:
    return str(value or "").strip()[:limit]


@dataclass
class QuestionData:
    """A question as checked input: what a form or a content file gives, validated."""

    kind: str
    stem: str
    options: list[str]
    answer: list
    explanation: str = ""
    lesson_id: int | None = None


def check_question(
    kind: str,
    stem: str,
    options: list[str],
    answer: list,
    explanation: str = "",
    lesson_id: int | None = None,
) -> QuestionData:
    """Validate a question; `answer` is option indexes (choices), [bool] or accepted texts (fill)."""
    if kind not in KINDS:
        raise Invalid(_("Unknown question type."))
    stem = _clean_text(stem, 2000)
    if not stem:
        raise Invalid(_("Write the question."))
    explanation = _clean_text(explanation, 4000)
    if kind in ("single", "multiple"):
        options = [_clean_text(o, 500) for o in options]
        if any(not o for o in options) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise Invalid(_("A choice question needs 2 to 8 options, none of them empty."))
        if len(set(options)) != len(options):
            raise Invalid(_("Two options have the same text."))
        picked = sorted({int(i) for i in answer if isinstance(i, int) and 0 <= i < len(options)})
        if len(picked) != len(answer) or not picked:
            raise Invalid(_("Mark the correct option."))
        if kind == "single" and len(picked) != 1:
            raise Invalid(_("A single-choice question has exactly one correct option."))
        if kind == "multiple" and len(picked) < 2:
            raise Invalid(_("A multiple-choice question has at least two correct options."))
        return QuestionData(kind, stem, options, picked, explanation, lesson_id)
    if kind == "truefalse":
        if len(answer) != 1 or not isinstance(answer[0], bool):
            raise Invalid(_("Say whether the statement is true or false."))
        return QuestionData(kind, stem, [], [answer[0]], explanation, lesson_id)
    accepted: list[str] = []
    for text in answer:
        text = _clean_text(text, MAX_FILL_LENGTH)
        if text and normalize_fill(text) not in {normalize_fill(a) for a in accepted}:
            accepted.append(text)
    if not accepted:
        raise Invalid(_("Give at least one accepted answer."))
    if len(accepted) > 20:
        raise Invalid(_("At most 20 accepted answers."))
    return QuestionData(kind, stem, [], accepted, explanation, lesson_id)


def question_from_form(course: Course, form) -> QuestionData:
    """Read the bank editor's form (a werkzeug MultiDict) into checked question data."""
    kind = form.get("kind", "")
    options: list[str] = []
    correct: list[int] = []
    marked = set(form.getlist("correct"))
    for i in range(MAX_OPTIONS):
        text = form.get(f"option{i}", "").strip()
        if text:
            if str(i) in marked:
                correct.append(len(options))
            options.append(text)
    if kind == "truefalse":
        value = form.get("truth", "")
        answer: list = [value == "true"] if value in ("true", "false") else []
    elif kind == "fill":
        answer = [line for line in re.split(r"[\r\n]+", form.get("accepted", "")) if line.strip()]
    else:
        answer = correct
    lesson_id = None
    if form.get("lesson_id"):
        try:
            lesson_id = int(form.get("lesson_id"))
        except ValueError:
            raise Invalid(_("Unknown lesson.")) from None
        if lesson_id not in {lesson.id for lesson in course.lessons}:
            raise Invalid(_("Unknown lesson."))
    return check_question(kind, form.get("stem", ""), options, answer, form.get("explanation", ""), lesson_id)


def save_question(
    course: Course, data: QuestionData, question: Question | None = None, code=None
) -> Question:
    """Add a question to a course's bank (at the end), or change one of its questions."""
    if question is None:
        last = db.session.scalar(
            sa.select(sa.func.max(Question.position)).where(Question.course_id == course.id)
        )
        question = Question(course_id=course.id, position=(last or 0) + 1, code=code)
        db.session.add(question)
    question.kind = data.kind
    question.stem = data.stem
    question.options_json = json.dumps(data.options, ensure_ascii=False)
    question.answer_json = json.dumps(data.answer, ensure_ascii=False)
    question.explanation = data.explanation
    question.lesson_id = data.lesson_id
    db.session.flush()
    return question


def delete_question(question: Question) -> None:
    """Remove a question from the bank (attempts keep their own copy of it)."""
    db.session.delete(question)
    db.session.flush()


# --- lesson quiz settings ----------------------------------------------------------------------


def quiz_settings(lesson_id: int) -> LessonQuiz | None:
    """The lesson's quiz settings row (enabled or not), if it ever had one."""
    return db.session.get(LessonQuiz, lesson_id)


def lesson_quiz(lesson_id: int) -> LessonQuiz | None:
    """The lesson's quiz when it has one switched on."""
    settings = quiz_settings(lesson_id)
    return settings if settings is not None and settings.enabled else None


def _whole(value, low: int, high: int, message: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(message) from None
    if not low <= number <= high:
        raise Invalid(message)
    return number


def set_quiz_settings(
    lesson: Lesson,
    enabled: bool,
    question_count,
    pass_percent,
    max_attempts,
    grading: str,
    time_limit_minutes=None,
) -> LessonQuiz:
    """Switch a lesson's quiz on or off and set its rules (numbers may come as form text)."""
    count = _whole(question_count, 1, 100, _("The number of questions must be from 1 to 100."))
    percent = _whole(pass_percent, 0, 100, _("The pass mark must be from 0 to 100 per cent."))
    attempts = _whole(max_attempts, 0, 100, _("Attempts must be from 0 (unlimited) to 100."))
    if grading not in GRADINGS:
        raise Invalid(_("Choose whether the highest or the latest grade counts."))
    minutes = None
    if time_limit_minutes not in (None, "", 0, "0"):
        minutes = _whole(time_limit_minutes, 1, 600, _("The time limit must be from 1 to 600 minutes."))
    if enabled and not quiz_pool(lesson):
        raise Invalid(_("Add questions to the course's bank before switching the quiz on."))
    settings = quiz_settings(lesson.id)
    if settings is None:
        settings = LessonQuiz(lesson_id=lesson.id)
        db.session.add(settings)
    settings.enabled = bool(enabled)
    settings.question_count = count
    settings.pass_percent = percent
    settings.max_attempts = attempts
    settings.grading = grading
    settings.time_limit_minutes = minutes
    db.session.flush()
    return settings


def quiz_pool(lesson: Lesson) -> list[Question]:
    """Questions a lesson's quiz draws from: those tied to the lesson and the course-wide ones."""
    return list(
        db.session.scalars(
            sa.select(Question)
            .where(
                Question.course_id == lesson.course_id,
                sa.or_(Question.lesson_id == lesson.id, Question.lesson_id.is_(None)),
            )
            .order_by(Question.position, Question.id)
        )
    )


# --- drawing and grading -----------------------------------------------------------------------


def snapshot(question: Question, rng: random.Random) -> dict:
    """The question as this attempt shows it: choice options shuffled, answer in shown positions."""
    options = question.options
    order = list(range(len(options)))
    if question.kind in ("single", "multiple"):
        rng.shuffle(order)
        answer = sorted(order.index(i) for i in question.answer)
    else:
        answer = question.answer
    return {
        "qid": question.id,
        "kind": question.kind,
        "stem": question.stem,
        "options": [options[i] for i in order],
        "order": order,
        "answer": answer,
        "explanation": question.explanation,
    }


def draw(pool: list[Question], count: int, rng: random.Random | None = None) -> list[dict]:
    """Up to `count` questions at random from a pool, each with its options shuffled."""
    rng = rng or _rng
    chosen = rng.sample(pool, min(count, len(pool)))
    return [snapshot(q, rng) for q in chosen]


def normalize_fill(text: str) -> str:
    """Compare fill-in answers loosely: full/half width, case, spaces and end punctuation."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = re.sub(r"\s+", "", text)
    return text.strip("。.，,、；;！!？?“”\"'‘’「」《》")


def parse_answer(item: dict, given: list[str]):
    """One item's answer from the posted values; None when unanswered or malformed."""
    values = [v for v in given if isinstance(v, str)]
    kind = item["kind"]
    if kind == "fill":
        text = (values[0] if values else "").strip()[:MAX_FILL_LENGTH]
        return text or None
    if kind == "truefalse":
        return values[0] if values and values[0] in ("true", "false") else None
    picked = set()
    for value in values:
        if not value.isdigit() or int(value) >= len(item["options"]):
            return None
        picked.add(int(value))
    if not picked or (kind == "single" and len(picked) != 1):
        return None
    return sorted(picked)


def is_correct(item: dict, answer) -> bool:
    """Grade one item: choices all-or-nothing, true/false, fill-in against the accepted texts."""
    if answer is None:
        return False
    kind = item["kind"]
    if kind == "fill":
        return normalize_fill(answer) in {normalize_fill(a) for a in item["answer"]}
    if kind == "truefalse":
        return (answer == "true") == bool(item["answer"][0])
    return sorted(answer) == sorted(item["answer"])


def grade(items: list[dict], answers: list) -> tuple[list[bool], int, int]:
    """Per-item results, number right and the percentage (rounded down)."""
    results = [is_correct(item, answer) for item, answer in zip(items, answers, strict=True)]
    right = sum(results)
    percent = (100 * right) // len(items) if items else 0
    return results, right, percent


# --- attempts ----------------------------------------------------------------------------------


def _attempts(user_id: int, lesson_id: int) -> list[Attempt]:
    return list(
        db.session.scalars(
            sa.select(Attempt)
            .where(Attempt.user_id == user_id, Attempt.lesson_id == lesson_id, Attempt.kind == "lesson")
            .order_by(Attempt.started_at, Attempt.id)
        )
    )


def expired(attempt: Attempt, now: datetime) -> bool:
    """Whether an open attempt can no longer be submitted (time limit, or the daily quiz's day)."""
    if attempt.kind == "daily" and attempt.day != local_today():
        return True
    if attempt.deadline_at is None:
        return False
    return now > attempt.deadline_at + timedelta(seconds=SUBMIT_GRACE_SECONDS)


def counted_grade(quiz: LessonQuiz, attempts: list[Attempt]) -> Attempt | None:
    """The submitted attempt whose grade counts: the highest, or the latest, by the setting."""
    done = [a for a in attempts if a.state == "submitted"]
    if not done:
        return None
    if quiz.grading == "latest":
        return max(done, key=lambda a: (a.submitted_at, a.id))
    return max(done, key=lambda a: (a.percent or 0, a.submitted_at))


def lesson_quiz_passed(user_id: int, lesson) -> bool:
    """Whether the user passed the lesson's quiz; True when the lesson has none."""
    quiz = lesson_quiz(lesson.id)
    if quiz is None:
        return True
    counted = counted_grade(quiz, _attempts(user_id, lesson.id))
    return bool(counted and counted.passed)


def start_lesson_attempt(user, lesson: Lesson, now: datetime, rng: random.Random | None = None) -> Attempt:
    """Begin a try at a lesson's quiz (or resume the one still open); refused past the limit."""
    access.require(access.may_view_lesson(user, lesson))
    quiz = lesson_quiz(lesson.id)
    if quiz is None:
        raise NotFound(_("This lesson has no quiz."))
    # Serialize one member's starts on PostgreSQL (SQLite's write transactions already are), so two
    # taps cannot open two attempts or slip past the attempts limit.
    db.session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    attempts = _attempts(user.id, lesson.id)
    for attempt in attempts:
        if attempt.state == "open" and not expired(attempt, now):
            return attempt
    if quiz.max_attempts and len(attempts) >= quiz.max_attempts:
        raise Invalid(_("You have used all %(n)d attempts at this quiz.", n=quiz.max_attempts))
    items = draw(quiz_pool(lesson), quiz.question_count, rng)
    if not items:
        raise Invalid(_("This quiz has no questions yet."))
    deadline = now + timedelta(minutes=quiz.time_limit_minutes) if quiz.time_limit_minutes else None
    attempt = Attempt(
        user_id=user.id,
        kind="lesson",
        lesson_id=lesson.id,
        items_json=json.dumps(items, ensure_ascii=False),
        pass_percent=quiz.pass_percent,
        started_at=now,
        deadline_at=deadline,
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt


def get_own_attempt(user, attempt_id: int, lock: bool = False) -> Attempt:
    """The user's attempt; someone else's is NotFound, as if it did not exist."""
    stmt = sa.select(Attempt).where(Attempt.id == attempt_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    attempt = db.session.execute(stmt).scalar_one_or_none()
    if attempt is None or attempt.user_id != user.id:
        raise NotFound(_("No such quiz attempt."))
    return attempt


def submit_attempt(user, attempt_id: int, posted: list[list[str]], now: datetime) -> Attempt:
    """Grade and store an attempt; refused without storing anything when it is someone else's,
    already submitted, or too late. `posted` holds the values sent for each item, in order."""
    attempt = get_own_attempt(user, attempt_id, lock=True)
    if attempt.state != "open":
        raise Conflict(_("This quiz was already submitted; your first answers count."), code="submitted")
    if attempt.kind == "daily" and attempt.day != local_today():
        raise Conflict(
            _("That daily quiz was for an earlier day, so it can no longer be submitted."), code="too_late"
        )
    if expired(attempt, now):
        raise Conflict(_("The time for this quiz is up, so the answers were not accepted."), code="too_late")
    if attempt.kind == "lesson" and attempt.lesson_id is not None:
        # A lesson taken back since the attempt began earns nothing from it, as its page is shut
        # (tests/security/test_authorization_matrix.py).
        access.require(access.may_view_lesson(user, db.session.get(Lesson, attempt.lesson_id)))
    items = attempt.items
    if len(posted) != len(items):
        raise Invalid(_("The answers do not match this quiz. Please reload it."))
    answers = [parse_answer(item, values) for item, values in zip(items, posted, strict=True)]
    results, right, percent = grade(items, answers)
    attempt.answers_json = json.dumps(answers, ensure_ascii=False)
    attempt.results_json = json.dumps(results)
    attempt.score = right
    attempt.percent = percent
    attempt.passed = percent >= attempt.pass_percent
    attempt.state = "submitted"
    attempt.submitted_at = now
    db.session.flush()
    if attempt.kind == "lesson" and attempt.passed:
        from school.learning import service as learning

        learning.refresh_completion(user.id, attempt.lesson_id)
    elif attempt.kind == "daily" and attempt.passed:
        credit_daily(user.id, attempt.day)
    return attempt


def lesson_quiz_state(user, lesson: Lesson, now: datetime) -> dict | None:
    """What the lesson page shows about its quiz for this member; None when it has none."""
    quiz = lesson_quiz(lesson.id)
    if quiz is None:
        return None
    attempts = _attempts(user.id, lesson.id) if user.is_authenticated else []
    open_attempt = next((a for a in attempts if a.state == "open" and not expired(a, now)), None)
    left = None if not quiz.max_attempts else max(0, quiz.max_attempts - len(attempts))
    counted = counted_grade(quiz, attempts)
    done = [a for a in attempts if a.state == "submitted"]
    return {
        "quiz": quiz,
        "questions": min(quiz.question_count, len(quiz_pool(lesson))),
        "attempts_used": len(attempts),
        "attempts_left": left,
        "counted": counted,
        "best": max((a.percent for a in done), default=None),
        "latest": done[-1] if done else None,
        "passed": bool(counted and counted.passed),
        "open_attempt": open_attempt,
        "can_start": open_attempt is not None or left is None or left > 0,
    }


# --- the daily quiz ----------------------------------------------------------------------------


def local_today() -> date:
    """Today in the site's time zone."""
    return credits.local_now().date()


def day_end_utc(day: date) -> datetime:
    """The naive UTC moment the local day ends."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def daily_pool() -> list[Question]:
    """Questions of published courses open to all (lesson questions only while their lesson is
    published): one pool for everyone, so a plan-only course's questions stay with its members."""
    return list(
        db.session.scalars(
            sa.select(Question)
            .join(Course, Course.id == Question.course_id)
            .outerjoin(Lesson, Lesson.id == Question.lesson_id)
            .where(
                Course.state == "published",
                Course.audience == "all",
                sa.or_(Question.lesson_id.is_(None), Lesson.state == "published"),
            )
            .order_by(Question.id)
        )
    )


def daily_attempt(user_id: int, day: date) -> Attempt | None:
    return db.session.scalar(sa.select(Attempt).where(Attempt.user_id == user_id, Attempt.day == day))


def start_daily(user, day: date, now: datetime, rng: random.Random | None = None) -> Attempt:
    """Today's daily quiz: the one already begun, or a new draw (one per member and day)."""
    existing = daily_attempt(user.id, day)
    if existing is not None:
        return existing
    items = draw(daily_pool(), current_app.config["DAILY_QUIZ_QUESTIONS"], rng)
    if not items:
        raise Invalid(_("There are no questions for the daily quiz yet."))
    attempt = Attempt(
        user_id=user.id,
        kind="daily",
        day=day,
        items_json=json.dumps(items, ensure_ascii=False),
        pass_percent=current_app.config["DAILY_QUIZ_PASS_PERCENT"],
        started_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(attempt)
    except IntegrityError:  # the same member started it at the same moment elsewhere
        found = daily_attempt(user.id, day)
        if found is None:
            raise
        return found
    return attempt


def _hours(name: str) -> Decimal:
    try:
        return Decimal(str(current_app.config[name])).quantize(credits.CENT)
    except (InvalidOperation, ValueError):
        return Decimal("0")


def daily_credit_left(user_id: int, year: int) -> Decimal:
    """学时 the daily quiz may still earn this year under the cap."""
    cap = _hours("DAILY_QUIZ_CREDIT_CAP_HOURS")
    return max(Decimal("0"), cap - credits.year_total(user_id, year, source="daily_quiz"))


def credit_daily(user_id: int, day: date) -> bool:
    """Credit a passed daily quiz once, never beyond the yearly cap; True when credited."""
    amount = min(_hours("DAILY_QUIZ_CREDIT_HOURS"), daily_credit_left(user_id, day.year))
    if amount <= 0:
        return False
    title = _("Daily quiz %(day)s", day=day.isoformat())
    return credits.credit_once(user_id, amount, "daily_quiz", f"daily:{day.isoformat()}", title)


def daily_state(user, day: date) -> dict:
    """What the home card and the daily page show: today's attempt, the credit on offer."""
    attempt = daily_attempt(user.id, day)
    credit = min(_hours("DAILY_QUIZ_CREDIT_HOURS"), daily_credit_left(user.id, day.year))
    return {
        "day": day,
        "attempt": attempt,
        "done": attempt is not None and attempt.state == "submitted",
        "questions": current_app.config["DAILY_QUIZ_QUESTIONS"],
        "pass_percent": current_app.config["DAILY_QUIZ_PASS_PERCENT"],
        "credit": credit if credit > 0 else None,
        "available": attempt is not None
        or db.session.scalar(
            sa.select(Question.id)
            .join(Course, Course.id == Question.course_id)
            .where(Course.state == "published", Course.audience == "all")
            .limit(1)
        )
        is not None,
    }
