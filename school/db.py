"""Database: declarative Base with stable constraint names, one engine, one scoped session.

SQLite is hardened on every connection (WAL, busy timeout, foreign keys) and write transactions
begin with BEGIN IMMEDIATE, so concurrent writers queue on the lock instead of failing halfway.
"""

import contextlib
import contextvars
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event, orm

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(orm.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Naive UTC now: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


session = orm.scoped_session(orm.sessionmaker(expire_on_commit=False))
engine: sa.Engine | None = None

# Whether the next transaction may write. Reads (GET pages) begin DEFERRED so they never wait
# for the write lock; everything else begins IMMEDIATE.
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=True)


def set_read_only(read_only: bool) -> None:
    """Declare whether the current request only reads (chooses BEGIN vs BEGIN IMMEDIATE)."""
    _write_intent.set(not read_only)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Run a block that writes inside a read-only request with an IMMEDIATE transaction."""
    session.commit()
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def engine_url(url: str) -> str:
    """Map plain postgresql:// URLs to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> sa.Engine:
    """Create the engine for a URL, with SQLite hardening where it applies."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        new = sa.create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})
        _harden_sqlite(new)
    else:
        new = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return new


def _harden_sqlite(target: sa.Engine) -> None:
    # The pysqlite recipe from SQLAlchemy's docs: take transaction control away from the driver
    # so that our BEGIN is the one SQLite sees.
    @event.listens_for(target, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    path = target.url.database
    lock_path = f"{path}.writers" if path and path != ":memory:" else None

    @event.listens_for(target, "connect")
    def open_writer_lock(_dbapi_connection, record):
        if lock_path:
            record.info["writer_lock"] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(target, "close")
    def close_writer_lock(_dbapi_connection, record):
        fd = record.info.pop("writer_lock", None)
        if fd is not None:
            os.close(fd)

    @event.listens_for(target, "begin")
    def on_begin(connection):
        if not _write_intent.get():
            connection.exec_driver_sql("BEGIN")
            return
        fd = connection.connection.info.get("writer_lock")
        if fd is not None:
            _take_writer_lock(fd)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            raise

    # SQLite makes a writer that finds the database locked sleep and retry (1, 2, 5, 10… ms);
    # under many small writes from several processes most of the time goes in those sleeps.
    # Writers of this engine first queue on a file lock, which the kernel hands over the moment
    # it is released, and so reach BEGIN IMMEDIATE one at a time. Released right after the
    # transaction ends (the commit/rollback events run before the driver's, so we end it here).
    def _end(connection, finish):
        fd = connection.connection.info.get("writer_lock")
        if fd is None:
            return
        finish(connection.connection.dbapi_connection)
        fcntl.flock(fd, fcntl.LOCK_UN)

    @event.listens_for(target, "commit")
    def on_commit(connection):
        _end(connection, lambda raw: raw.commit())

    @event.listens_for(target, "rollback")
    def on_rollback(connection):
        _end(connection, lambda raw: raw.rollback())


def _take_writer_lock(fd: int, seconds: float = 10.0) -> None:
    """Exclusive flock on fd, waiting up to `seconds` (then "database is locked", as SQLite)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    # A blocking flock cannot time out (and an alarm is not thread-safe): poll with sleeps far
    # finer than SQLite's busy handler.
    deadline = time.monotonic() + seconds
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("database is locked") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def configure(url: str) -> sa.Engine:
    """Point the module's engine and session at a database URL (once per process or test)."""
    global engine
    if engine is not None:
        session.remove()
        engine.dispose()
    engine = make_engine(url)
    session.configure(bind=engine)
    return engine


def _after_fork() -> None:
    # A forked gunicorn or worker child must not reuse the parent's sockets or SQLite handles.
    if engine is not None:
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork)


def init_app(app) -> None:
    """Bind the engine to the app's DATABASE_URL and end each request's session."""
    configure(app.config["DATABASE_URL"])

    @app.teardown_appcontext
    def end_session(exc):
        if exc is not None:
            session.rollback()
        session.remove()


def insert_ignoring_conflicts(table, values: dict) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())
