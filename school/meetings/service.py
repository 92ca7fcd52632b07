"""Recording offline lessons and meetings, correcting and cancelling them.

Every credit goes through the 学时 ledger (credits.service) and every correction is a reversing
entry, never an edit of the ledger. Services take the acting user and plain values, check scope
themselves and raise school.errors; the caller commits.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy import orm

from school import db
from school.accounts.models import User
from school.accounts.service import normalize_phone
from school.audit import service as audit
from school.courses.models import Course, Lesson
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.errors import Forbidden, Invalid, NotFound
from school.meetings.models import HOURS_MAX, KINDS, Meeting, MeetingAttendance
from school.orgs.models import Org
from school.orgs.service import get_org, in_scope, scope, subtree_ids

# Kinds the record form offers; group viewing is recorded from its own page, with its lesson.
OFFLINE_KINDS = tuple(k for k in KINDS if k != "group_viewing")
TOPIC_MAX = 200
LECTURER_MAX = 64
REASON_MAX = 500
ROSTER_MAX = 500  # larger rosters are not listed as checkboxes: import a phone list instead
PHONE_HEADER = "手机号"  # the attendance list's column (data: organisers' sheets carry it)
CHUNK = 500  # ids per IN (...)
MEETING_FIELDS = ("kind", "held_on", "hours", "topic", "lecturer")  # audited corrections
CENT = Decimal("0.01")


class RowsRejected(Invalid):
    """An attendance list with rows that cannot be used: a message, then one line per row."""

    def __init__(self, message: str, rows: list[str]):
        super().__init__(message)
        self.rows = rows


@dataclass
class MeetingInput:
    """What the record and edit forms send, as typed (the service parses and checks it)."""

    kind: str = ""
    held_on: str = ""
    topic: str = ""
    lecturer: str = ""
    hours: str = ""
    attendee_ids: list[str] = field(default_factory=list)
    file_data: bytes = b""
    file_name: str = ""
    reason: str = ""  # why, when an edit takes credit back


@dataclass
class Fields:
    kind: str
    held_on: date
    topic: str
    lecturer: str
    hours: Decimal


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def today() -> date:
    """The site's local calendar day."""
    return credits.local_now().date()


# --- checking input -----------------------------------------------------------------------------


def parse_held_on(raw: str, on: date, max_age_days: int) -> date:
    """The meeting date: not in the future and not more than max_age_days ago."""
    text = (raw or "").strip()
    if not text:
        raise Invalid(_("Enter the date the meeting was held."))
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise Invalid(_("The date must look like 2026-03-01.")) from None
    if value > on:
        raise Invalid(_("The meeting date cannot be in the future."))
    if value < on - timedelta(days=max_age_days):
        raise Invalid(_("The meeting date is more than %(days)d days ago.", days=max_age_days))
    return value


def parse_hours(raw) -> Decimal:
    """学时 per attendee: a number above 0 and at most HOURS_MAX, in hundredths at most."""
    message = _("Study hours must be a number above 0 and at most %(max)s, such as 1 or 1.5.", max=HOURS_MAX)
    try:
        value = Decimal(str(raw or "").strip())
    except (InvalidOperation, ValueError):
        raise Invalid(message) from None
    if not value.is_finite() or value <= 0 or value > HOURS_MAX or value != value.quantize(CENT):
        raise Invalid(message)
    return value.quantize(CENT)


def check_fields(data: MeetingInput, on: date, max_age_days: int, kinds: Iterable[str]) -> Fields:
    """The meeting's own fields, parsed, or Invalid with the first problem."""
    if data.kind not in kinds:
        raise Invalid(_("Choose what kind of meeting it was."))
    held_on = parse_held_on(data.held_on, on, max_age_days)
    topic = " ".join((data.topic or "").split())
    if not topic:
        raise Invalid(_("Enter the topic."))
    if len(topic) > TOPIC_MAX:
        raise Invalid(_("The topic may have at most %(n)d characters.", n=TOPIC_MAX))
    lecturer = " ".join((data.lecturer or "").split())
    if len(lecturer) > LECTURER_MAX:
        raise Invalid(_("The lecturer's name may have at most %(n)d characters.", n=LECTURER_MAX))
    return Fields(data.kind, held_on, topic, lecturer, parse_hours(data.hours))


def _ids(raw: Iterable) -> set[int]:
    out = set()
    for value in raw or ():
        text = str(value).strip()
        if not text.isdigit() or len(text) > 12:
            raise Invalid(_("The list of attendees was not understood. Please reload and try again."))
        out.add(int(text))
    return out


def _roster_stmt(org_id: int) -> sa.Select:
    return sa.select(User).where(User.home_org_id.in_(subtree_ids(org_id)), User.active.is_(True))


def roster(org_id: int, limit: int | None = None) -> list[User] | None:
    """Active members of org_id's subtree by name, or None when there are more than limit."""
    limit = limit or ROSTER_MAX
    stmt = _roster_stmt(org_id).order_by(User.display_name, User.id).limit(limit + 1)
    people = list(db.session.scalars(stmt))
    return None if len(people) > limit else people


def _on_roster(org_id: int, ids: set[int]) -> set[int]:
    """Those of ids who are active members of org_id's subtree."""
    found: set[int] = set()
    for chunk in _chunks(sorted(ids)):
        stmt = _roster_stmt(org_id).with_only_columns(User.id).where(User.id.in_(chunk))
        found.update(db.session.scalars(stmt))
    return found


def _check_on_roster(org: Org, ids: set[int]) -> None:
    outside = ids - _on_roster(org.id, ids)
    if outside:
        raise Invalid(
            _(
                "%(n)d of the chosen people are not active members of %(org)s; nothing was saved.",
                n=len(outside),
                org=org.name,
            )
        )


def read_phone_rows(data: bytes, filename: str, max_rows: int) -> list[tuple[int, str]]:
    """(row number, phone cell) of an attendance list (XLSX or CSV in UTF-8/GBK) with a 手机号 column."""
    from school.roster import importer  # the member import's readers: one way to read a sheet

    if not data or not data.strip():
        raise Invalid(_("The file is empty."))
    if data.startswith(importer.XLS_MAGIC):
        raise Invalid(_("Old .xls files cannot be read. Please save the sheet as .xlsx or CSV."))
    if data.startswith(importer.XLSX_MAGIC):
        table = importer._xlsx_rows(data)
    elif (filename or "").lower().endswith((".xlsx", ".xlsm")):
        raise Invalid(_("This file is not a valid XLSX workbook."))
    else:
        table = importer._csv_rows(data)
    column = None
    rows: list[tuple[int, str]] = []
    for number, values in table:
        cells = [importer._text(v) for v in values]
        if column is None:
            if not any(cells):
                continue
            if PHONE_HEADER not in cells:
                raise Invalid(_("The first row must hold the column header %(header)s.", header=PHONE_HEADER))
            column = cells.index(PHONE_HEADER)
            continue
        if not any(cells):
            continue
        if len(rows) >= max_rows:
            raise Invalid(_("The file has more than %(n)d rows. Please split it.", n=max_rows))
        value = values[column] if column < len(values) else None
        rows.append((number, "" if isinstance(value, importer.Formula) else cells[column]))
    if column is None:
        raise Invalid(_("The file is empty."))
    if not rows:
        raise Invalid(_("The file has a header row but no phone numbers."))
    return rows


def attendees_from_file(org: Org, data: bytes, filename: str, config: Mapping) -> set[int]:
    """Member ids for the phones of an attendance list; RowsRejected (nothing used) if any row fails."""
    if len(data) > config["IMPORT_MAX_BYTES"]:
        mb = format(config["IMPORT_MAX_BYTES"] / 1024 / 1024, "g")
        raise Invalid(_("The file is larger than %(mb)s MB.", mb=mb))
    rows = read_phone_rows(data, filename, config["IMPORT_MAX_ROWS"])
    phones = {normalize_phone(text) for _line, text in rows} - {None}
    users: dict[str, int] = {}
    for chunk in _chunks(sorted(phones)):
        stmt = sa.select(User.phone, User.id).where(User.phone.in_(chunk))
        users.update({phone: uid for phone, uid in db.session.execute(stmt)})
    inside = _on_roster(org.id, set(users.values()))
    problems, ids = [], set()
    for line, text in rows:
        phone = normalize_phone(text)
        shown = text[:40]
        if phone is None:
            problems.append(
                _("Row %(row)d: “%(value)s” is not a mobile phone number.", row=line, value=shown)
            )
        elif phone not in users:
            problems.append(
                _("Row %(row)d: no member has the phone number %(phone)s.", row=line, phone=phone)
            )
        elif users[phone] not in inside:
            problems.append(
                _(
                    "Row %(row)d: %(phone)s is not an active member of %(org)s.",
                    row=line,
                    phone=phone,
                    org=org.name,
                )
            )
        else:
            ids.add(users[phone])
    if problems:
        raise RowsRejected(
            _("%(n)d rows of the attendance list cannot be used, so nothing was saved:", n=len(problems)),
            problems,
        )
    return ids


# --- the ledger ---------------------------------------------------------------------------------


def ref_key(meeting_id: int, user_id: int, round_: int) -> str:
    return f"offline:{meeting_id}:{user_id}:{round_}"


def _credit(meeting: Meeting, rows: list[MeetingAttendance]) -> None:
    """Credit each row's member the meeting's hours under their next round's key."""
    keys: dict[tuple[int, str], MeetingAttendance] = {}
    for row in rows:
        key = ref_key(meeting.id, row.user_id, row.rounds)
        row.rounds += 1
        credits.credit_once(
            row.user_id, meeting.hours, "offline", key, meeting.topic, year=meeting.held_on.year
        )
        keys[(row.user_id, key)] = row
    for chunk in _chunks(list(keys)):
        stmt = sa.select(CreditEntry.id, CreditEntry.user_id, CreditEntry.ref_key).where(
            CreditEntry.user_id.in_({u for u, _k in chunk}), CreditEntry.ref_key.in_({k for _u, k in chunk})
        )
        for entry_id, user_id, key in db.session.execute(stmt):
            if (user_id, key) in keys:
                keys[(user_id, key)].entry_id = entry_id
    db.session.flush()


def _take_back(rows: list[MeetingAttendance], by_user: User, reason: str) -> None:
    """Reverse the entry standing for each row (once: an entry reversed already is left alone)."""
    standing = [r for r in rows if r.entry_id is not None]
    if not standing:
        return
    entries = {
        e.id: e
        for chunk in _chunks([r.entry_id for r in standing])
        for e in db.session.scalars(sa.select(CreditEntry).where(CreditEntry.id.in_(chunk)))
    }
    reversed_ids = {
        rid
        for chunk in _chunks(list(entries))
        for rid in db.session.scalars(
            sa.select(CreditEntry.reverses_id).where(CreditEntry.reverses_id.in_(chunk))
        )
    }
    for row in standing:
        entry = entries.get(row.entry_id)
        if entry is not None and entry.id not in reversed_ids:
            credits.reverse(entry, by_user, reason, logged=False)  # one audit entry per meeting
        row.entry_id = None
    db.session.flush()


def _reason(raw: str) -> str:
    reason = " ".join((raw or "").split())
    if not reason:
        raise Invalid(_("Give a reason for the correction."))
    if len(reason) > REASON_MAX:
        raise Invalid(_("The reason may have at most %(n)d characters.", n=REASON_MAX))
    return reason


# --- recording, correcting, cancelling ----------------------------------------------------------


def _find_by_token(token: str) -> Meeting | None:
    if not token:
        return None
    return db.session.scalar(sa.select(Meeting).where(Meeting.submit_token == token))


def record_meeting(
    by_user: User,
    org_id: int,
    data: MeetingInput,
    *,
    token: str,
    on: date,
    config: Mapping,
    lesson: Lesson | None = None,
) -> Meeting:
    """Record a meeting of org_id and credit every attendee once; a resent form returns the first.

    With a lesson it is a group viewing (集体收看) of that lesson.
    """
    if not in_scope(by_user, org_id):
        raise Forbidden()
    org = get_org(org_id)
    token = (token or "").strip()[:48]
    earlier = _find_by_token(token)
    if earlier is not None:
        if earlier.recorded_by_id != by_user.id:
            raise Forbidden()
        return earlier
    if lesson is not None:
        data.kind = "group_viewing"
    kinds = ("group_viewing",) if lesson is not None else OFFLINE_KINDS
    fields = check_fields(data, on, config["MEETING_MAX_AGE_DAYS"], kinds)
    ids = _ids(data.attendee_ids)
    _check_on_roster(org, ids)
    if data.file_name or data.file_data:  # a chosen file, even an empty one
        ids |= attendees_from_file(org, data.file_data, data.file_name, config)
    if not ids:
        raise Invalid(_("Tick at least one attendee, or upload a list of their phone numbers."))
    meeting = Meeting(
        org_id=org.id,
        kind=fields.kind,
        held_on=fields.held_on,
        topic=fields.topic,
        lecturer=fields.lecturer,
        hours=fields.hours,
        lesson_id=lesson.id if lesson is not None else None,
        recorded_by_id=by_user.id,
        submit_token=token or None,
    )
    db.session.add(meeting)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        # The same form sent twice at once: the other request recorded it.
        db.session.rollback()
        earlier = _find_by_token(token)
        if earlier is None:
            raise
        return earlier
    rows = [MeetingAttendance(meeting_id=meeting.id, user_id=uid) for uid in sorted(ids)]
    db.session.add_all(rows)
    db.session.flush()
    _credit(meeting, rows)
    audit.record(
        "meeting.record",
        org_id=org.id,
        target=meeting,
        details={
            "kind": meeting.kind,
            "held_on": meeting.held_on,
            "hours": meeting.hours,
            "attendees": len(rows),
        },
        actor=by_user,
    )
    return meeting


def _lock(meeting: Meeting) -> None:
    """Re-read the meeting and its attendance under a row lock, so two organizers correcting it at
    once take turns (PostgreSQL; SQLite writers already queue) instead of one failing on the
    unique (meeting, member) row the other has just added."""
    db.session.execute(sa.select(Meeting.id).where(Meeting.id == meeting.id).with_for_update())
    db.session.refresh(meeting)  # as committed by whoever held the lock before us
    db.session.expire(meeting, ["attendances"])


def update_meeting(by_user: User, meeting: Meeting, data: MeetingInput, *, on: date, config: Mapping) -> None:
    """Change a meeting: fields, who attended and the hours; credit taken back is reversed, with data.reason.

    The ticked ids are who attended now (people added must be on the roster; those kept need not
    be, as they may have moved since).
    """
    if not in_scope(by_user, meeting.org_id):
        raise Forbidden()
    _lock(meeting)
    if meeting.cancelled_at is not None:
        raise Invalid(_("This meeting was cancelled and can no longer be changed."))
    kinds = ("group_viewing",) if meeting.kind == "group_viewing" else OFFLINE_KINDS
    if meeting.kind == "group_viewing":
        data.kind = "group_viewing"
    fields = check_fields(data, on, config["MEETING_MAX_AGE_DAYS"], kinds)
    rows = {r.user_id: r for r in meeting.attendances}
    present = {uid for uid, r in rows.items() if r.present}
    wanted = _ids(data.attendee_ids)
    _check_on_roster(meeting.org, wanted - present)
    if data.file_name or data.file_data:  # a chosen file, even an empty one
        wanted |= attendees_from_file(meeting.org, data.file_data, data.file_name, config) - present
    if not wanted:
        raise Invalid(_("Tick at least one attendee. To take the whole meeting back, cancel it."))
    removed = present - wanted
    added = wanted - present
    hours_changed = fields.hours != meeting.hours
    reason = _reason(data.reason) if removed or hours_changed else ""

    now = db.utcnow()
    if removed:
        gone = [rows[uid] for uid in removed]
        _take_back(gone, by_user, reason)
        for row in gone:
            row.removed_at = now
    kept = [rows[uid] for uid in present - removed]
    if hours_changed:
        _take_back(kept, by_user, reason)
    meeting.kind, meeting.held_on, meeting.hours = fields.kind, fields.held_on, fields.hours
    meeting.topic, meeting.lecturer = fields.topic, fields.lecturer
    audit.record(
        "meeting.update",
        org_id=meeting.org_id,
        target=meeting,
        details={
            **audit.changes(meeting, MEETING_FIELDS),
            "added": len(added),
            "removed": len(removed),
            "reason": reason,
        },
        actor=by_user,
    )
    to_credit = kept if hours_changed else []
    for uid in sorted(added):
        row = rows.get(uid)
        if row is None:
            row = MeetingAttendance(meeting_id=meeting.id, user_id=uid)
            db.session.add(row)
        row.removed_at = None
        row.added_at = now
        to_credit.append(row)
    db.session.flush()
    _credit(meeting, to_credit)


def cancel_meeting(by_user: User, meeting: Meeting, reason: str) -> None:
    """Cancel a meeting recorded by mistake: every attendee's credit is reversed with the reason."""
    if not in_scope(by_user, meeting.org_id):
        raise Forbidden()
    _lock(meeting)
    if meeting.cancelled_at is not None:
        raise Invalid(_("This meeting has already been cancelled."))
    reason = _reason(reason)
    _take_back([r for r in meeting.attendances if r.present], by_user, reason)
    meeting.cancelled_at = db.utcnow()
    meeting.cancelled_by_id = by_user.id
    meeting.cancel_reason = reason
    audit.record(
        "meeting.cancel",
        org_id=meeting.org_id,
        target=meeting,
        details={"reason": reason, "attendees": sum(r.present for r in meeting.attendances)},
        actor=by_user,
    )
    db.session.flush()


# --- reading ------------------------------------------------------------------------------------


def get_meeting(viewer: User, meeting_id: int) -> Meeting:
    """A meeting of the viewer's subtree, else NotFound/Forbidden."""
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound()
    if not in_scope(viewer, meeting.org_id):
        raise Forbidden()
    return meeting


def quarter_range(year: int, quarter: int | None) -> tuple[date, date]:
    """First day and the day after the last of a year or one of its quarters."""
    if quarter is None:
        return date(year, 1, 1), date(year + 1, 1, 1)
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return start, end


def meetings_stmt(
    viewer: User,
    org_id: int | None = None,
    kind: str | None = None,
    year: int | None = None,
    quarter: int | None = None,
) -> sa.Select:
    """Meetings of the viewer's subtree, optionally under one org, of one kind, in a year or quarter."""
    stmt = scope(sa.select(Meeting), viewer, Meeting.org_id)
    if org_id is not None:
        stmt = stmt.where(Meeting.org_id.in_(subtree_ids(org_id)))
    if kind:
        stmt = stmt.where(Meeting.kind == kind)
    if year is not None:
        start, end = quarter_range(year, quarter)
        stmt = stmt.where(Meeting.held_on >= start, Meeting.held_on < end)
    return stmt.order_by(Meeting.held_on.desc(), Meeting.id.desc())


def attendee_counts(meeting_ids: list[int]) -> dict[int, int]:
    """Number of people present at each meeting."""
    if not meeting_ids:
        return {}
    stmt = (
        sa.select(MeetingAttendance.meeting_id, sa.func.count())
        .where(MeetingAttendance.meeting_id.in_(meeting_ids), MeetingAttendance.removed_at.is_(None))
        .group_by(MeetingAttendance.meeting_id)
    )
    return dict(db.session.execute(stmt).all())


def present(meeting: Meeting) -> list[MeetingAttendance]:
    """Who attended (now), by name."""
    rows = [r for r in meeting.attendances if r.present]
    return sorted(rows, key=lambda r: (r.user.display_name, r.user_id))


@dataclass
class HistoryLine:
    entry: CreditEntry
    member: str


def history(meeting: Meeting) -> list[HistoryLine]:
    """Every ledger entry made for this meeting (credits and their reversals), oldest first."""
    names = {r.user_id: r.user.display_name for r in meeting.attendances}
    if not names:
        return []
    prefix = f"offline:{meeting.id}:"
    credited = (
        sa.select(CreditEntry)
        .where(
            CreditEntry.user_id.in_(list(names)),
            CreditEntry.source == "offline",
            CreditEntry.ref_key.startswith(prefix, autoescape=True),
        )
        .options(orm.selectinload(CreditEntry.created_by))
    )
    entries = list(db.session.scalars(credited))
    if entries:
        reversals = sa.select(CreditEntry).where(
            CreditEntry.user_id.in_(list(names)),
            CreditEntry.ref_key.in_([f"reversal:{e.id}" for e in entries]),
        )
        entries += list(db.session.scalars(reversals.options(orm.selectinload(CreditEntry.created_by))))
    entries.sort(key=lambda e: (e.created_at, e.id))
    return [HistoryLine(e, names.get(e.user_id, "")) for e in entries]


def roster_choices(org_id: int, meeting: Meeting | None = None) -> tuple[list[User], bool]:
    """People to tick: the org's roster plus those already present (who may have moved since), and
    whether the roster is complete (False when too large to list: then only those present)."""
    people = roster(org_id)
    extra = [r.user for r in present(meeting)] if meeting is not None else []
    complete = people is not None
    ids = {u.id for u in people or []}
    merged = (people or []) + [u for u in extra if u.id not in ids]
    return sorted(merged, key=lambda u: (u.display_name, u.id)), complete


def published_lessons() -> list[Lesson]:
    """Lessons that may be shown in a group viewing: published, in a published course."""
    stmt = (
        sa.select(Lesson)
        .join(Course, Course.id == Lesson.course_id)
        .where(Lesson.state == "published", Course.state == "published")
        .options(orm.contains_eager(Lesson.course))
        .order_by(Course.title, Lesson.position, Lesson.id)
    )
    return list(db.session.scalars(stmt))


def viewing_lesson(lesson_id) -> Lesson:
    """A published lesson of a published course for group viewing, else NotFound."""
    text = str(lesson_id or "").strip()
    lesson = db.session.get(Lesson, int(text)) if text.isdigit() and len(text) < 12 else None
    if lesson is None or lesson.state != "published" or lesson.course.state != "published":
        raise NotFound(_("This lesson does not exist or is not published."))
    return lesson


def default_hours(lesson: Lesson) -> str:
    """A group viewing's 学时: the lesson's credit, when it fits a meeting's range."""
    credit = lesson.credit_hours or Decimal(0)
    return format(credit.normalize(), "f") if 0 < credit <= HOURS_MAX else ""


def org_choices(viewer: User, org_id: int | None, limit: int = 300) -> list[Org]:
    """Orgs a meeting may be recorded for: org_id's subtree (else all the viewer's), top first."""
    stmt = scope(sa.select(Org).where(Org.closed_at.is_(None)), viewer, Org.id)
    if org_id is not None:
        stmt = stmt.where(Org.id.in_(subtree_ids(org_id)))
    return list(db.session.scalars(stmt.order_by(Org.depth, Org.position, Org.name, Org.id).limit(limit)))
