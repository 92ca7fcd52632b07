"""The 学时 ledger: append-only entries; a correction is a reversing entry, never an edit.

Each entry has a `ref_key` naming what earned it ("lesson:12", "course:3", "daily:2026-11-27",
"offline:5"); (user, ref_key) is unique, so crediting the same thing twice, from two processes at
once, writes one entry. Reversals and manual adjustments get their own keys ("reversal:<id>",
"manual:<uuid>").
"""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

SOURCES = ("lesson", "course", "offline", "daily_quiz", "manual", "reversal")


class CreditEntry(Base):
    __tablename__ = "credit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    year: Mapped[int]  # study year the credit counts for (local calendar year of earning)
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(6, 2))
    source: Mapped[str] = mapped_column(sa.String(16))
    ref_key: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200), default="")  # what was studied, as it was then
    reason: Mapped[str] = mapped_column(sa.Text, default="")  # required for manual entries
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_entry.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by = orm.relationship("User", foreign_keys=[created_by_id])

    __table_args__ = (
        sa.UniqueConstraint("user_id", "ref_key", name="once"),
        sa.Index("ix_credit_entry_user_year", "user_id", "year"),
        # Covers the yearly roll-ups (reports sum a year's entries per user without the table).
        sa.Index("ix_credit_entry_year_user", "year", "user_id", "amount", "created_at"),
        # Covers credits in a date range (plan 学时, comparison periods, weekly trends, 防瘫预警).
        sa.Index("ix_credit_entry_created", "created_at", "user_id", "amount"),
        sa.CheckConstraint(f"source IN {SOURCES!r}", name="source"),
        sa.CheckConstraint("amount >= -1000 AND amount <= 1000", name="amount_range"),
    )
