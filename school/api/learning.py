"""Study progress over JSON: viewing sessions and their heartbeats (used by the lesson player)."""

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.api import bp
from school.courses import service as courses
from school.errors import Forbidden, Invalid
from school.learning import service as learning


def session_secret_auth(view):
    """Mark a call whose body carries a viewing-session secret instead of a CSRF token.

    Why: beats go out by navigator.sendBeacon when the page hides, which cannot set headers, and
    a long video can outlive a CSRF token; the 128-bit session id that only the member's own page
    was given proves the same thing a CSRF token does (a forged cross-site request cannot know
    it). Cross-site senders are refused by their Origin / Sec-Fetch-Site headers as well.
    """
    view.csrf_by_session_secret = True
    return view


def refuse_cross_site() -> None:
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden(code="cross_site")
    origin = request.headers.get("Origin")
    if origin and origin != request.host_url.rstrip("/"):
        raise Forbidden(code="cross_site")


def credit_json(lesson) -> dict:
    return {"credit_hours": float(lesson.credit_hours)}


@bp.post("/lessons/<int:lesson_id>/viewings")
@access.signed_in
def start_viewing(lesson_id: int):
    """Open a viewing session on a lesson (the player does this on page load).
    ---
    post:
      summary: Start a viewing session; a session open on another device stops being accepted
      parameters:
        - {name: lesson_id, in: path, required: true, schema: {type: integer}}
      responses:
        201:
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Viewing'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
    """
    lesson = courses.get_lesson(lesson_id)
    viewing, progress = learning.start_session(current_user, lesson)
    db.session.commit()
    body = {
        "session_id": viewing.id,
        "kind": viewing.kind,
        "duration": learning.media_duration(lesson),
        "beat_seconds": 12,
        **credit_json(lesson),
        **learning.progress_json(progress, lesson),
    }
    return jsonify(body), 201


@bp.post("/viewings/<session_id>/beats")
@access.signed_in
@session_secret_auth
def beat(session_id: str):
    """Report the media interval just played (or seconds of reading).
    ---
    post:
      summary: A heartbeat of a viewing session; idempotent by (session, seq)
      description: |
        Sent every 10–15 s while playing and on pause, seek, end and page hide. Accepted only
        when plausible against wall-clock time; a `seq` already received answers 409 stale_seq
        and changes nothing. A session taken over by another device keeps the play time it had
        (its queued beats count) and then answers 409 superseded; `superseded` in the answer
        tells the page early.
        The session id in the path stands in for a CSRF token (see the code for why).
      parameters:
        - {name: session_id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [seq]
              properties:
                seq: {type: integer, minimum: 1}
                from: {type: number, minimum: 0}
                to: {type: number, minimum: 0}
                rate: {type: number, minimum: 0.5, maximum: 2}
                read: {type: number, minimum: 0, maximum: 3600}
      responses:
        200:
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Progress'}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
        409: {$ref: '#/components/responses/Error'}
    """
    refuse_cross_site()
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise Invalid(_("The request body must be a JSON object."))
    progress, superseded = learning.record_beat(current_user, session_id, data)
    body = {**progress, "superseded": superseded}
    db.session.commit()
    return jsonify(body)


@bp.post("/lessons/<int:lesson_id>/finished")
@access.signed_in
def confirm_finished(lesson_id: int):
    """Confirm "我已学完" on a lesson completed by confirmation.
    ---
    post:
      summary: Confirm having finished a lesson whose completion is by confirmation
      parameters:
        - {name: lesson_id, in: path, required: true, schema: {type: integer}}
      responses:
        200:
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Progress'}
        400: {$ref: '#/components/responses/Error'}
        403: {$ref: '#/components/responses/Error'}
        404: {$ref: '#/components/responses/Error'}
    """
    lesson = courses.get_lesson(lesson_id)
    progress = learning.confirm_finished(current_user, lesson)
    body = learning.progress_json(progress, lesson)
    db.session.commit()
    return jsonify(body)
