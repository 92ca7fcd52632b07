"""Every route declares who may use it; a route without a rule fails this test and is refused."""

import re

from school import access, create_app
from tests.conftest import DATABASE_URL


def undeclared_routes(app) -> list[str]:
    """Endpoints in the url_map that have no access rule."""
    with app.app_context():
        return sorted(
            rule.endpoint for rule in app.url_map.iter_rules() if access.rule_for(rule.endpoint) is None
        )


def test_every_route_declares_an_access_rule(app):
    assert undeclared_routes(app) == []


def test_a_route_without_a_rule_is_found_and_refused():
    other = create_app({"DATABASE_URL": DATABASE_URL, "TESTING": True})

    @other.get("/forgotten")
    def forgotten():
        return "secret"

    assert undeclared_routes(other) == ["forgotten"]
    assert other.test_client().get("/forgotten").status_code == 403


def concrete(rule) -> str:
    return re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)


def test_anonymous_visitors_reach_only_public_routes(app, client):
    for rule in app.url_map.iter_rules():
        with app.app_context():
            declared = access.rule_for(rule.endpoint)
        if declared == access.PUBLIC or "GET" not in rule.methods:
            continue
        response = client.get(concrete(rule))
        if rule.rule.startswith("/api/"):
            assert response.status_code == 401, rule.rule
            assert response.get_json()["error"]["code"] == "unauthorized"
        else:
            assert response.status_code == 302, rule.rule
            assert response.headers["Location"].startswith("/sign-in"), rule.rule


def test_state_changing_routes_refuse_anonymous_posts(app, client):
    for rule in app.url_map.iter_rules():
        with app.app_context():
            declared = access.rule_for(rule.endpoint)
        for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            response = client.open(concrete(rule), method=method)
            assert response.status_code in (302, 400, 401), (method, rule.rule)
            assert response.status_code != 200, (method, rule.rule, declared)
