"""Writing the audit log (one call where an action is committed) and reading it within one's scope.

`record()` adds its row to the current session, so it commits or rolls back with the action it
describes: an entry never exists without its action, and a refused action leaves none.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from flask_babel import lazy_gettext as _l

from school import db
from school.accounts.models import User
from school.audit.models import AuditEntry
from school.db import Base

UA_MAX = 200
# Keys never written into details, whatever a caller passes (matched anywhere in the key).
SECRET_WORDS = ("password", "passwd", "token", "secret", "hash", "otp", "recovery")

# Action codes, with what the log page calls them.
ACTIONS = {
    "member.import": _l("Members imported"),
    "member.create": _l("Member added"),
    "member.update": _l("Member edited"),
    "member.transfer": _l("Member transferred"),
    "member.deactivate": _l("Member deactivated"),
    "member.reactivate": _l("Member reactivated"),
    "member.password_reset": _l("Password reset by organizer"),
    "role.grant": _l("Role granted"),
    "role.revoke": _l("Role revoked"),
    "org.create": _l("Organisation added"),
    "org.rename": _l("Organisation renamed"),
    "org.move": _l("Organisation moved"),
    "org.close": _l("Organisation closed"),
    "org.reopen": _l("Organisation reopened"),
    "credit.adjust": _l("Study hours adjusted"),
    "credit.reverse": _l("Study hours entry reversed"),
    "meeting.record": _l("Meeting recorded"),
    "meeting.update": _l("Meeting corrected"),
    "meeting.cancel": _l("Meeting cancelled"),
    "plan.create": _l("Study plan created"),
    "plan.update": _l("Study plan changed"),
    "plan.close": _l("Study plan closed"),
    "plan.reopen": _l("Study plan reopened"),
    "plan.delete": _l("Study plan deleted"),
    "export.download": _l("Report downloaded"),
    "export.request": _l("Report export requested"),
    "warning_rule.create": _l("Warning rule added"),
    "warning_rule.update": _l("Warning rule changed"),
    "two_factor.enable": _l("Two-factor sign-in turned on"),
    "two_factor.disable": _l("Two-factor sign-in turned off"),
    "two_factor.reset": _l("Two-factor sign-in reset"),
    "audit.export": _l("Audit log downloaded"),
}

# How the log page names the fields that appear in details (others are shown as stored).
FIELDS = {
    "title": _l("Title"),
    "description": _l("Description"),
    "starts_on": _l("Start date"),
    "due_on": _l("Deadline"),
    "required_hours": _l("Required study hours"),
    "items": _l("Courses and lessons"),
    "targets": _l("Who it reaches"),
    "display_name": _l("Name"),
    "phone": _l("Phone number"),
    "member_status": _l("Category"),
    "employment": _l("Employment"),
    "floating": _l("Floating"),
    "name": _l("Name"),
    "from": _l("From"),
    "to": _l("To"),
    "reason": _l("Reason"),
    "amount": _l("Amount"),
    "year": _l("Year"),
    "file": _l("File"),
    "created": _l("Created"),
    "updated": _l("Updated"),
    "unchanged": _l("Unchanged"),
    "skipped": _l("Skipped"),
    "report": _l("Report"),
    "format": _l("Format"),
    "rows": _l("Rows"),
    "role": _l("Role"),
    "attendees": _l("Attendees"),
    "hours": _l("Hours"),
    "added": _l("Added"),
    "removed": _l("Removed"),
    "kind": _l("Kind"),
    "held_on": _l("Held on"),
    "topic": _l("Topic"),
    "lecturer": _l("Lecturer"),
    "old": _l("Old name"),
    "new": _l("New name"),
    "entry": _l("Entry"),
}


def _plain(value, parent_table=None):
    """A JSON-friendly copy of a value; mapped objects become their column values."""
    if isinstance(value, Base):
        mapper = sa.inspect(value).mapper
        out = {}
        for column in mapper.columns:
            if column.primary_key or any(fk.column.table is parent_table for fk in column.foreign_keys):
                continue  # its own id and the link back to its owner say nothing about the change
            item = getattr(value, mapper.get_property_by_column(column).key)
            if item is not None:
                out[column.key] = _plain(item)
        return out
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def _scrub(value):
    """details without any key that names a secret, at any depth."""
    if isinstance(value, dict):
        return {
            k: _scrub(v) for k, v in value.items() if not any(word in str(k).lower() for word in SECRET_WORDS)
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def changes(obj: Base, fields: Iterable[str]) -> dict:
    """{field: {"before", "after"}} for the given attributes of obj changed since it was loaded.

    Reads SQLAlchemy's attribute history, so call it before the session flushes the change. For a
    new object "before" is None; collections (a plan's items) compare their rows' values.
    """
    state = sa.inspect(obj)
    table = state.mapper.local_table
    out = {}
    for name in fields:
        history = state.attrs[name].history
        if not history.has_changes():
            continue
        prop = state.mapper.attrs[name]
        if getattr(prop, "uselist", False):
            before = [_plain(v, table) for v in (*history.unchanged, *history.deleted)]
            after = [_plain(v, table) for v in (*history.unchanged, *history.added)]
            if sorted(map(json.dumps, before)) == sorted(map(json.dumps, after)):
                continue  # the list was replaced by equal rows
        else:
            before = _plain(history.deleted[0]) if history.deleted else None
            after = _plain(history.added[0]) if history.added else None
            if before == after:
                continue
        out[name] = {"before": None if state.pending else before, "after": after}
    return out


def _label(target) -> str:
    for name in ("display_name", "name", "title", "topic"):
        value = getattr(target, name, None)
        if isinstance(value, str) and value:
            return value[:120]
    return ""


def record(
    action: str,
    *,
    org_id: int | None,
    target: Base | None = None,
    details: dict | None = None,
    actor: User | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits it with the action).

    `actor` defaults to the signed-in user of the current request; without a request (CLI, jobs)
    the entry has no actor. The client address is the request's remote address, which ProxyFix
    has already taken from X-Forwarded-For when TRUSTED_PROXIES is set (and only then).
    """
    if actor is None and has_request_context():
        from flask_login import current_user

        if current_user.is_authenticated:
            actor = current_user._get_current_object()
    if target is not None and sa.inspect(target).identity is None:
        db.session.flush()  # a new target needs its id
    entry = AuditEntry(
        created_at=db.utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_name=(actor.display_name or "")[:64] if actor is not None else "",
        action=action[:40],
        org_id=org_id,
        target_type=target.__tablename__ if target is not None else None,
        target_id=sa.inspect(target).identity[0] if target is not None else None,
        target_label=_label(target) if target is not None else "",
        details=json.dumps(_scrub(_plain(details or {})), ensure_ascii=False, sort_keys=True, default=str),
    )
    if has_request_context():
        entry.address = (request.remote_addr or "")[:45] or None
        entry.user_agent = (request.user_agent.string or "")[:UA_MAX] or None
    db.session.add(entry)
    return entry


def record_for_member(action: str, member_id: int, *, details: dict | None = None, actor: User | None = None):
    """record() for an action on one member, filed under their branch."""
    member = db.session.get(User, member_id)
    return record(
        action, org_id=member.home_org_id if member else None, target=member, details=details, actor=actor
    )


# org_event actions (school/orgs) and their audit codes.
ORG_EVENTS = {
    "created": "org.create",
    "renamed": "org.rename",
    "moved": "org.move",
    "closed": "org.close",
    "reopened": "org.reopen",
}


def record_now(action: str, **kwargs) -> AuditEntry:
    """record() committed at once in a write transaction of its own: for actions made by a read
    (a download), which have no transaction to ride on. Written before the file is sent, so a
    download that could not be logged is not sent."""
    with db.writing():
        entry = record(action, **kwargs)
        db.session.commit()
    return entry


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    action: str | None = None
    actor: str = ""  # name, phone or username
    org_id: int | None = None  # this org and everything below it
    since: date | None = None  # local dates, inclusive
    until: date | None = None


def local_day_start(day: date) -> datetime:
    """The naive UTC moment a local calendar day starts."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def entries_stmt(viewer: User, filters: Filters) -> sa.Select:
    """Entries the viewer may read (admins: all; organizers: those of orgs in their subtree),
    narrowed by the filters, newest first."""
    from school.orgs.service import scope, subtree_ids  # orgs.service writes entries: import late

    stmt = scope(sa.select(AuditEntry), viewer, AuditEntry.org_id)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.org_id is not None:
        stmt = stmt.where(AuditEntry.org_id.in_(subtree_ids(filters.org_id)))
    text = (filters.actor or "").strip()[:64]
    if text:
        like = _like(text)
        people = sa.select(User.id).where(
            sa.or_(
                User.display_name.like(like, escape="\\"),
                User.phone.like(like, escape="\\"),
                User.username.like(like, escape="\\"),
            )
        )
        stmt = stmt.where(
            sa.or_(AuditEntry.actor_name.like(like, escape="\\"), AuditEntry.actor_id.in_(people))
        )
    if filters.since is not None:
        stmt = stmt.where(AuditEntry.created_at >= local_day_start(filters.since))
    if filters.until is not None:
        stmt = stmt.where(AuditEntry.created_at < local_day_start(filters.until + timedelta(days=1)))
    return stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())


def action_label(code: str) -> str:
    return str(ACTIONS.get(code, code))


def field_label(name: str) -> str:
    return str(FIELDS.get(name, name))
