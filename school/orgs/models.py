"""The organisation tree: city → district → street/park → branch, any depth.

Stored as an adjacency list (parent_id) plus a closure table (every ancestor/descendant pair with
its distance). Why a closure table rather than a materialized path: the subtree test is an exact
integer join on an indexed pair, the same on SQLite and PostgreSQL (a path prefix needs LIKE or a
string range whose order depends on the database collation), and "everything above me" (for
breadcrumbs and organizers above a node) is the same cheap lookup the other way round.
"""

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

KINDS = ("city", "district", "street", "park", "branch")


class Org(Base):
    __tablename__ = "org"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id"), index=True)
    # Stable external key (content files, imports); optional for orgs created in the UI.
    code: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(16))
    depth: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped["Org | None"] = orm.relationship(remote_side=[id])

    __table_args__ = (sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),)

    @property
    def is_branch(self) -> bool:
        return self.kind == "branch"


class OrgClosure(Base):
    """One row per (ancestor, descendant) pair, including each org with itself at distance 0."""

    __tablename__ = "org_closure"

    ancestor_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"), primary_key=True)
    descendant_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"), primary_key=True)
    distance: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.Index("ix_org_closure_descendant", "descendant_id", "ancestor_id"),)


EVENT_ACTIONS = ("created", "renamed", "moved", "closed", "reopened")


class OrgEvent(Base):
    """One change to an organisation, kept as history: what changed, by whom, when.

    `details` is JSON with the names as they were then (old/new name or parent), so the history
    still reads right after later renames.
    """

    __tablename__ = "org_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("org.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(16))
    details: Mapped[str] = mapped_column(sa.Text, default="{}")
    by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    by_user = orm.relationship("User", lazy="joined")

    __table_args__ = (
        sa.Index("ix_org_event_org_at", "org_id", "at"),
        sa.CheckConstraint(f"action IN {EVENT_ACTIONS!r}", name="action"),
    )

    @property
    def data(self) -> dict:
        try:
            value = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
