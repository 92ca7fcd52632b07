"""The audit log table, and the triggers that make it append-only in the database itself.

The triggers refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) whatever the code does, so a
bug, a stray script or an injected statement cannot rewrite history through the application's
connection. The DDL is kept here as plain strings so the Alembic migration runs the same text as
`metadata.create_all` (tests).
"""

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

TABLE = "audit_entry"
REFUSAL = "audit_entry is append-only"

# SQLite: one statement per DDL string (the driver runs one at a time).
SQLITE_TRIGGERS = {
    "audit_entry_no_update": (
        f"CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    ),
    "audit_entry_no_delete": (
        f"CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    ),
}

# PostgreSQL: row triggers cannot see TRUNCATE, so a statement trigger refuses that too.
POSTGRESQL_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'restrict_violation'; END $$"
)
POSTGRESQL_TRIGGERS = {
    "audit_entry_no_change": (
        f"CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
    ),
    "audit_entry_no_truncate": (
        f"CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON {TABLE} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
    ),
}


def append_only_ddl(dialect: str) -> list[str]:
    """The statements that make audit_entry append-only on this dialect (for create_all and Alembic)."""
    if dialect == "postgresql":
        return [POSTGRESQL_FUNCTION, *POSTGRESQL_TRIGGERS.values()]
    if dialect == "sqlite":
        return list(SQLITE_TRIGGERS.values())
    raise ValueError(f"no append-only triggers for {dialect}")


def drop_append_only_ddl(dialect: str) -> list[str]:
    """The statements that undo append_only_ddl (Alembic downgrade)."""
    if dialect == "postgresql":
        drops = [f"DROP TRIGGER IF EXISTS {name} ON {TABLE}" for name in POSTGRESQL_TRIGGERS]
        return [*drops, "DROP FUNCTION IF EXISTS audit_entry_append_only()"]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


@contextlib.contextmanager
def append_only_lifted(conn: sa.Connection) -> Iterator[None]:
    """Within one transaction on conn, let audit_entry be emptied, then make it append-only again.

    For the test suite's per-test cleanup (and a deliberate retention purge by an operator); never
    for application code. Why not a trigger that lets some deletes through: any condition the
    application's connection can satisfy is one a buggy or hostile statement can satisfy too.
    SQLite has no way to disable a trigger, so they are dropped and created again; PostgreSQL
    disables them (ALTER TABLE is transactional there, like the DROP/CREATE on SQLite).
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        for name in POSTGRESQL_TRIGGERS:
            conn.exec_driver_sql(f"ALTER TABLE {TABLE} DISABLE TRIGGER {name}")
        yield
        for name in POSTGRESQL_TRIGGERS:
            conn.exec_driver_sql(f"ALTER TABLE {TABLE} ENABLE TRIGGER {name}")
        return
    for statement in drop_append_only_ddl(dialect):
        conn.exec_driver_sql(statement)
    yield
    for statement in append_only_ddl(dialect):
        conn.exec_driver_sql(statement)


class AuditEntry(Base):
    """One organizer or admin action: who (and their name then), when, what, on which org, from where.

    `org_id` is the organisation the action concerns; organizers see the entries of their subtree,
    entries without an org (site-wide settings) only admins. `details` is JSON: before/after of
    changed fields, counts; never passwords, tokens or other secrets.
    """

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # UTC, naive
    # No ondelete: users and orgs are deactivated/closed, never deleted; a delete that would
    # orphan history is refused by the foreign key (a SET NULL would be an UPDATE, refused anyway).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))  # None: CLI/system
    actor_name: Mapped[str] = mapped_column(sa.String(64), default="")  # as it was then
    action: Mapped[str] = mapped_column(sa.String(40))
    org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id"))
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[int | None]
    target_label: Mapped[str] = mapped_column(sa.String(120), default="")  # e.g. the member's name then
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    address: Mapped[str | None] = mapped_column(sa.String(45))  # client IP (IPv6 fits in 45)
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))

    actor = orm.relationship("User", lazy="joined")
    org = orm.relationship("Org", lazy="joined")

    __table_args__ = (
        sa.Index("ix_audit_entry_org_created", "org_id", "created_at"),
        sa.Index("ix_audit_entry_actor_created", "actor_id", "created_at"),
        sa.Index("ix_audit_entry_created", "created_at"),
    )

    @property
    def data(self) -> dict:
        try:
            value = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


for _dialect in ("sqlite", "postgresql"):
    for _statement in append_only_ddl(_dialect):
        sa.event.listen(AuditEntry.__table__, "after_create", sa.DDL(_statement).execute_if(dialect=_dialect))
