"""One error hierarchy for services, mapped once to HTML pages or JSON {"error": {code, message}}."""

import errno
import logging

from flask import jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class SchoolError(Exception):
    """A refusal with a message for the user; status is the HTTP status it maps to."""

    status = 400
    code = "invalid"

    def __init__(self, message: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class Invalid(SchoolError):
    status = 400
    code = "invalid"


class Unauthorized(SchoolError):
    status = 401
    code = "unauthorized"


class Forbidden(SchoolError):
    status = 403
    code = "forbidden"


class NotFound(SchoolError):
    status = 404
    code = "not_found"


class Conflict(SchoolError):
    status = 409
    code = "conflict"


class DiskFull(SchoolError):
    """The server's storage is full: nothing was lost, the same step can be retried later.

    A plain Exception to the job runner, so a job failing with it is retried, not rejected.
    """

    status = 507
    code = "disk_full"


def commit_or_explain(action):
    """Run a form's service call: commit and return (True, its result), or, when the service
    refuses with Invalid, roll back, flash its reason and return (False, None) — the view then
    shows the form again with status 400 and nothing half-saved."""
    from flask import flash

    from school import db

    try:
        result = action()
    except Invalid as error:
        db.session.rollback()
        flash(error.message, "error")
        return False, None
    db.session.commit()
    return True, result


class Throttled(SchoolError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# Default words per status, in the user's language.
MESSAGES = {
    400: _l("The request could not be understood. Please check what you entered and try again."),
    401: _l("Please sign in first."),
    403: _l("You do not have permission to do this."),
    404: _l("The page you are looking for does not exist or has been removed."),
    405: _l("This action is not allowed here."),
    409: _l("This was changed by someone else in the meantime. Please reload and try again."),
    413: _l("What you sent is too large."),
    429: _l("Too many attempts. Please try again later."),
    507: _l("The server's storage is full. Nothing you sent was lost; please try again later."),
    500: _l("Something went wrong on our side. It has been logged; please try again later."),
}
TITLES = {
    400: _l("Bad request"),
    401: _l("Sign-in needed"),
    403: _l("No permission"),
    404: _l("Page not found"),
    405: _l("Not allowed"),
    409: _l("Conflict"),
    413: _l("Too large"),
    429: _l("Too many attempts"),
    507: _l("Storage full"),
    500: _l("Server error"),
}


def wants_json() -> bool:
    """API paths and JSON callers get JSON errors; pages get an HTML page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes["text/html"]


def respond(status: int, code: str, message: str | None, headers: dict | None = None):
    """Render an error as JSON or as a Chinese/English page."""
    text = str(message or MESSAGES.get(status, MESSAGES[500]))
    if wants_json():
        body = jsonify(error={"code": code, "message": text})
    else:
        title = str(TITLES.get(status, TITLES[500]))
        body = render_template("errors/error.html", status=status, title=title, message=text)
    response = make_response(body, status)
    response.headers.update(headers or {})
    return response


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def register(app) -> None:
    """Map SchoolError, CSRF failures, HTTP errors and crashes to one response shape."""

    @app.errorhandler(SchoolError)
    def on_school_error(error: SchoolError):
        headers = {}
        if isinstance(error, Throttled):
            headers["Retry-After"] = str(error.retry_after)
        return respond(error.status, error.code, error.message, headers)

    @app.errorhandler(CSRFError)
    def on_csrf_error(error: CSRFError):
        message = _("Your form expired or was sent from another page. Please reload and try again.")
        return respond(400, "csrf_failed", message)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException):
        status = error.code or 500
        headers = dict(error.get_headers()) if status == 405 else {}
        headers.pop("Content-Type", None)
        return respond(status, HTTP_CODES.get(status, "error"), None, headers)

    @app.errorhandler(Exception)
    def on_crash(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            # Any write of a request hitting a full disk: say so, instead of "something went wrong".
            return respond(507, "disk_full", None)
        return respond(500, "server_error", None)
