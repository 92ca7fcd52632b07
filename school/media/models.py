"""Media files: uploaded originals and their renditions, attachments, subtitles, partial uploads.

Every stored file lives under MEDIA_DIR at a generated path (never the client's file name);
`*_path` columns are relative to MEDIA_DIR.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

ASSET_STATES = ("uploaded", "processing", "ready", "failed")
UPLOAD_PURPOSES = ("video", "attachment", "subtitle", "cover")


class MediaAsset(Base):
    """One uploaded audio/video original and what the pipeline learned and made from it."""

    __tablename__ = "media_asset"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The lesson it was uploaded for (who may see it). A plain column, not a foreign key: lesson
    # points back here (media_id), and a cycle of keys would need ALTERs SQLite cannot do.
    lesson_id: Mapped[int | None] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="uploaded")
    kind: Mapped[str | None] = mapped_column(sa.String(16))  # video | audio, known after probing
    original_path: Mapped[str | None] = mapped_column(sa.String(255))
    original_name: Mapped[str] = mapped_column(sa.String(255), default="")  # shown, never a path
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    duration: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    rotation: Mapped[int] = mapped_column(default=0)
    has_audio: Mapped[bool] = mapped_column(default=False)
    has_video: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)  # the reason, in the lecturer's language
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("job.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    renditions: Mapped[list["Rendition"]] = orm.relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Rendition.id"
    )
    job = orm.relationship("Job")

    __table_args__ = (sa.CheckConstraint(f"state IN {ASSET_STATES!r}", name="state"),)

    def rendition(self, name: str) -> "Rendition | None":
        return next((r for r in self.renditions if r.name == name), None)


class Rendition(Base):
    """A phone-friendly output: 360p, high, audio (m4a) or poster (jpg). Immutable once written."""

    __tablename__ = "rendition"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_asset.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(16))
    path: Mapped[str] = mapped_column(sa.String(255))
    mime: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    width: Mapped[int | None]
    height: Mapped[int | None]

    __table_args__ = (sa.UniqueConstraint("asset_id", "name", name="uq_rendition_asset_name"),)


class Attachment(Base):
    """A document or image of a lesson; its text is extracted by the worker for search."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))  # display/download name only
    kind: Mapped[str] = mapped_column(sa.String(16))  # pdf | docx | pptx | xlsx | image
    mime: Mapped[str] = mapped_column(sa.String(100))
    path: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    state: Mapped[str] = mapped_column(sa.String(16), default="processing")
    text: Mapped[str | None] = mapped_column(sa.Text)
    pages: Mapped[list | None] = mapped_column(sa.JSON)  # text per page/slide/sheet
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lesson = orm.relationship("Lesson", back_populates="attachments")


class SubtitleTrack(Base):
    __tablename__ = "subtitle_track"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(sa.String(16), default="zh-CN")
    label: Mapped[str] = mapped_column(sa.String(64), default="中文")
    path: Mapped[str] = mapped_column(sa.String(255))  # the WebVTT file
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cues: Mapped[list["SubtitleCue"]] = orm.relationship(
        cascade="all, delete-orphan", order_by="SubtitleCue.start_ms"
    )


class SubtitleCue(Base):
    """One cue, kept for search (jump to the second it is said)."""

    __tablename__ = "subtitle_cue"

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(sa.ForeignKey("subtitle_track.id", ondelete="CASCADE"), index=True)
    start_ms: Mapped[int]
    end_ms: Mapped[int]
    text: Mapped[str] = mapped_column(sa.Text)


class Upload(Base):
    """A resumable upload in progress: chunks are appended at `received` until `size` is reached."""

    __tablename__ = "upload"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # unguessable token
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    filename: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    received: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    state: Mapped[str] = mapped_column(sa.String(16), default="open")  # open | complete
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"purpose IN {UPLOAD_PURPOSES!r}", name="purpose"),
        sa.CheckConstraint("received >= 0 AND received <= size", name="received_range"),
    )
