"""Every request has an id: in the response header, in each of its log lines, on error pages."""

import io
import json
import logging
import re

from school.system import logs
from tests.conftest import sign_in
from tests.factories import make_user

ID = re.compile(r"[0-9a-f]{32}")


def request_lines(caplog, rid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "request_id", None) == rid]


def test_log_lines_of_a_request_carry_the_id_of_its_response_header(client, caplog):
    make_user(phone="13900000001")
    caplog.set_level(logging.INFO)
    response = sign_in(client, "13900000001")
    rid = response.headers["X-Request-ID"]
    assert ID.fullmatch(rid)
    line = [r for r in request_lines(caplog, rid) if r.name == "school.request"]
    assert len(line) == 1
    assert line[0].status == 302 and line[0].method == "POST" and line[0].path == "/sign-in"
    assert line[0].duration_ms >= 0


def test_every_record_during_the_request_has_the_id(client, caplog, monkeypatch):
    from school.system import health

    def readiness(_queue_url):
        logging.getLogger("school.somewhere").warning("inside the view")
        return True, {}

    monkeypatch.setattr(health, "readiness", readiness)
    caplog.set_level(logging.DEBUG)
    response = client.get("/readyz", headers={"X-Request-ID": "edge-42.a_b"})
    assert response.headers["X-Request-ID"] == "edge-42.a_b"
    records = request_lines(caplog, "edge-42.a_b")
    assert [r.name for r in records] == ["school.somewhere", "school.request"]
    assert all(not hasattr(r, "request_id") for r in caplog.records if r not in records)


def test_a_hostile_request_id_is_replaced(client, caplog):
    caplog.set_level(logging.INFO)
    for hostile in ("abc\r\nX-Evil: 1", "a" * 1000, "<script>", ""):
        # Raw in the environ: a proxy may pass what the test client's Headers would refuse.
        response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
        rid = response.headers["X-Request-ID"]
        assert ID.fullmatch(rid), hostile
    assert client.get("/healthz", headers={"X-Request-ID": "a" * 64}).headers["X-Request-ID"] == "a" * 64


def test_error_page_shows_the_request_id(client):
    response = client.get("/no-such-page", headers={"X-Request-ID": "quote-me-123"})
    assert response.status_code == 404
    assert "quote-me-123" in response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] == "quote-me-123"


def test_json_lines_have_the_documented_fields(app, client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.ContextFilter())
    logging.getLogger("school.request").addHandler(handler)
    try:
        client.get("/healthz", headers={"X-Request-ID": "json-1"})
        logging.getLogger("school.request").setLevel(logging.DEBUG)
        client.get("/healthz", headers={"X-Request-ID": "json-2"})
    finally:
        logging.getLogger("school.request").removeHandler(handler)
        logging.getLogger("school.request").setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["json-2"]  # health checks are DEBUG
    line = lines[0]
    assert {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
    } <= set(line)
    assert line["level"] == "DEBUG" and line["logger"] == "school.request" and line["status"] == 200
    assert line["path"] == "/healthz" and "remote_addr" in line


def test_signed_in_requests_log_the_user_id(client, caplog):
    user = make_user(phone="13900000002")
    sign_in(client, "13900000002")
    caplog.set_level(logging.INFO)
    rid = client.get("/").headers["X-Request-ID"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("school.request")
    logger.addHandler(handler)
    try:
        rid = client.get("/").headers["X-Request-ID"]
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == rid and line["user_id"] == user.id


def test_records_of_a_job_run_by_the_worker_carry_the_job_id(app, caplog):
    from school import db
    from school.extensions import huey
    from school.jobs import service
    from school.jobs.tasks import run_job

    @service.handler("test.logs")
    def noisy(job, progress):
        logging.getLogger("school.test").warning("working on it")
        return {}

    try:
        with app.app_context():
            job = service.enqueue("test.logs")
            db.session.info.pop("jobs_to_send", None)  # run below by hand, as the worker would
            db.session.commit()
        caplog.set_level(logging.INFO)
        with app.app_context():  # the worker's app (school.worker.get_app)
            huey.execute(run_job.s(job.id))  # Huey's worker path, with its pre/post-execute hooks
    finally:
        service.HANDLERS.pop("test.logs")
    logging.getLogger("school.test").warning("after the job")
    tagged = [(r.getMessage(), getattr(r, "job_id", None)) for r in caplog.records if r.name == "school.test"]
    assert tagged == [("working on it", job.id), ("after the job", None)]


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert logs.resolve_format("auto", Tty()) == "text"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"
