"""Resumable uploads, job progress and course edits over JSON (used by the authoring pages)."""

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.api import bp
from school.api.routes import json_body
from school.courses import service as courses
from school.courses.models import Lesson
from school.errors import Invalid, NotFound
from school.jobs.models import Job
from school.media import service as media
from school.media.models import MediaAsset


def upload_json(upload) -> dict:
    return {
        "id": upload.id,
        "offset": upload.received,
        "size": upload.size,
        "purpose": upload.purpose,
        "chunk_size": media.CHUNK_BYTES,
    }


@bp.post("/uploads")
@access.lecturer
def create_upload():
    """Start a resumable upload.
    ---
    post:
      summary: Start a resumable upload for a lesson (video, attachment, subtitle) or a course cover
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [purpose, filename, size]
              properties:
                purpose: {type: string, enum: [video, attachment, subtitle, cover]}
                filename: {type: string}
                size: {type: integer}
                lesson_id: {type: integer}
                course_id: {type: integer}
      responses:
        201: {content: {application/json: {schema: {$ref: '#/components/schemas/Upload'}}}}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
    """
    data = json_body()
    purpose, filename, size = data.get("purpose"), data.get("filename"), data.get("size")
    if not isinstance(filename, str) or not isinstance(size, int) or isinstance(size, bool):
        raise Invalid(_("A file name and a size in bytes are needed."))
    lesson = course = None
    if data.get("lesson_id") is not None:
        lesson = courses.get_lesson(_int(data.get("lesson_id")))
        access.require(access.may_edit_course(current_user, lesson.course))
    elif data.get("course_id") is not None:
        course = courses.get_course(_int(data.get("course_id")))
        access.require(access.may_edit_course(current_user, course))
    else:
        raise Invalid(_("Say which lesson or course the file is for."))
    upload = media.start_upload(current_user, purpose, filename, size, db.utcnow(), lesson, course)
    db.session.commit()
    return jsonify(upload_json(upload)), 201


def _int(value) -> int:
    # Out of the ids' 32-bit range cannot exist (and overflowed SQLite: a 500 found by schemathesis).
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise NotFound()
    return value


def _editable_upload(upload_id: str):
    """My upload, while I may still edit its lesson or course: a lecturer taken off the course
    (or out of the lecturer role) cannot finish what they started (test_authorization_matrix)."""
    upload = media.get_upload(upload_id, current_user)
    if upload.lesson_id is not None:
        target = courses.get_lesson(upload.lesson_id).course
    else:
        target = courses.get_course(upload.course_id)
    access.require(access.may_edit_course(current_user, target))
    return upload


@bp.get("/uploads/<upload_id>")
@access.lecturer
def upload_status(upload_id: str):
    """Where an upload stands (to resume after a dropped connection).
    ---
    get:
      summary: Offset reached by an upload
      parameters: [{in: path, name: upload_id, required: true, schema: {type: string}}]
      responses:
        200: {content: {application/json: {schema: {$ref: '#/components/schemas/Upload'}}}}
        403: {$ref: '#/components/responses/Error'}  # not a lecturer
        404: {$ref: '#/components/responses/Error'}
    """
    return jsonify(upload_json(_editable_upload(upload_id)))


@bp.put("/uploads/<upload_id>")
@access.lecturer
def upload_chunk(upload_id: str):
    """Send one chunk at ?offset=N.
    ---
    put:
      summary: Append a chunk (raw bytes) at the given offset
      parameters:
        - {in: path, name: upload_id, required: true, schema: {type: string}}
        - {in: query, name: offset, required: true, schema: {type: integer, minimum: 0}}
      requestBody:
        required: true
        content: {application/octet-stream: {schema: {type: string, format: binary}}}
      responses:
        200: {content: {application/json: {schema: {$ref: '#/components/schemas/Upload'}}}}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}  # not a lecturer
        404: {$ref: '#/components/responses/Error'}
        409: {$ref: '#/components/responses/Error'}
    """
    upload = _editable_upload(upload_id)
    offset = request.args.get("offset", "")
    if not offset.isdigit():
        raise Invalid(_("The chunk's offset is missing."))
    data = request.get_data(cache=False)
    if len(data) > media.CHUNK_BYTES:
        raise Invalid(_("A chunk may have at most %(n)d bytes.", n=media.CHUNK_BYTES))
    media.write_chunk(upload, int(offset), data)
    db.session.commit()
    return jsonify(upload_json(upload))


@bp.post("/uploads/<upload_id>/complete")
@access.lecturer
def complete_upload(upload_id: str):
    """Finish an upload: the file is checked and handed to the pipeline.
    ---
    post:
      summary: Complete an upload
      parameters: [{in: path, name: upload_id, required: true, schema: {type: string}}]
      responses:
        200: {content: {application/json: {schema: {type: object}}}}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}  # not a lecturer
        404: {$ref: '#/components/responses/Error'}
    """
    upload = _editable_upload(upload_id)
    try:
        result = media.complete_upload(upload, current_user)
    except Invalid:
        db.session.rollback()
        db.session.delete(db.session.merge(upload))
        db.session.commit()
        raise
    db.session.commit()
    return jsonify(result)


@bp.get("/jobs/<int:job_id>")
@access.signed_in
def job_status(job_id: int):
    """Progress of a background job I started.
    ---
    get:
      summary: State and progress of a job
      parameters: [{in: path, name: job_id, required: true, schema: {type: integer}}]
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: {type: integer}
                  state: {type: string}
                  progress: {type: integer}
                  message: {type: string, nullable: true}
        404: {$ref: '#/components/responses/Error'}
    """
    job = db.session.get(Job, job_id)
    if job is None or not _may_follow(job):
        raise NotFound()
    return jsonify(id=job.id, state=job.state, progress=job.progress, message=job.message)


def _may_follow(job: Job) -> bool:
    """Its creator and admins follow a job; so do the editors of the lesson a transcode is for."""
    if job.created_by_id == current_user.id or current_user.has_role("admin"):
        return True
    if job.kind == "media.transcode":
        asset = db.session.get(MediaAsset, job.args.get("asset_id") or 0)
        lesson = db.session.get(Lesson, asset.lesson_id) if asset and asset.lesson_id else None
        return lesson is not None and access.may_edit_course(current_user, lesson.course)
    return False


@bp.patch("/courses/<int:course_id>")
@access.lecturer
def patch_course(course_id: int):
    """Change a course's title, description or tags.
    ---
    patch:
      summary: Edit a course (owner, co-lecturers, admins)
      parameters: [{in: path, name: course_id, required: true, schema: {type: integer}}]
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                title: {type: string}
                description: {type: string}
                tags: {type: array, items: {type: string}}
                audience: {type: string, enum: [all, plan]}
      responses:
        200: {content: {application/json: {schema: {type: object}}}}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
    """
    course = courses.get_course(course_id)
    access.require(access.may_edit_course(current_user, course))
    data = json_body()
    title = data.get("title", course.title)
    description = data.get("description", course.description)
    tags = data.get("tags", course.tags)
    audience = data.get("audience", course.audience)
    if not isinstance(title, str) or not isinstance(description, str) or not isinstance(tags, list):
        raise Invalid(_("title and description are text; tags is a list."))
    courses.update_course(course, title, description, tags, audience if isinstance(audience, str) else "")
    db.session.commit()
    return jsonify(
        id=course.id,
        title=course.title,
        description=course.description,
        tags=course.tags,
        audience=course.audience,
    )
