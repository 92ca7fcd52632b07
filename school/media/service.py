"""Uploads and what becomes of them: lesson media (→ transcode job), attachments (→ text job),
subtitles (parsed at once into cues), course covers.

Resumable upload protocol (our own four calls rather than tus: the tus server libraries for Flask
are unmaintained, and these calls reuse the site's session, CSRF and JSON errors): create an upload
with its size and name, PUT chunks at the offset the server reports, ask the offset again after a
dropped connection, then complete it.
"""

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.courses.models import Course, Lesson
from school.errors import Conflict, DiskFull, Invalid, NotFound
from school.formatting import human_size
from school.jobs import service as jobs
from school.media import documents, storage, subtitles
from school.media.models import Attachment, MediaAsset, SubtitleCue, SubtitleTrack, Upload

# 1 MB: on a 1 Mbit/s phone link a chunk takes ~8 s, so progress moves and a retry loses little.
CHUNK_BYTES = 1024 * 1024
# What the browser may pick for each purpose: checked before the upload starts; the content
# itself is checked again after (ffprobe for media, magic bytes for documents).
EXTENSIONS = {
    "video": {
        ".mp4",
        ".m4v",
        ".mov",
        ".3gp",
        ".mkv",
        ".webm",
        ".avi",
        ".mp3",
        ".m4a",
        ".aac",
        ".wav",
        ".flac",
        ".ogg",
    },
    "attachment": {".pdf", ".docx", ".pptx", ".xlsx", ".png", ".jpg", ".jpeg", ".webp", ".gif"},
    "subtitle": {".srt", ".vtt"},
    "cover": {".png", ".jpg", ".jpeg", ".webp"},
}
SUBTITLE_MAX_BYTES = 2 * 1024 * 1024
COVER_MAX_BYTES = 10 * 1024 * 1024


def size_limit(purpose: str) -> int:
    """Largest file accepted for a purpose (bytes)."""
    config = current_app.config
    return {
        "video": config["MAX_UPLOAD_BYTES"],
        "attachment": config["MAX_DOCUMENT_BYTES"],
        "subtitle": SUBTITLE_MAX_BYTES,
        "cover": COVER_MAX_BYTES,
    }[purpose]


def check_file(purpose: str, filename: str, size: int) -> None:
    """Refuse, before any byte is sent, a file of the wrong kind or over the size limit."""
    if purpose not in EXTENSIONS:
        raise Invalid(_("Unknown kind of upload."))
    extension = os.path.splitext(filename or "")[1].lower()
    if extension not in EXTENSIONS[purpose]:
        allowed = "、".join(sorted(e.lstrip(".").upper() for e in EXTENSIONS[purpose]))
        raise Invalid(_("This kind of file cannot be uploaded here. Allowed: %(kinds)s.", kinds=allowed))
    if not isinstance(size, int) or size <= 0:
        raise Invalid(_("The file is empty."))
    if size > size_limit(purpose):
        raise Invalid(
            _(
                "The file is %(size)s; the largest allowed is %(limit)s.",
                size=human_size(size),
                limit=human_size(size_limit(purpose)),
            )
        )


def start_upload(
    user: User,
    purpose: str,
    filename: str,
    size: int,
    now: datetime,
    lesson: Lesson | None = None,
    course: Course | None = None,
) -> Upload:
    """Open a resumable upload for a lesson (media, attachment, subtitle) or a course cover."""
    check_file(purpose, filename, size)
    if (purpose == "cover") != (course is not None and lesson is None):
        raise Invalid(_("A cover belongs to a course; other files belong to a lesson."))
    upload = Upload(
        id=secrets.token_hex(16),
        user_id=user.id,
        lesson_id=lesson.id if lesson else None,
        course_id=course.id if course else None,
        purpose=purpose,
        filename=documents.safe_filename(filename),
        size=size,
        expires_at=now + timedelta(hours=current_app.config["UPLOAD_EXPIRY_HOURS"]),
    )
    db.session.add(upload)
    part = _part_path(upload.id)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.touch()
    return upload


def _part_path(upload_id: str) -> Path:
    return storage.absolute(f"uploads/{upload_id}.part")


def get_upload(upload_id: str, user: User) -> Upload:
    """An open upload of this user (others' uploads are not found, whatever the id)."""
    upload = db.session.get(Upload, upload_id) if upload_id else None
    if upload is None or upload.user_id != user.id:
        raise NotFound(_("This upload does not exist or has expired. Please start it again."))
    return upload


def write_chunk(upload: Upload, offset: int, data: bytes) -> int:
    """Write bytes at offset (which must be where the upload stands); returns the new offset."""
    if upload.state != "open":
        raise Conflict(_("This upload is already complete."))
    if offset != upload.received:
        raise Conflict(
            _("The upload stands at %(offset)d bytes; continue from there.", offset=upload.received)
        )
    if upload.received + len(data) > upload.size:
        raise Invalid(_("More data was sent than the file size given at the start."))
    # Unbuffered writes: a failed write must not linger in a buffer that close() tries again.
    fd = os.open(_part_path(upload.id), os.O_WRONLY)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        os.fsync(fd)
    except OSError as error:
        if not storage.is_disk_full(error):
            raise
        # Give back what part of the chunk got written; `received` is unchanged, so the same
        # chunk can be sent again at the same offset once there is space.
        os.ftruncate(fd, offset)
        raise DiskFull(
            _("The server's storage is full. Nothing you sent was lost; please try again later.")
        ) from None
    finally:
        os.close(fd)
    upload.received += len(data)
    return upload.received


def complete_upload(upload: Upload, user: User) -> dict:
    """Turn a fully received upload into a media asset, attachment, subtitle track or cover."""
    if upload.received != upload.size:
        raise Invalid(
            _(
                "The upload is not finished: %(got)d of %(size)d bytes received.",
                got=upload.received,
                size=upload.size,
            )
        )
    part = _part_path(upload.id)
    if not part.is_file():
        # The site stopped after moving the file but before saving that it did (kill -9, power
        # loss): the upload cannot be completed twice, so it is refused and started again.
        raise Invalid(_("The uploaded file was lost when the server stopped. Please upload it again."))
    result: dict
    if upload.purpose == "video":
        lesson = db.session.get(Lesson, upload.lesson_id)
        asset = add_media(lesson, part, upload.filename, user)
        result = {"media_id": asset.id, "job_id": asset.job_id}
    elif upload.purpose == "attachment":
        lesson = db.session.get(Lesson, upload.lesson_id)
        attachment = add_attachment(lesson, part, upload.filename)
        result = {"attachment_id": attachment.id, "job_id": None}
    elif upload.purpose == "subtitle":
        lesson = db.session.get(Lesson, upload.lesson_id)
        track = add_subtitles(lesson, part.read_bytes())
        part.unlink()
        result = {"subtitle_id": track.id, "cues": len(track.cues)}
    else:
        course = db.session.get(Course, upload.course_id)
        set_cover(course, part)
        result = {"course_id": course.id}
    db.session.delete(upload)
    return result


def add_media(lesson: Lesson, source: Path, filename: str, user: User | None) -> MediaAsset:
    """Store an original for a lesson and queue its transcode; it goes live when ready."""
    asset = MediaAsset(
        lesson_id=lesson.id,
        original_name=documents.safe_filename(filename),
        size=source.stat().st_size,
        created_by_id=user.id if user else None,
    )
    asset.original_path = storage.new_name("originals")
    storage.move_in(source, asset.original_path)
    db.session.add(asset)
    db.session.flush()
    if lesson.pending_media_id and lesson.pending_media_id != asset.id:
        old = db.session.get(MediaAsset, lesson.pending_media_id)
        if old is not None and old.state != "ready":
            old.state, old.error = "failed", _("Replaced by a newer upload.")
    lesson.pending_media_id = asset.id
    job = jobs.enqueue("media.transcode", {"asset_id": asset.id}, created_by_id=user.id if user else None)
    asset.job_id = job.id
    return asset


def add_attachment(lesson: Lesson, source: Path, filename: str) -> Attachment:
    """Keep a document or image for a lesson (checked by its bytes) and queue text extraction."""
    kind = documents.sniff(source)
    if kind is None:
        source.unlink(missing_ok=True)
        raise Invalid(_("This file is not a PDF, Word, PowerPoint, Excel file or image it claims to be."))
    extension = {"image": os.path.splitext(filename)[1].lower() or ".img"}.get(kind, f".{kind}")
    attachment = Attachment(
        lesson_id=lesson.id,
        filename=documents.safe_filename(filename),
        kind=kind,
        mime=documents.media_type(source) or "application/octet-stream",
        size=source.stat().st_size,
        path=storage.new_name("attachments", extension),
        state="processing" if kind != "image" else "ready",
    )
    storage.move_in(source, attachment.path)
    db.session.add(attachment)
    db.session.flush()
    if kind != "image":
        jobs.enqueue("media.extract_text", {"attachment_id": attachment.id})
    return attachment


def add_subtitles(lesson: Lesson, data: bytes, language: str = "zh-CN") -> SubtitleTrack:
    """Parse SRT/WebVTT (UTF-8 or GBK), keep it as WebVTT and as cues; replaces the old track."""
    try:
        cues = subtitles.parse(data)
    except subtitles.SubtitleRejected as error:
        raise Invalid(error.message) from None
    for old in list(lesson.subtitles):
        storage.remove(old.path)
        lesson.subtitles.remove(old)
    track = SubtitleTrack(lesson_id=lesson.id, language=language, path=storage.new_name("subtitles", ".vtt"))
    track.cues = [SubtitleCue(start_ms=c.start_ms, end_ms=c.end_ms, text=c.text) for c in cues]
    target = storage.absolute(track.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        tmp.write_text(subtitles.to_vtt(cues), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)  # a disk-full write leaves no half file (answered with 507)
        raise
    lesson.subtitles.append(track)
    db.session.flush()
    return track


def set_cover(course: Course, source: Path) -> None:
    """Use an uploaded image as the course cover."""
    kind = documents.sniff(source)
    if kind != "image":
        source.unlink(missing_ok=True)
        raise Invalid(_("The cover must be a PNG, JPEG or WebP image."))
    old = course.cover_path
    course.cover_path = storage.new_name("covers", os.path.splitext(source.name)[1] or ".img")
    storage.move_in(source, course.cover_path)
    storage.remove(old)


def expire_uploads(now: datetime) -> int:
    """Delete unfinished uploads whose time is up, with their partial files."""
    expired = list(db.session.scalars(sa.select(Upload).where(Upload.expires_at < now)))
    for upload in expired:
        _part_path(upload.id).unlink(missing_ok=True)
        db.session.delete(upload)
    return len(expired)
