"""Study plans (学习计划): an org pushes courses or single lessons to everyone in its subtree.

A plan applies to the members of its org and of every org below it (read through the closure
table), from `starts_on`; `due_on` is the deadline. Items name a whole course (all its published
lessons, as they are at the time of asking) or one lesson.
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

    org = orm.relationship("Org")
    items: Mapped[list["PlanItem"]] = orm.relationship(
        back_populates="plan", cascade="all, delete-orphan", lazy="selectin", order_by="PlanItem.id"
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
