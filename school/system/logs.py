"""Structured logs: one JSON object per line (or readable text), every record tagged with the
request id (in the web app) or the job id (in the worker), and one line per request.

The request id comes from a proxy's `X-Request-ID` when it looks sane, else a new uuid4; it is
sent back in `X-Request-ID` and shown on error pages, so a user can quote it and an admin can find
every line of that request. Logs go to stderr (stdout stays for commands' output), where gunicorn,
systemd/journald or a container runtime collect them.
"""

import contextvars
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Monitors call these every few seconds: their lines are DEBUG, not INFO.
QUIET_ENDPOINTS = {"system.healthz", "system.readyz"}
request_log = logging.getLogger("school.request")
job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)


def request_id(header: str | None) -> str:
    """The incoming id when it is short and plain (no newline or markup to inject), else a new one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def context() -> dict:
    """Fields of the request or job being handled in this thread (empty outside both)."""
    fields = {}
    if has_request_context() and "request_id" in g:
        fields.update(
            request_id=g.request_id,
            method=request.method,
            path=request.path,
            remote_addr=request.remote_addr,
        )
        user = g.get("_login_user")  # only when Flask-Login already loaded it: no query in logging
        if user is not None and getattr(user, "is_authenticated", False):
            fields["user_id"] = user.id
    current_job = job_id.get()
    if current_job is not None:
        fields["job_id"] = current_job
    return fields


class ContextFilter(logging.Filter):
    """Adds the request's or job's fields to records that do not carry them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in context().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_factory_installed = False


def _install_record_factory() -> None:
    # The ids go on every record at creation, so any handler (pytest's, a library's) sees them;
    # the other fields are added by our handler's filter, leaving `extra=` free for them.
    global _factory_installed
    if _factory_installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        fields = context()
        for key in ("request_id", "job_id"):
            if key in fields:
                setattr(record, key, fields[key])
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class _JsonLines(JsonFormatter):
    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.update({k: log_data.pop(k) for k in list(log_data) if k not in ("time",)})  # time first


def formatter(kind: str) -> logging.Formatter:
    """JSON lines (time, level, logger, message, then the record's fields) or one text line."""
    if kind == "json":
        return _JsonLines(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            json_ensure_ascii=False,
        )
    return logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", defaults={"request_id": "-"}
    )


def resolve_format(kind: str, stream=None) -> str:
    """ "auto" means text on a terminal (a developer) and JSON anywhere else (collected)."""
    if kind == "auto":
        stream = stream or sys.stderr
        return "text" if hasattr(stream, "isatty") and stream.isatty() else "json"
    return kind


def configure(kind: str, level: str) -> None:
    """Send the root logger's records to stderr in the chosen format (replacing our earlier handler)."""
    _install_record_factory()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "school", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.school = True
    handler.setFormatter(formatter(resolve_format(kind, sys.stderr)))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin at import


def init_app(app: Flask) -> None:
    """Configure logging and give every request an id, a response header and one log line."""
    configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])

    @app.before_request
    def start_request():
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        if "request_id" not in g:
            return response
        response.headers["X-Request-ID"] = g.request_id
        duration = round((time.perf_counter() - g.request_started) * 1000, 1)
        level = logging.DEBUG if request.endpoint in QUIET_ENDPOINTS else logging.INFO
        request_log.log(
            level,
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            duration,
            extra={"status": response.status_code, "duration_ms": duration},
        )
        return response


def on_job_start(task) -> None:
    """Huey pre-execute hook: tag the worker thread's records with the job id."""
    if task.name == "run_job" and task.args:
        job_id.set(task.args[0])


def on_job_end(task, _value, _exception) -> None:
    job_id.set(None)
