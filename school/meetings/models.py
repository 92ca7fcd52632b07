"""Offline lessons and meetings (三会一课, 集体收看) and who attended them.

Attendance credits 学时 through the ledger, one entry per attendee per meeting at a time, with the
key "offline:<meeting>:<user>:<round>". A correction reverses the standing entry; crediting the same
person again (re-added, or new hours) takes the next round, so the ledger's unique (user, ref_key)
still holds. A `MeetingAttendance` row is kept for everyone ever ticked (so the meeting's history
can be read from the ledger by user); those present now have `removed_at` NULL. A cancelled meeting
keeps its rows, with every credit reversed.
"""

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

# 支部党员大会, 支委会, 党小组会, 党课, 主题党日, 集体收看 (a lesson video watched together).
KINDS = ("party_congress", "committee", "group", "lecture", "theme_day", "group_viewing")
HOURS_MAX = Decimal("8")  # a whole day; more is a typing mistake


class Meeting(Base):
    __tablename__ = "meeting"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The organisation that held it (usually a branch).
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    held_on: Mapped[date]
    topic: Mapped[str] = mapped_column(sa.String(200))
    lecturer: Mapped[str] = mapped_column(sa.String(64), default="")
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(4, 2))  # 学时 credited to each attendee
    # The lesson shown, for group viewing.
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id", ondelete="SET NULL"))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str] = mapped_column(sa.Text, default="")
    # Random token of the form that recorded it: a form sent twice records one meeting.
    submit_token: Mapped[str | None] = mapped_column(sa.String(48), unique=True)

    org = orm.relationship("Org", lazy="joined")
    lesson = orm.relationship("Lesson")
    recorded_by = orm.relationship("User", foreign_keys=[recorded_by_id])
    cancelled_by = orm.relationship("User", foreign_keys=[cancelled_by_id])
    attendances: Mapped[list["MeetingAttendance"]] = orm.relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="MeetingAttendance.id"
    )

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        sa.CheckConstraint(f"hours > 0 AND hours <= {HOURS_MAX}", name="hours_range"),
        # Lists per org subtree and quarter ("was an offline lesson held this quarter?").
        sa.Index("ix_meeting_org_held", "org_id", "held_on"),
    )


class MeetingAttendance(Base):
    """A member present at a meeting, and the ledger entry now crediting them for it."""

    __tablename__ = "meeting_attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(sa.ForeignKey("meeting.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    # The entry crediting them now; None once reversed (removed, or the meeting cancelled).
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_entry.id", ondelete="SET NULL"))
    # How many times they have been credited for this meeting: the next credit's ref_key round.
    rounds: Mapped[int] = mapped_column(default=0)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]  # ticked off again (a correction); None while present

    meeting: Mapped[Meeting] = orm.relationship(back_populates="attendances")
    user = orm.relationship("User", lazy="joined")
    entry = orm.relationship("CreditEntry")

    __table_args__ = (sa.UniqueConstraint("meeting_id", "user_id"),)

    @property
    def present(self) -> bool:
        return self.removed_at is None
