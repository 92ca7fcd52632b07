"""Schemathesis against /api/v1/openapi.json, as a member, an organizer and a lecturer (bearer tokens):
generated requests for every operation never get a 5xx, and every answer matches the document."""

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from school import db
from school.accounts import service as accounts
from tests.factories import make_lesson, make_org, make_user

# Generated examples per operation and role: enough to reach each operation's branches (missing
# and odd fields, unknown ids), small enough that the whole file stays under a minute.
EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Left out on purpose:
EXCLUDED = {
    # Sending a chunk needs an upload created first (its id is a random server secret) and a body of
    # raw bytes at the right offset; random ids only ever reach the 404 that GET .../uploads/{id}
    # already covers. The chunk protocol has its own tests (tests/media/test_uploads.py).
    ("PUT", "/api/v1/uploads/{upload_id}"),
    # Signing out or in with the session cookie is about cookies, not bearer tokens (tests/api).
    ("DELETE", "/api/v1/session"),
}


@pytest.fixture()
def tokens(app):
    with app.app_context():
        branch = make_org("支部", "branch", make_org("街道", "street"))
        member = make_user(branch, phone="13800000001")
        organizer = make_user(branch, roles=[("organizer", branch.id), ("member", None)], phone="13800000002")
        lecturer = make_user(roles=[("lecturer", None)], phone="13800000003")
        make_lesson(owner=lecturer)
        raw = {}
        for name, user in (("member", member), ("organizer", organizer), ("lecturer", lecturer)):
            raw[name] = accounts.create_token(db.session.merge(user), "schemathesis")[1]
        db.session.commit()
        return raw


@pytest.mark.parametrize("role", ["member", "organizer", "lecturer"])
def test_api_answers_match_the_openapi_document(app, tokens, role):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    started = time.monotonic()
    operations, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy()
            | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
        )
        def call(case):
            response = case.call(headers=headers)
            # Invalid input (negative mode) may get any documented 4xx; it must never crash.
            positive = case.meta is None or case.meta.generation.mode.is_positive
            case.validate_response(
                response, checks=CHECKS if positive else [not_a_server_error], headers=headers
            )

        try:
            call()
        except (
            Exception,
            BaseExceptionGroup,
        ) as error:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:600]}")
    assert failures == [], "\n\n".join(failures)
    assert operations >= 12
    assert time.monotonic() - started < 60


def test_ids_beyond_the_32_bit_range_are_not_found_not_a_crash(app, client, tokens):
    """Found by schemathesis: a huge id overflowed SQLite's INTEGER (a 500)."""
    headers = {"Authorization": f"Bearer {tokens['lecturer']}"}
    huge = 2**64
    for url in (f"/api/v1/orgs/{huge}", f"/api/v1/jobs/{huge}", f"/courses/{huge}", f"/orgs/{2**31}"):
        assert client.get(url, headers=headers).status_code == 404, url
    response = client.post(
        "/api/v1/uploads",
        json={"purpose": "cover", "filename": "a.png", "size": 1, "course_id": huge},
        headers=headers,
    )
    assert response.status_code == 404
