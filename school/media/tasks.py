"""Media jobs run by the worker: transcode lesson media, extract attachment text, expire uploads."""

import shutil

from flask import current_app
from flask_babel import gettext as _

from school import db
from school.courses.models import Lesson
from school.errors import DiskFull
from school.jobs.service import JobRejected, handler
from school.media import documents, storage
from school.media.models import Attachment, MediaAsset, Rendition


@handler("media.transcode")
def transcode_job(job, progress) -> dict:
    """Probe the original, make the phone renditions, and put them live on the lesson."""
    from school.media.probe import MediaRejected, probe
    from school.media.transcode import transcode

    asset = db.session.get(MediaAsset, job.args["asset_id"])
    if asset is None or asset.state == "ready":
        return {"skipped": True}
    asset.state, asset.error = "processing", None
    progress(1, _("Checking the file"))
    source = storage.absolute(asset.original_path)
    work = storage.work_dir(f"transcode-{asset.id}")
    try:
        try:
            info = probe(source)
        except MediaRejected as error:
            _fail(asset, error.message)
            raise JobRejected(error.message) from None
        asset.kind = "video" if info.has_video else "audio"
        asset.duration, asset.width, asset.height = info.duration, info.width, info.height
        asset.rotation, asset.has_audio, asset.has_video = info.rotation, info.has_audio, info.has_video
        progress(3, _("Transcoding"))
        try:
            outputs = transcode(
                source,
                work,
                info,
                on_progress=lambda pct: progress(3 + pct * 0.95, _("Transcoding")),
                timeout=current_app.config["TRANSCODE_TIMEOUT_SECONDS"],
            )
        except MediaRejected as error:
            _fail(asset, error.message)
            raise JobRejected(error.message) from None
        folder = storage.new_name(f"renditions/{asset.id}")  # a new folder per run: immutable URLs
        for old in list(asset.renditions):
            asset.renditions.remove(old)
        db.session.flush()  # the old rows go first: (asset, name) is unique, the new rows reuse names
        try:
            for name, output in outputs.items():
                relative = f"{folder}/{name}{output.path.suffix}"
                storage.move_in(output.path, relative)
                asset.renditions.append(
                    Rendition(
                        name=name,
                        path=relative,
                        mime=output.mime,
                        size=output.size,
                        width=output.width,
                        height=output.height,
                    )
                )
            asset.state = "ready"
            lesson = db.session.get(Lesson, asset.lesson_id) if asset.lesson_id else None
            if lesson is not None and lesson.pending_media_id == asset.id:
                lesson.media_id, lesson.pending_media_id = asset.id, None
            db.session.commit()
        except BaseException:
            # No row will point at this run's folder: do not leave its files behind.
            shutil.rmtree(storage.absolute(folder), ignore_errors=True)
            raise
        return {name: {"size": o.size, "width": o.width, "height": o.height} for name, o in outputs.items()}
    except OSError as error:
        if not storage.is_disk_full(error):
            raise
        # The original is kept and the job is retried (DiskFull is no JobRejected); the lecturer
        # sees why it is not ready yet, and a retry after space is freed starts from scratch.
        db.session.rollback()
        message = _(
            "The server's storage is full, so the video could not be processed yet. "
            "It will be tried again; if this stays, please tell the administrator."
        )
        _fail(db.session.get(MediaAsset, asset.id), message)
        raise DiskFull(message) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fail(asset: MediaAsset, message: str) -> None:
    asset.state, asset.error = "failed", message
    db.session.commit()


@handler("media.extract_text")
def extract_text_job(job, progress) -> dict:
    """Extract a document's text (per page) for search, within page, size and time limits."""
    attachment = db.session.get(Attachment, job.args["attachment_id"])
    if attachment is None or attachment.state == "ready":
        return {"skipped": True}
    try:
        extracted = documents.extract_text(storage.absolute(attachment.path), attachment.kind)
    except documents.DocumentRejected as error:
        attachment.state, attachment.error = "failed", error.message
        db.session.commit()
        raise JobRejected(error.message) from None
    attachment.text, attachment.pages = extracted.text, extracted.pages
    attachment.state, attachment.error = "ready", None
    db.session.commit()
    return {"pages": len(extracted.pages), "chars": len(extracted.text), "truncated": extracted.truncated}


@handler("media.expire_uploads")
def expire_uploads_job(job, progress) -> dict:
    """Delete unfinished uploads whose time is up."""
    from school.media.service import expire_uploads

    removed = expire_uploads(db.utcnow())
    db.session.commit()
    return {"removed": removed}
