"""Study plans (学习计划): an org pushes courses or single lessons to everyone in its subtree.

A plan applies to the members of its org and of every org below it (read through the closure
table), from `starts_on`; `due_on` is the deadline. Targets narrow it (see PlanTarget); who it
reaches is always computed at read time, so members who join or transfer in get it. Items name a
whole course (all its published lessons, as they are at the time of asking) or one lesson.
"""

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow


class StudyPlan(Base):
    __tablename__ = "study_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable external key for plans kept in content files (plans.yaml); None for plans made in the app.
    code: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    starts_on: Mapped[date]
    due_on: Mapped[date]
    required_hours: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A closed plan is no longer shown to members nor reminded about; it can be reopened.
    closed_at: Mapped[datetime | None]

    org = orm.relationship("Org")
    items: Mapped[list["PlanItem"]] = orm.relationship(
        back_populates="plan", cascade="all, delete-orphan", lazy="selectin", order_by="PlanItem.id"
    )

    targets: Mapped[list["PlanTarget"]] = orm.relationship(
        back_populates="plan", cascade="all, delete-orphan", lazy="selectin", order_by="PlanTarget.id"
    )

    __table_args__ = (sa.CheckConstraint("due_on >= starts_on", name="dates"),)


class PlanItem(Base):
    """One course (all its published lessons) or one lesson of a plan."""

    __tablename__ = "plan_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("study_plan.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"))
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"))

    plan: Mapped[StudyPlan] = orm.relationship(back_populates="items")
    course = orm.relationship("Course", lazy="joined")
    lesson = orm.relationship("Lesson", lazy="joined")

    __table_args__ = (sa.CheckConstraint("(course_id IS NULL) <> (lesson_id IS NULL)", name="one_target"),)


# Member categories a plan can be narrowed to (the User columns they read are in plans.service).
CATEGORIES = ("full", "probationary", "working", "retired", "floating")
TARGET_KINDS = ("org", "category", "member")


class PlanTarget(Base):
    """Narrows a plan within its org's subtree: to some orgs below it, member categories, or people.

    A plan without targets reaches its whole subtree. Otherwise a member is reached when named
    (kind "member"), or when they match the org targets (any, if there are some) and the category
    targets (any, if there are some). Named members must still be inside the plan's subtree.
    """

    __tablename__ = "plan_target"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("study_plan.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    category: Mapped[str | None] = mapped_column(sa.String(16))

    plan: Mapped[StudyPlan] = orm.relationship(back_populates="targets")
    org = orm.relationship("Org", lazy="joined")
    user = orm.relationship("User", lazy="joined")

    __table_args__ = (
        sa.CheckConstraint(f"kind IN {TARGET_KINDS!r}", name="kind"),
        sa.CheckConstraint(
            "(kind = 'org' AND org_id IS NOT NULL) OR (kind = 'member' AND user_id IS NOT NULL)"
            " OR (kind = 'category' AND category IS NOT NULL)",
            name="value",
        ),
    )
