"""Courses and lessons.

Editing a published lesson: text and settings go live when saved; a new video replaces the one
members watch only when all its renditions are ready (`pending_media_id` → `media_id`), so a
published lesson keeps playing while its new version is uploaded and transcoded.
"""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

COURSE_STATES = ("draft", "published")
# who may find and study a published course: every member, or only those a study plan names it to
AUDIENCES = ("all", "plan")
LESSON_STATES = ("draft", "published")
# watch the media / read the text for READ_MINIMUM_SECONDS / press "我已学完"
COMPLETIONS = ("watch", "read", "confirm")


class Course(Base):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # content folder key
    title: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    audience: Mapped[str] = mapped_column(sa.String(16), default="all", server_default="all")
    cover_path: Mapped[str | None] = mapped_column(sa.String(255))  # relative to MEDIA_DIR
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    owner = orm.relationship("User", lazy="joined")
    lessons: Mapped[list["Lesson"]] = orm.relationship(
        back_populates="course", order_by="Lesson.position", cascade="all, delete-orphan"
    )
    tag_rows: Mapped[list["CourseTag"]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CourseTag.tag"
    )
    lecturer_rows: Mapped[list["CourseLecturer"]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        sa.CheckConstraint(f"state IN {COURSE_STATES!r}", name="state"),
        sa.CheckConstraint(f"audience IN {AUDIENCES!r}", name="audience"),
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def co_lecturer_ids(self) -> set[int]:
        return {row.user_id for row in self.lecturer_rows}


class CourseTag(Base):
    __tablename__ = "course_tag"

    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(32), primary_key=True, index=True)


class CourseLecturer(Base):
    """A co-lecturer the owner added: may edit the course like the owner (but not its lecturers)."""

    __tablename__ = "course_lecturer"

    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    user = orm.relationship("User", lazy="joined")


class Lesson(Base):
    __tablename__ = "lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"), index=True)
    code: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(sa.String(120))
    body_md: Mapped[str] = mapped_column(sa.Text, default="")
    credit_hours: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), default=Decimal("0"))
    state: Mapped[str] = mapped_column(sa.String(16), default="draft")
    completion: Mapped[str] = mapped_column(sa.String(16), default="watch")
    media_id: Mapped[int | None] = mapped_column(sa.ForeignKey("media_asset.id", ondelete="SET NULL"))
    pending_media_id: Mapped[int | None] = mapped_column(sa.ForeignKey("media_asset.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    course: Mapped[Course] = orm.relationship(back_populates="lessons")
    media = orm.relationship("MediaAsset", foreign_keys=[media_id])
    pending_media = orm.relationship("MediaAsset", foreign_keys=[pending_media_id])
    attachments = orm.relationship(
        "Attachment", order_by="Attachment.id", cascade="all, delete-orphan", back_populates="lesson"
    )
    subtitles = orm.relationship("SubtitleTrack", order_by="SubtitleTrack.id", cascade="all, delete-orphan")

    __table_args__ = (
        sa.CheckConstraint(f"state IN {LESSON_STATES!r}", name="state"),
        sa.CheckConstraint(f"completion IN {COMPLETIONS!r}", name="completion"),
        sa.CheckConstraint("credit_hours >= 0 AND credit_hours <= 100", name="credit_range"),
    )
