"""Roster history: transfers of members between branches."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow


class MemberTransfer(Base):
    """A member moved from one branch to another (流动党员 studying where they are).

    Study records and the 学时 ledger are keyed by user, so a transfer copies nothing: this row is
    the only trace, and the org names are kept as they were then.
    """

    __tablename__ = "member_transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    from_org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id", ondelete="SET NULL"))
    to_org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id", ondelete="SET NULL"))
    from_name: Mapped[str] = mapped_column(sa.String(120), default="")
    to_name: Mapped[str] = mapped_column(sa.String(120), default="")
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    by_user = orm.relationship("User", foreign_keys=[by_user_id], lazy="joined")

    __table_args__ = (sa.Index("ix_member_transfer_user_at", "user_id", "at"),)
