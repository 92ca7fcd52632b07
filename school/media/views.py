"""Serving stored media to those allowed to see it (Range requests, or nginx via X-Accel-Redirect).

URLs carry database ids and are checked on every request against the lesson's visibility: there
are no public or guessable file URLs, and no signed links to leak. Renditions are immutable (a new
transcode writes a new folder), so they are cached privately for a year.
"""

from flask import Blueprint, current_app, make_response, request, send_file
from flask_login import current_user

from school import access, db
from school.courses.models import Course, Lesson
from school.errors import NotFound
from school.media import documents, storage
from school.media.models import Attachment, MediaAsset, Rendition, SubtitleTrack

bp = Blueprint("media", __name__, url_prefix="/media")
YEAR = 365 * 24 * 3600


def _send(
    relative: str,
    mime: str,
    *,
    download_name: str | None = None,
    inline: bool = True,
    immutable: bool = False,
):
    path = storage.absolute(relative)
    if not path.is_file():
        raise NotFound()
    if current_app.config["MEDIA_OFFLOAD"] == "nginx":
        # nginx: `location /_media/ { internal; alias MEDIA_DIR/; }` sends the bytes (and Ranges).
        response = make_response("")
        response.headers["X-Accel-Redirect"] = f"/_media/{relative}"
        response.headers["Content-Type"] = mime
    else:
        response = send_file(path, mimetype=mime, conditional=True, max_age=YEAR if immutable else 0)
    if download_name is not None:
        response.headers["Content-Disposition"] = documents.content_disposition(download_name, inline)
    response.headers["Cache-Control"] = (
        f"private, max-age={YEAR}, immutable" if immutable else "private, no-cache"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Files are never documents of this site: no scripts, no plugins, even if one slipped through.
    # (Chromium's PDF viewer refuses to run in a sandboxed document, so PDFs get only the rest.)
    sandbox = "" if mime == "application/pdf" else "; sandbox"
    response.headers["Content-Security-Policy"] = f"default-src 'none'{sandbox}"
    return response


def _lesson_of_asset(asset_id: int) -> Lesson:
    asset = db.session.get(MediaAsset, asset_id)
    lesson = db.session.get(Lesson, asset.lesson_id) if asset and asset.lesson_id else None
    if lesson is None:
        raise NotFound()
    return lesson


@bp.get("/r/<int:rendition_id>/<name>")
@access.signed_in
def rendition(rendition_id: int, name: str):
    """A rendition (360p/high/audio/poster) of a lesson's media."""
    item = db.session.get(Rendition, rendition_id)
    if item is None:
        raise NotFound()
    access.require(access.may_view_lesson(current_user, _lesson_of_asset(item.asset_id)))
    return _send(item.path, item.mime, immutable=True)


@bp.get("/attachments/<int:attachment_id>/<path:filename>")
@access.signed_in
def attachment(attachment_id: int, filename: str):
    """An attachment: a download, or shown inline (PDF and images only) with ?inline=1."""
    item = db.session.get(Attachment, attachment_id)
    if item is None:
        raise NotFound()
    access.require(access.may_view_lesson(current_user, item.lesson))
    inline = request.args.get("inline") == "1" and item.kind in documents.INLINE_SAFE
    return _send(item.path, item.mime, download_name=item.filename, inline=inline)


@bp.get("/subtitles/<int:track_id>.vtt")
@access.signed_in
def subtitle(track_id: int):
    """A lesson's subtitles as WebVTT."""
    track = db.session.get(SubtitleTrack, track_id)
    if track is None:
        raise NotFound()
    access.require(access.may_view_lesson(current_user, db.session.get(Lesson, track.lesson_id)))
    return _send(track.path, "text/vtt; charset=utf-8")


@bp.get("/covers/<int:course_id>")
@access.signed_in
def cover(course_id: int):
    """A course's cover image."""
    course = db.session.get(Course, course_id)
    if course is None or not course.cover_path:
        raise NotFound()
    access.require(access.may_view_course(current_user, course))
    mime = documents.media_type(storage.absolute(course.cover_path)) or "application/octet-stream"
    return _send(course.cover_path, mime)
