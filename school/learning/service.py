"""Recording study: viewing sessions, heartbeats, reading time, lesson completion and its credit.

A beat reports the media interval just played: `{seq, from, to, rate}` (or `{seq, read}` seconds
of reading). It is accepted only when plausible, and the union of accepted intervals is the
member's coverage. Plausibility is checked on the session as a whole: the wall-clock time the
session's accepted beats need, Σ played ÷ (min(rate, 2) × 1.1), must fit in the time since the
session began plus a few seconds once. For beats sent on time this is the per-beat rule
`played ≤ wall × min(rate, 2) × 1.1 + 2 s` summed up (without letting the 2 s pile up beat after
beat); unlike a per-beat clock it also accepts beats that were queued while offline and arrive
together later (they were played while the clock ran).
"""

import functools
import json
import math
import secrets

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import access, db
from school.courses.models import Course, Lesson
from school.credits import service as credits
from school.errors import Conflict, Invalid, NotFound
from school.learning import intervals
from school.learning.models import LessonProgress, ViewingSession

RATES = (0.5, 2.0)  # the player offers 0.75–2×; anything outside is not a real player
MAX_SEQ = 2**31 - 1
MEDIA_END_TOLERANCE = 1.0  # players report a little past the probed duration


def media_duration(lesson: Lesson) -> float:
    media = lesson.media
    if media is None or media.state != "ready" or not media.duration:
        return 0.0
    return float(media.duration)


def get_progress(user_id: int, lesson_id: int) -> LessonProgress | None:
    return db.session.execute(
        sa.select(LessonProgress).where(
            LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id
        )
    ).scalar_one_or_none()


def _ensure_progress(user_id: int, lesson_id: int) -> None:
    """Create the member's progress row on a lesson unless it exists (safe from two processes)."""
    now = db.utcnow()
    db.insert_ignoring_conflicts(
        LessonProgress.__table__,
        {
            "user_id": user_id,
            "lesson_id": lesson_id,
            "first_opened_at": now,
            "updated_at": now,
            "watched_json": "[]",
            "covered_seconds": 0.0,
            "duration": 0.0,
            "time_spent": 0.0,
            "position": 0.0,
            "read_seconds": 0.0,
        },
    )


def _locked_progress(user_id: int, lesson_id: int) -> LessonProgress:
    """The progress row, created when missing, locked for this transaction (PostgreSQL row lock;
    SQLite write transactions are already serialized by BEGIN IMMEDIATE)."""
    _ensure_progress(user_id, lesson_id)
    return db.session.execute(
        sa.select(LessonProgress)
        .where(LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def start_session(user, lesson: Lesson) -> tuple[ViewingSession, LessonProgress]:
    """Open a viewing session for a lesson the user may see; earlier ones on other devices end."""
    access.require(access.may_view_lesson(user, lesson))
    # No progress row lock here (only its creation): beats lock progress and session together,
    # so the only lock both take is the session rows', and two can never wait on each other.
    _ensure_progress(user.id, lesson.id)
    progress = get_progress(user.id, lesson.id)
    now = db.utcnow()
    db.session.execute(
        sa.update(ViewingSession)
        .where(
            ViewingSession.user_id == user.id,
            ViewingSession.lesson_id == lesson.id,
            ViewingSession.superseded_at.is_(None),
        )
        .values(superseded_at=now)
    )
    duration = media_duration(lesson)
    viewing = ViewingSession(
        id=secrets.token_hex(16),
        user_id=user.id,
        lesson_id=lesson.id,
        # A lesson completed by reading counts reading time even when it also has a video.
        kind="watch" if duration > 0 and lesson.completion != "read" else "read",
        duration=duration,
        started_at=now,
    )
    db.session.add(viewing)
    db.session.flush()
    return viewing, progress


def _number(data: dict, name: str, low: float, high: float) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(_("“%(name)s” must be a number.", name=name), code="bad_beat")
    if not low <= value <= high:
        raise Invalid(_("“%(name)s” is out of range.", name=name), code="bad_beat")
    return float(value)


@functools.cache
def _beat_statement() -> sa.Select:
    # One round trip finds the session, its progress row and the lesson's completion rule, and
    # locks the session and progress rows (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serializes writers). Built once: beats are the busiest call of the site.
    return (
        sa.select(
            ViewingSession.user_id,
            ViewingSession.lesson_id,
            ViewingSession.kind,
            ViewingSession.duration,
            ViewingSession.started_at,
            ViewingSession.superseded_at,
            ViewingSession.last_seq,
            ViewingSession.claimed,
            LessonProgress.id.label("progress_id"),
            LessonProgress.watched_json,
            LessonProgress.covered_seconds,
            LessonProgress.position,
            LessonProgress.time_spent,
            LessonProgress.read_seconds,
            LessonProgress.confirmed_at,
            LessonProgress.completed_at,
            Lesson.completion,
            Lesson.state.label("lesson_state"),
            Course.state.label("course_state"),
        )
        .select_from(ViewingSession)
        .join(
            LessonProgress,
            sa.and_(
                LessonProgress.user_id == ViewingSession.user_id,
                LessonProgress.lesson_id == ViewingSession.lesson_id,
            ),
        )
        .join(Lesson, Lesson.id == ViewingSession.lesson_id)
        .join(Course, Course.id == Lesson.course_id)
        .where(ViewingSession.id == sa.bindparam("session_id"))
        .with_for_update(of=[ViewingSession, LessonProgress])
    )


@functools.cache
def _session_update() -> sa.Update:
    table = ViewingSession.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("session_id"))
        .values(
            claimed=sa.bindparam("claimed"),
            last_seq=sa.bindparam("last_seq"),
            beats=table.c.beats + 1,
            last_beat_at=sa.bindparam("last_beat_at"),
        )
    )


def record_beat(user, session_id: str, data: dict) -> tuple[dict, bool]:
    """Accept one heartbeat of a session, or refuse it (Invalid / Conflict) storing nothing.

    Returns the member's progress (as progress_json) and whether the session has been taken
    over by another device. Plain SQL rather than ORM objects: this runs for every member
    watching, every 12 seconds.
    """
    if not isinstance(session_id, str) or len(session_id) != 32:
        raise NotFound(_("No such viewing session."))
    # Core statements on the session's connection (same transaction): the ORM's per-statement
    # bookkeeping cost more than the SQL itself on this path.
    connection = db.session.connection()
    row = connection.execute(_beat_statement(), {"session_id": session_id}).first()
    if row is None or row.user_id != user.id:
        raise NotFound(_("No such viewing session."))
    if row.lesson_state != "published" or row.course_state != "published":
        # Taken back since the session began: only those who may still see it (its editors)
        # go on earning progress (tests/security/test_authorization_matrix.py).
        access.require(access.may_view_lesson(user, db.session.get(Lesson, row.lesson_id)))
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        raise Invalid(_("“seq” must be a whole number from 1."), code="bad_beat")
    if seq <= row.last_seq:
        raise Conflict(_("This beat was already received."), code="stale_seq")
    now = db.utcnow()
    # A session taken over by another device keeps the time it had: its beats still in flight
    # or queued offline count, anything played after the takeover does not.
    superseded = row.superseded_at is not None
    until = min(now, row.superseded_at) if superseded else now
    budget = max(0.0, (until - row.started_at).total_seconds()) + intervals.SESSION_SLACK_SECONDS

    def refuse_implausible(message: str):
        if superseded:
            raise Conflict(_("This lesson was opened on another device."), code="superseded")
        raise Invalid(message, code="implausible")

    changes = {"updated_at": now}
    watched = [tuple(pair) for pair in json.loads(row.watched_json or "[]")]
    covered, position, read_seconds = row.covered_seconds, row.position, row.read_seconds
    if row.kind == "watch":
        duration = row.duration
        start = _number(data, "from", 0.0, duration + MEDIA_END_TOLERANCE)
        end = _number(data, "to", 0.0, duration + MEDIA_END_TOLERANCE)
        rate = _number(data, "rate", *RATES)
        if end < start:
            raise Invalid(_("“to” must not be before “from”."), code="bad_beat")
        played = end - start
        needs = intervals.wall_needed(played, rate)
        if row.claimed + needs > budget:
            refuse_implausible(_("More was reported played than time has passed."))
        watched = intervals.merge(watched, (start, min(end, duration)))
        covered = max(covered, intervals.covered(watched, duration))
        if not superseded:  # the resume point follows the device in use
            position = min(end, duration)
        changes.update(
            watched_json=json.dumps([[round(a, 2), round(b, 2)] for a, b in watched]),
            covered_seconds=covered,
            duration=duration,
            position=position,
            time_spent=row.time_spent + played / rate,
        )
    else:
        seconds = _number(data, "read", 0.0, 3600.0)
        needs = intervals.wall_needed(seconds, 1.0)
        if row.claimed + needs > budget:
            refuse_implausible(_("More reading time was reported than has passed."))
        read_seconds += seconds
        changes.update(read_seconds=read_seconds, time_spent=row.time_spent + seconds)
    connection.execute(
        sa.update(LessonProgress.__table__).where(LessonProgress.id == row.progress_id).values(**changes)
    )
    connection.execute(
        _session_update(),
        {
            "session_id": session_id,
            "claimed": row.claimed + needs,
            "last_seq": seq,
            "last_beat_at": now,
        },
    )
    completed = row.completed_at is not None
    coverage = min(1.0, covered / row.duration) if row.duration > 0 else 0.0
    met = _requirement(row.completion, coverage, row.duration, read_seconds, row.confirmed_at)
    if met and not completed:  # rare: load the objects and let update_completion decide
        progress = db.session.get(LessonProgress, row.progress_id, populate_existing=True)
        completed = update_completion(progress, db.session.get(Lesson, row.lesson_id))
    body = {
        "coverage": round(coverage, 4),
        "position": round(position, 2),
        "watched": watched,
        "completed": completed,
        "read_seconds": round(read_seconds, 1),
        "requirement_met": met or completed,
    }
    return body, superseded


def confirm_finished(user, lesson: Lesson) -> LessonProgress:
    """ "我已学完" on a lesson completed by confirmation."""
    access.require(access.may_view_lesson(user, lesson))
    if lesson.completion != "confirm":
        raise Invalid(_("This lesson is completed by studying it, not by confirming."))
    progress = _locked_progress(user.id, lesson.id)
    if progress.confirmed_at is None:
        progress.confirmed_at = db.utcnow()
        progress.updated_at = progress.confirmed_at
    update_completion(progress, lesson)
    return progress


def _requirement(
    completion: str, coverage: float, duration: float, read_seconds: float, confirmed_at
) -> bool:
    if completion == "confirm":
        return confirmed_at is not None
    if completion == "watch" and duration > 0:
        return coverage * 100 >= current_app.config["WATCH_COMPLETE_PERCENT"]
    return read_seconds >= current_app.config["READ_MINIMUM_SECONDS"]


def requirement_met(progress: LessonProgress, lesson: Lesson) -> bool:
    """Whether the lesson's own requirement (watch / read / confirm) is met, quiz aside."""
    return _requirement(
        lesson.completion, progress.coverage, progress.duration, progress.read_seconds, progress.confirmed_at
    )


def update_completion(progress: LessonProgress, lesson: Lesson) -> bool:
    """Mark the lesson completed and credit its 学时 once, when every requirement is met."""
    if progress.completed_at is not None or not requirement_met(progress, lesson):
        return False
    from school.quizzes import service as quizzes

    if not quizzes.lesson_quiz_passed(progress.user_id, lesson):
        return False
    progress.completed_at = db.utcnow()
    credits.credit_once(
        progress.user_id,
        lesson.credit_hours,
        "lesson",
        f"lesson:{lesson.id}",
        f"{lesson.course.title} · {lesson.title}",
    )
    return True


def refresh_completion(user_id: int, lesson_id: int) -> bool:
    """Re-check a lesson after something else it depends on changed (its quiz was passed)."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        return False
    progress = _locked_progress(user_id, lesson_id)
    return update_completion(progress, lesson)


def progress_by_lesson(user_id: int, lesson_ids: list[int]) -> dict[int, LessonProgress]:
    if not lesson_ids:
        return {}
    rows = db.session.scalars(
        sa.select(LessonProgress).where(
            LessonProgress.user_id == user_id, LessonProgress.lesson_id.in_(lesson_ids)
        )
    )
    return {row.lesson_id: row for row in rows}


def continue_where_stopped(
    user_id: int, limit: int = 3, hidden: set[int] = frozenset()
) -> list[tuple[Lesson, LessonProgress]]:
    """Lessons started and not completed, most recent first, still published and not in a
    `hidden` course (a plan-only course the member is no longer assigned)."""
    rows = db.session.execute(
        sa.select(Lesson, LessonProgress)
        .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
        .join(Course, Course.id == Lesson.course_id)
        .where(
            LessonProgress.user_id == user_id,
            LessonProgress.completed_at.is_(None),
            Lesson.state == "published",
            Course.state == "published",
            Course.id.not_in(hidden or [-1]),
        )
        .order_by(LessonProgress.updated_at.desc())
        .limit(limit)
    ).all()
    return [(lesson, progress) for lesson, progress in rows]


def completed_lessons(user_id: int, year: int) -> list[tuple[Lesson, LessonProgress]]:
    """Lessons the user completed in a (UTC-stored, local-calendar) year, newest first."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    to_utc = lambda d: d.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)  # noqa: E731
    begin = to_utc(datetime(year, 1, 1, tzinfo=zone))
    end = to_utc(datetime(year + 1, 1, 1, tzinfo=zone))
    rows = db.session.execute(
        sa.select(Lesson, LessonProgress)
        .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
        .where(
            LessonProgress.user_id == user_id,
            LessonProgress.completed_at >= begin,
            LessonProgress.completed_at < end,
        )
        .order_by(LessonProgress.completed_at.desc())
    ).all()
    return [(lesson, progress) for lesson, progress in rows]


def progress_json(progress: LessonProgress | None, lesson: Lesson | None = None) -> dict:
    """What the player needs to know about the member's progress on a lesson (`requirement_met`
    only when the lesson is given)."""
    if progress is None:
        return {
            "coverage": 0.0,
            "position": 0.0,
            "watched": [],
            "completed": False,
            "read_seconds": 0.0,
            "requirement_met": False,
        }
    return {
        "coverage": round(progress.coverage, 4),
        "position": round(progress.position, 2),
        "watched": progress.watched,
        "completed": progress.completed_at is not None,
        "read_seconds": round(progress.read_seconds, 1),
        "requirement_met": progress.completed_at is not None
        or (lesson is not None and requirement_met(progress, lesson)),
    }
