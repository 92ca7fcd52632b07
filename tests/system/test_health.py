"""/healthz answers while the process lives; /readyz names the dependency that is not ready."""

import pytest
import sqlalchemy as sa

from school import create_app, db
from school.search import index


@pytest.fixture()
def second(app, tmp_path):
    """Makes another app on the same database with its own queue URL and index folder."""

    def make(queue_url: str, with_index: bool = True):
        other = create_app(
            {
                "DATABASE_URL": app.config["DATABASE_URL"],
                "QUEUE_URL": queue_url,
                "INDEX_DIR": str(tmp_path / "index"),
                "TESTING": True,
            }
        )
        if with_index:
            with other.app_context():
                path, _ix = index.new_generation()
                index.publish(path)
        return other

    yield make
    db.session.remove()
    db.configure(app.config["DATABASE_URL"])


def test_healthz_does_not_depend_on_the_database(client, monkeypatch):
    monkeypatch.setattr(db, "engine", sa.create_engine("sqlite:////nonexistent-folder/x.db"))
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"]["ok"] is False


def test_ready_when_database_queue_and_index_answer(app, second):
    other = second(app.config["QUEUE_URL"])
    answer = other.test_client().get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "queue": True,
        "index": True,
    }


def test_queue_on_a_closed_port_is_not_ready_and_its_password_is_not_shown(app, second):
    other = second("redis://:s3cret-word@127.0.0.1:1/0")
    answer = other.test_client().get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["queue"]["ok"] is False and body["checks"]["queue"]["kind"] == "redis"
    assert body["checks"]["database"]["ok"] is True and body["checks"]["index"]["ok"] is True
    assert "s3cret-word" not in answer.get_data(as_text=True)


def test_missing_sqlite_queue_file_is_not_ready(app, second, tmp_path):
    other = second(f"sqlite:///{tmp_path / 'gone' / 'queue.db'}")
    body = other.test_client().get("/readyz").get_json()
    assert body["checks"]["queue"] == {
        "ok": False,
        "kind": "sqlite",
        "reason": "queue file missing",
        "ms": body["checks"]["queue"]["ms"],
    }


def test_missing_index_leaves_the_site_ready_but_degraded(app, second):
    """Pages work without the index (search says it is being rebuilt): a rebuild must not take every
    web machine out of the load balancer."""
    other = second(app.config["QUEUE_URL"], with_index=False)
    answer = other.test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "degraded"
    assert answer.get_json()["checks"]["index"] == {
        "ok": False,
        "reason": "rebuilding",
        "ms": pytest.approx(0, abs=1000),
    }


def test_health_answers_are_not_cached(client):
    assert client.get("/readyz").headers["Cache-Control"] == "no-store"
