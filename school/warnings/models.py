"""Warning rules, the warnings they raise on organisations, and each warning's history.

A rule applies to every open organisation of one kind (branch, street, district, …), so admins tune
it per level of the tree. While a rule's condition holds for an organisation there is exactly one
open warning for that pair (and plan, for plan rules): `open_key` is set while it is open and
cleared when it resolves, and it is unique, so two evaluations at once cannot raise it twice.
"""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

# inactive_share: share of members with no study in `days` days is above `threshold` percent.
# plan_behind: a plan's completion trails its elapsed time by more than `threshold` points.
# no_offline_lesson: no offline lesson or meeting held this quarter, once `days` of it have passed.
RULE_KINDS = ("inactive_share", "plan_behind", "no_offline_lesson")
LEVELS = ("yellow", "orange", "red")
STATES = ("open", "acknowledged", "resolved")
ACTIONS = ("raised", "escalated", "acknowledged", "resolved")


class WarningRule(Base):
    __tablename__ = "warning_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(24))
    org_kind: Mapped[str] = mapped_column(sa.String(16))  # which level of the tree it watches
    days: Mapped[int] = mapped_column(default=30)
    threshold: Mapped[Decimal] = mapped_column(sa.Numeric(5, 1), default=Decimal("50"))
    # Smaller organisations are not judged by a share: one idle member is not a paralysed branch.
    min_members: Mapped[int] = mapped_column(default=3)
    orange_after_days: Mapped[int] = mapped_column(default=14)
    red_after_days: Mapped[int] = mapped_column(default=30)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {RULE_KINDS!r}", name="kind"),
        sa.CheckConstraint("days >= 1 AND days <= 366", name="days_range"),
        sa.CheckConstraint("threshold >= 0 AND threshold <= 100", name="threshold_range"),
        sa.CheckConstraint("orange_after_days >= 0 AND red_after_days >= orange_after_days", name="levels"),
    )


class OrgWarning(Base):
    __tablename__ = "org_warning"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("warning_rule.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("study_plan.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(sa.String(8), default="yellow")
    state: Mapped[str] = mapped_column(sa.String(16), default="open")
    open_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    value: Mapped[Decimal] = mapped_column(sa.Numeric(6, 1), default=Decimal("0"))  # the measured figure
    members: Mapped[int] = mapped_column(default=0)  # head-count it was measured over
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]

    rule: Mapped[WarningRule] = orm.relationship(lazy="joined")
    org = orm.relationship("Org", lazy="joined")
    plan = orm.relationship("StudyPlan")
    events: Mapped[list["WarningEvent"]] = orm.relationship(
        back_populates="warning", order_by="WarningEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint(f"level IN {LEVELS!r}", name="level"),
        sa.CheckConstraint(f"state IN {STATES!r}", name="state"),
        sa.Index("ix_org_warning_state_org", "state", "org_id"),
    )


class WarningEvent(Base):
    """Append-only history of a warning."""

    __tablename__ = "warning_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(sa.ForeignKey("org_warning.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(sa.String(16))
    level: Mapped[str] = mapped_column(sa.String(8))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    warning: Mapped[OrgWarning] = orm.relationship(back_populates="events")
    by_user = orm.relationship("User")

    __table_args__ = (sa.CheckConstraint(f"action IN {ACTIONS!r}", name="action"),)
