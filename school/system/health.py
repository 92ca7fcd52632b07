"""Readiness checks for /readyz: database, job queue and search index, each quick and bounded.

Answers name what failed and why in a few words, never a URL or a password: the endpoint is
public, so load balancers and monitors can call it without credentials.
"""

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from school import db

TIMEOUT_SECONDS = 2


def _reason(error: Exception, secrets: tuple[str, ...] = ()) -> str:
    text = f"{type(error).__name__}: {error}".splitlines()[0][:200]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def check_database() -> dict:
    """SELECT 1 on the site's database, with a statement timeout on PostgreSQL."""
    engine = db.engine
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET LOCAL statement_timeout = {TIMEOUT_SECONDS * 1000}"))
            conn.execute(sa.text("SELECT 1"))
            conn.rollback()
    except Exception as error:
        return {"ok": False, "reason": _reason(error, (str(engine.url.password or ""),))}
    return {"ok": True, "kind": engine.dialect.name}


def check_queue(url: str) -> dict:
    """The Huey storage answers: Redis PING, or the SQLite queue file opens and has its tables."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        password = redis.connection.parse_url(url).get("password") or ""
        try:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
            )
            try:
                client.ping()
            finally:
                client.close()
        except Exception as error:
            return {"ok": False, "kind": "redis", "reason": _reason(error, (password,))}
        return {"ok": True, "kind": "redis"}
    path = Path(url[len("sqlite:///") :])
    if not path.is_file():
        return {"ok": False, "kind": "sqlite", "reason": "queue file missing"}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_SECONDS)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as error:
        return {"ok": False, "kind": "sqlite", "reason": _reason(error)}
    return {"ok": True, "kind": "sqlite"}


def check_index() -> dict:
    """The live search index exists in this code's schema version and opens."""
    from school.search import index

    try:
        if not index.exists():
            return {"ok": False, "reason": "rebuilding"}
        index.open_index().close()
    except Exception as error:
        return {"ok": False, "reason": _reason(error)}
    return {"ok": True}


# Without these nothing works; without the index only search does (it says it is being rebuilt),
# so a missing index must not take every web machine out of the load balancer during a rebuild.
REQUIRED = ("database", "queue")


def readiness(queue_url: str) -> tuple[bool, dict]:
    """Every check with its duration; ready when the database and the queue answer."""
    checks: dict[str, Callable[[], dict]] = {
        "database": check_database,
        "queue": lambda: check_queue(queue_url),
        "index": check_index,
    }
    results = {}
    for name, check in checks.items():
        started = time.perf_counter()
        result = check()
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    return all(results[name]["ok"] for name in REQUIRED), results
