"""A member's progress on a lesson, and the viewing sessions that report it.

Progress only ever grows: `watched` is the union of the media intervals really played (checked
against wall-clock time as beats arrive), so coverage cannot be gamed by seeking to the end or by
replaying one part. Time spent is kept apart from coverage.
"""

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow


class LessonProgress(Base):
    __tablename__ = "lesson_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    watched_json: Mapped[str] = mapped_column(sa.Text, default="[]")  # [[start, end], …] seconds
    covered_seconds: Mapped[float] = mapped_column(default=0.0)
    duration: Mapped[float] = mapped_column(default=0.0)  # media length when last updated
    time_spent: Mapped[float] = mapped_column(default=0.0)  # seconds of playing or reading
    position: Mapped[float] = mapped_column(default=0.0)  # where to resume
    read_seconds: Mapped[float] = mapped_column(default=0.0)
    confirmed_at: Mapped[datetime | None]  # "我已学完" on lessons completed by confirmation
    first_opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("user_id", "lesson_id", name="one_per_lesson"),
        sa.Index("ix_lesson_progress_user_updated", "user_id", "updated_at"),
        # Covers the plan and course roll-ups (per lesson, per member) without reading the rows.
        sa.Index(
            "ix_lesson_progress_report",
            "lesson_id",
            "user_id",
            "completed_at",
            "covered_seconds",
            "duration",
            "updated_at",
        ),
    )

    @property
    def watched(self) -> list[tuple[float, float]]:
        return [tuple(pair) for pair in json.loads(self.watched_json or "[]")]

    @property
    def coverage(self) -> float:
        """Share of the media watched, 0–1."""
        if self.duration <= 0:
            return 0.0
        return min(1.0, self.covered_seconds / self.duration)


class ViewingSession(Base):
    """One page view of a lesson on one device, reporting beats in `seq` order.

    Its id is a random secret given to the page that opened it; a member has one active session
    per lesson (opening the lesson on a second device takes over, the first one's beats are
    refused). `claimed` is the wall-clock time the accepted beats account for: each beat must fit
    in the time since the session began (see service.record_beat).
    """

    __tablename__ = "viewing_session"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(8), default="watch")  # watch | read
    duration: Mapped[float] = mapped_column(default=0.0)  # of the media when the session began
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_beat_at: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(default=0)
    beats: Mapped[int] = mapped_column(default=0)
    claimed: Mapped[float] = mapped_column(default=0.0)
    superseded_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_viewing_session_user_lesson", "user_id", "lesson_id"),
        sa.CheckConstraint("kind IN ('watch', 'read')", name="kind"),
    )
