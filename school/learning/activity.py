"""Whether a member studied in a period: the one definition the warnings, the member list and the
comparison share, so no page calls a member "studied" while another calls them idle.

A member studied at a moment when they
- played or read a lesson: a heartbeat was accepted, seen on the viewing session
  (`last_beat_at`) and on the lesson's progress (`updated_at` moves with every beat; a row only
  opened, with no time spent, is not study),
- completed a lesson, or confirmed finishing one ("我已学完"),
- submitted a quiz (a lesson's quiz or the daily quiz: once the daily quiz's yearly 学时 cap is
  reached it earns nothing, but answering it is still study), or
- earned 学时 by studying (a lesson, a course, an offline lesson, the daily quiz) that was not
  cancelled since. Manual adjustments and corrections (reversals) are bookkeeping, not study.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from school import db
from school.credits.models import CreditEntry
from school.learning.models import LessonProgress, ViewingSession
from school.quizzes.models import Attempt

# Ledger sources written when the member studied something.
STUDY_SOURCES = ("lesson", "course", "offline", "daily_quiz")


# A kind of study as SQL: (the moment it happened, conditions for it to be study).
Kind = tuple[sa.ColumnElement, list[sa.ColumnElement[bool]]]


def _moments() -> list[tuple[sa.ColumnElement, list[Kind]]]:
    """Per table: its user id and the kinds of study it records (the definition above, as SQL)."""
    reversal = orm.aliased(CreditEntry)
    # Not correlated: reversals are few, and a per-entry lookup has no index to use.
    reversed_ids = sa.select(reversal.reverses_id).where(reversal.reverses_id.is_not(None))
    return [
        (ViewingSession.user_id, [(ViewingSession.last_beat_at, [ViewingSession.beats > 0])]),
        (
            LessonProgress.user_id,
            [
                (LessonProgress.updated_at, [LessonProgress.time_spent > 0]),
                (LessonProgress.completed_at, []),
                (LessonProgress.confirmed_at, []),
            ],
        ),
        (Attempt.user_id, [(Attempt.submitted_at, [])]),
        (
            CreditEntry.user_id,
            [
                (
                    CreditEntry.created_at,
                    [
                        CreditEntry.amount > 0,
                        CreditEntry.source.in_(STUDY_SOURCES),
                        CreditEntry.id.not_in(reversed_ids),
                    ],
                )
            ],
        ),
    ]


def studied_user_ids(
    start: datetime, end: datetime | None = None, members: sa.Select | None = None
) -> sa.CompoundSelect:
    """SELECT (one column, `user_id`, no duplicates) of the members who studied in [start, end)
    (naive UTC; no end: up to now), optionally only among `members` (a SELECT of user ids)."""
    parts = []
    for user_id, kinds in _moments():
        # One pass over each table: a row counts when any of its moments is in the period.
        any_kind = sa.or_(
            *(
                sa.and_(*conditions, moment >= start, *([] if end is None else [moment < end]))
                for moment, conditions in kinds
            )
        )
        stmt = sa.select(user_id.label("user_id")).where(any_kind)
        if members is not None:
            stmt = stmt.where(user_id.in_(members))
        parts.append(stmt)
    return sa.union(*parts)


def last_study_at(user_id: int) -> datetime | None:
    """When the member last studied (naive UTC), or None if never."""
    moments = sa.union_all(
        *(
            sa.select(sa.func.max(moment).label("at")).where(user_id_column == user_id, *conditions)
            for user_id_column, kinds in _moments()
            for moment, conditions in kinds
        )
    ).subquery("moments")
    return db.session.scalar(sa.select(sa.func.max(moments.c.at)))
