"""防瘫预警: evaluate the rules, raise/escalate/resolve warnings, acknowledge them, edit rules.

`evaluate(now)` is idempotent: it computes, per rule, which organisations meet the condition now
(one GROUP BY over the closure table per rule, per plan for plan rules), then brings the warnings
in line — a new warning for a new condition, a higher level for one that has lasted, resolved for
one that no longer holds. Running it twice at the same moment changes nothing the second time.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from school import db
from school.accounts.models import RoleGrant, User
from school.audit import service as audit
from school.errors import Invalid, NotFound
from school.learning import activity
from school.orgs import service as orgs
from school.orgs.models import KINDS, Org, OrgClosure
from school.warnings.models import LEVELS, RULE_KINDS, OrgWarning, WarningEvent, WarningRule

ONE_DECIMAL = Decimal("0.1")
EVALUATION_LOCK = 7_404_2026  # PostgreSQL advisory lock key: one evaluation at a time

RULE_NAMES = {
    "inactive_share": _l("Members who stopped studying"),
    "plan_behind": _l("Study plan behind schedule"),
    "no_offline_lesson": _l("No offline party lesson this quarter"),
}
LEVEL_NAMES = {"yellow": _l("Yellow"), "orange": _l("Orange"), "red": _l("Red")}
STATE_NAMES = {"open": _l("Open"), "acknowledged": _l("Acknowledged"), "resolved": _l("Resolved")}
ACTION_NAMES = {
    "raised": _l("Raised"),
    "escalated": _l("Escalated"),
    "acknowledged": _l("Acknowledged"),
    "resolved": _l("Resolved"),
}

# What a fresh site watches until an admin changes it.
DEFAULT_RULES = (
    dict(kind="inactive_share", org_kind="branch", days=30, threshold=Decimal("50")),
    dict(kind="inactive_share", org_kind="street", days=30, threshold=Decimal("40"), min_members=20),
    dict(kind="plan_behind", org_kind="branch", days=1, threshold=Decimal("30")),
    dict(kind="no_offline_lesson", org_kind="branch", days=30, threshold=Decimal("0")),
)


def describe(warning: OrgWarning) -> str:
    """One sentence saying what was measured, in the reader's language."""
    rule = warning.rule
    if rule.kind == "inactive_share":
        return _(
            "%(share)s%% of %(n)d members have not studied in %(days)d days (limit %(limit)s%%).",
            share=warning.value,
            n=warning.members,
            days=rule.days,
            limit=rule.threshold,
        )
    if rule.kind == "plan_behind":
        return _(
            "“%(plan)s” is %(points)s points behind its schedule (limit %(limit)s).",
            plan=warning.plan.title if warning.plan else "",
            points=warning.value,
            limit=rule.threshold,
        )
    return _("No offline lesson or meeting recorded for %(days)s days.", days=int(warning.value))


# ---- rules ---------------------------------------------------------------------------------------


def ensure_default_rules() -> None:
    """Create the default rules on a site that has none yet."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(WarningRule)):
        return
    for values in DEFAULT_RULES:
        db.session.add(WarningRule(**values))
    db.session.flush()


def rules() -> list[WarningRule]:
    return list(db.session.scalars(sa.select(WarningRule).order_by(WarningRule.kind, WarningRule.id)))


def get_rule(rule_id: int) -> WarningRule:
    rule = db.session.get(WarningRule, rule_id)
    if rule is None:
        raise NotFound()
    return rule


@dataclass
class RuleInput:
    kind: str
    org_kind: str
    days: str
    threshold: str
    min_members: str
    orange_after_days: str
    red_after_days: str
    enabled: bool


def _whole(raw: str, low: int, high: int, message: str) -> int:
    raw = (raw or "").strip()
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(message)
    return int(raw)


RULE_FIELDS = tuple(RuleInput.__dataclass_fields__)  # audited: every field of the form


def save_rule(data: RuleInput, rule: WarningRule | None, now: datetime) -> WarningRule:
    """Create or change a rule after checking every field; raises Invalid with the reason."""
    if data.kind not in RULE_KINDS:
        raise Invalid(_("Choose what the rule watches."))
    if data.org_kind not in KINDS:
        raise Invalid(_("Choose which level of organisations the rule watches."))
    days = _whole(data.days, 1, 366, _("Days must be a whole number from 1 to 366."))
    try:
        threshold = Decimal((data.threshold or "").strip())
    except ArithmeticError:
        threshold = Decimal("NaN")
    if not threshold.is_finite() or not 0 <= threshold <= 100:
        raise Invalid(_("The limit must be a number from 0 to 100."))
    min_members = _whole(data.min_members, 1, 100000, _("The minimum head-count must be from 1 to 100000."))
    orange = _whole(data.orange_after_days, 0, 366, _("Days before orange must be from 0 to 366."))
    red = _whole(data.red_after_days, 0, 366, _("Days before red must be from 0 to 366."))
    if red < orange:
        raise Invalid(_("Red must come no sooner than orange."))
    if rule is None:
        rule = WarningRule()
        db.session.add(rule)
    rule.kind, rule.org_kind, rule.days = data.kind, data.org_kind, days
    rule.threshold = threshold.quantize(ONE_DECIMAL)
    rule.min_members, rule.orange_after_days, rule.red_after_days = min_members, orange, red
    rule.enabled, rule.updated_at = data.enabled, now
    audit.record(
        "warning_rule.create" if sa.inspect(rule).pending else "warning_rule.update",
        org_id=None,
        target=rule,
        details=audit.changes(rule, RULE_FIELDS),
    )
    db.session.flush()
    return rule


# ---- conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    org_id: int
    plan_id: int | None
    value: Decimal
    members: int


def _watched_orgs(rule: WarningRule):
    return sa.and_(Org.kind == rule.org_kind, Org.closed_at.is_(None))


def _members_per_org(rule: WarningRule, joined_before: datetime):
    """Active members per watched organisation (whole subtree), as a subquery (org_id, members)."""
    return (
        sa.select(OrgClosure.ancestor_id.label("org_id"), sa.func.count(User.id).label("members"))
        .select_from(User)
        .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
        .join(Org, Org.id == OrgClosure.ancestor_id)
        .where(User.active.is_(True), User.created_at <= joined_before, _watched_orgs(rule))
        .group_by(OrgClosure.ancestor_id)
    )


def _inactive_share(rule: WarningRule, now: datetime) -> list[Finding]:
    """Watched organisations where more than `threshold`% of members have not studied (as
    learning.activity defines it) for `days` days. Members who joined less than `days` days ago
    are left out: they have not had the time yet.
    """
    since = now - timedelta(days=rule.days)
    studied = activity.studied_user_ids(since).subquery("studied")
    stmt = (
        sa.select(
            OrgClosure.ancestor_id,
            sa.func.count(User.id),
            sa.func.sum(sa.case((studied.c.user_id.is_(None), 1), else_=0)),
        )
        .select_from(User)
        .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
        .join(Org, Org.id == OrgClosure.ancestor_id)
        .outerjoin(studied, studied.c.user_id == User.id)
        .where(User.active.is_(True), User.created_at <= since, _watched_orgs(rule))
        .group_by(OrgClosure.ancestor_id)
    )
    found = []
    for org_id, members, idle in db.session.execute(stmt):
        if members < rule.min_members:
            continue
        share = (Decimal(idle or 0) * 100 / members).quantize(ONE_DECIMAL)
        if share > rule.threshold:
            found.append(Finding(org_id, None, share, members))
    return found


def _plan_behind(rule: WarningRule, now: datetime, today: date) -> list[Finding]:
    """Per running plan: watched organisations whose completion rate trails the share of the plan's
    time already gone by more than `threshold` points (past the deadline the time share is 100%)."""
    from school.plans.models import StudyPlan
    from school.plans.service import completed_members_stmt, members_of_plan_stmt, plan_lesson_ids

    found = []
    plans = db.session.scalars(
        sa.select(StudyPlan).where(StudyPlan.closed_at.is_(None), StudyPlan.starts_on <= today)
    )
    for plan in plans:
        lesson_ids = plan_lesson_ids(plan)
        if not lesson_ids:
            continue
        span = max(1, (plan.due_on - plan.starts_on).days)
        elapsed = min(Decimal(100), Decimal((today - plan.starts_on).days) * 100 / span)
        if elapsed <= rule.threshold:
            continue  # even no completion at all is not behind yet
        reached = members_of_plan_stmt(plan).subquery("reached")
        done = completed_members_stmt(plan, lesson_ids).subquery("done")
        stmt = (
            sa.select(
                OrgClosure.ancestor_id,
                sa.func.count(User.id),
                sa.func.sum(sa.case((done.c.user_id.is_not(None), 1), else_=0)),
            )
            .select_from(User)
            .join(reached, reached.c[0] == User.id)
            .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
            .join(Org, Org.id == OrgClosure.ancestor_id)
            .outerjoin(done, done.c.user_id == User.id)
            .where(_watched_orgs(rule), OrgClosure.ancestor_id.in_(orgs.subtree_ids(plan.org_id)))
            .group_by(OrgClosure.ancestor_id)
        )
        for org_id, members, completed in db.session.execute(stmt):
            if members < rule.min_members:
                continue
            behind = (elapsed - Decimal(completed or 0) * 100 / members).quantize(ONE_DECIMAL)
            if behind > rule.threshold:
                found.append(Finding(org_id, plan.id, behind, members))
    return found


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def checked_period_start(day: date, grace_days: int) -> date:
    """The first day of the period checked for an offline lesson: this quarter once `grace_days`
    of it have passed, before that the previous quarter (so a warning carries over the new year's
    first weeks instead of resolving and coming back)."""
    start = quarter_start(day)
    if (day - start).days >= grace_days:
        return start
    return quarter_start(start - timedelta(days=1))


def _no_offline_lesson(rule: WarningRule, now: datetime, today: date) -> list[Finding]:
    """Watched organisations (with at least `min_members` members) where neither they nor any
    organisation under them held an offline lesson or meeting in the checked period."""
    from school.meetings.models import Meeting

    since = checked_period_start(today, rule.days)
    members = _members_per_org(rule, now).subquery("members")
    held = (
        sa.select(OrgClosure.ancestor_id)
        .join(Meeting, Meeting.org_id == OrgClosure.descendant_id)
        .where(Meeting.cancelled_at.is_(None), Meeting.held_on >= since, Meeting.held_on <= today)
    )
    last = (
        sa.select(OrgClosure.ancestor_id.label("org_id"), sa.func.max(Meeting.held_on).label("last_on"))
        .join(Meeting, Meeting.org_id == OrgClosure.descendant_id)
        .where(Meeting.cancelled_at.is_(None), Meeting.held_on <= today)
        .group_by(OrgClosure.ancestor_id)
        .subquery("last")
    )
    stmt = (
        sa.select(members.c.org_id, members.c.members, last.c.last_on, Org.created_at)
        .join(Org, Org.id == members.c.org_id)
        .outerjoin(last, last.c.org_id == members.c.org_id)
        .where(members.c.members >= rule.min_members, members.c.org_id.not_in(held))
    )
    found = []
    for org_id, count, last_on, created_at in db.session.execute(stmt):
        if last_on is None:
            last_on = min(since, created_at.date())
        if isinstance(last_on, str):  # SQLite returns MAX(date) as text
            last_on = date.fromisoformat(last_on)
        found.append(Finding(org_id, None, Decimal((today - last_on).days), count))
    return found


def findings(rule: WarningRule, now: datetime, today: date) -> list[Finding]:
    """Where the rule's condition holds right now."""
    if rule.kind == "inactive_share":
        return _inactive_share(rule, now)
    if rule.kind == "plan_behind":
        return _plan_behind(rule, now, today)
    return _no_offline_lesson(rule, now, today)


# ---- evaluation ----------------------------------------------------------------------------------


def level_after(rule: WarningRule, raised_at: datetime, now: datetime) -> str:
    """The level a warning has reached by now: it rises as its condition lasts."""
    days = (now - raised_at).total_seconds() / 86400
    if days >= rule.red_after_days:
        return "red"
    if days >= rule.orange_after_days:
        return "orange"
    return "yellow"


def open_key(rule_id: int, org_id: int, plan_id: int | None) -> str:
    return f"{rule_id}:{org_id}:{plan_id or 0}"


@dataclass
class Outcome:
    raised: list[OrgWarning] = field(default_factory=list)
    escalated: list[OrgWarning] = field(default_factory=list)
    resolved: list[OrgWarning] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{len(self.raised)} raised, {len(self.escalated)} escalated, {len(self.resolved)} resolved"


def _event(warning: OrgWarning, action: str, now: datetime, note: str = "", by_user_id=None) -> None:
    db.session.add(
        WarningEvent(
            warning=warning, action=action, level=warning.level, note=note, by_user_id=by_user_id, at=now
        )
    )


def evaluate(now: datetime | None = None, today: date | None = None) -> Outcome:
    """Bring every warning in line with the rules as of `now` (UTC) and `today` (local date)."""
    from school.credits.service import local_now

    now = now or db.utcnow()
    today = today or local_now().date()
    if db.session.get_bind().dialect.name == "postgresql":
        # One evaluation at a time (nightly task, admin button, CLI), so warnings can be added
        # without a savepoint each; SQLite's write transactions already queue (BEGIN IMMEDIATE).
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVALUATION_LOCK})
    ensure_default_rules()
    outcome = Outcome()
    current = {
        w.open_key: w
        for w in db.session.scalars(sa.select(OrgWarning).where(OrgWarning.open_key.is_not(None)))
    }
    seen = set()
    for rule in rules():
        if not rule.enabled:
            continue
        for found in findings(rule, now, today):
            key = open_key(rule.id, found.org_id, found.plan_id)
            seen.add(key)
            warning = current.get(key)
            if warning is None:
                outcome.raised.append(_raise(rule, found, key, now))
                continue
            warning.value, warning.members, warning.checked_at = found.value, found.members, now
            level = level_after(rule, warning.raised_at, now)
            if LEVELS.index(level) > LEVELS.index(warning.level):
                warning.level, warning.state = level, "open"  # worse again: needs a look again
                _event(warning, "escalated", now)
                outcome.escalated.append(warning)
    for key, warning in current.items():
        if key not in seen:
            warning.state, warning.open_key, warning.resolved_at, warning.checked_at = (
                "resolved",
                None,
                now,
                now,
            )
            _event(warning, "resolved", now)
            outcome.resolved.append(warning)
    db.session.flush()
    notify(outcome.raised + outcome.escalated)
    return outcome


def _raise(rule: WarningRule, found: Finding, key: str, now: datetime) -> OrgWarning:
    warning = OrgWarning(
        rule=rule,
        org_id=found.org_id,
        plan_id=found.plan_id,
        level="yellow",
        state="open",
        open_key=key,
        value=found.value,
        members=found.members,
        raised_at=now,
        checked_at=now,
    )
    db.session.add(warning)
    _event(warning, "raised", now)
    return warning


def notify(warnings: list[OrgWarning]) -> None:
    """Tell the organizers of each warning's organisation and of its parent, once per warning and
    level (the city sees its thousands of branches on its pages, not in its inbox)."""
    from school.notifications.service import send

    if not warnings:
        return
    orgs_found = db.session.execute(
        sa.select(Org.id, Org.parent_id, Org.name).where(Org.id.in_({w.org_id for w in warnings}))
    ).all()
    parents = {org_id: parent_id for org_id, parent_id, _name in orgs_found}
    names = {org_id: name for org_id, _parent, name in orgs_found}
    wanted = set(parents) | {p for p in parents.values() if p}
    organizers: dict[int, list[User]] = {}
    rows = db.session.execute(
        sa.select(RoleGrant.org_id, User)
        .join(User, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == "organizer", RoleGrant.org_id.in_(wanted), User.active.is_(True))
    )
    for org_id, person in rows:
        organizers.setdefault(org_id, []).append(person)
    for warning in warnings:
        people = {
            p.id: p for o in (warning.org_id, parents.get(warning.org_id)) for p in organizers.get(o, [])
        }
        if not people:
            continue
        title = _(
            "%(level)s warning: %(org)s — %(rule)s",
            level=LEVEL_NAMES[warning.level],
            org=names[warning.org_id],
            rule=RULE_NAMES[warning.rule.kind],
        )
        body, url = describe(warning), f"/warnings/{warning.id}"
        for person in people.values():
            send(person, "warning", title, body, url, key=f"warning:{warning.id}:{warning.level}")


# ---- reading and acknowledging -------------------------------------------------------------------


def warnings_stmt(viewer, org_id: int | None = None, state: str = "active") -> sa.Select:
    """Warnings on organisations the viewer may administer (optionally under org_id), worst first.

    state: "active" (open or acknowledged), "resolved" or "all".
    """
    stmt = orgs.scope(sa.select(OrgWarning), viewer, OrgWarning.org_id)
    if org_id is not None:
        stmt = stmt.where(OrgWarning.org_id.in_(orgs.subtree_ids(org_id)))
    if state == "active":
        stmt = stmt.where(OrgWarning.state != "resolved")
    elif state == "resolved":
        stmt = stmt.where(OrgWarning.state == "resolved")
    severity = sa.case({"red": 0, "orange": 1, "yellow": 2}, value=OrgWarning.level)
    opened = sa.case((OrgWarning.state == "open", 0), else_=1)
    return stmt.order_by(opened, severity, OrgWarning.raised_at, OrgWarning.id)


def counts_by_level(viewer) -> dict[str, int]:
    """Active warnings the viewer may see, per level (for the home page)."""
    stmt = orgs.scope(
        sa.select(OrgWarning.level, sa.func.count()).where(OrgWarning.state != "resolved"),
        viewer,
        OrgWarning.org_id,
    ).group_by(OrgWarning.level)
    found = dict(db.session.execute(stmt).all())
    return {level: found.get(level, 0) for level in reversed(LEVELS)}


def get_warning(viewer, warning_id: int) -> OrgWarning:
    """A warning the viewer may see; NotFound for others (their existence is not told)."""
    stmt = orgs.scope(sa.select(OrgWarning).where(OrgWarning.id == warning_id), viewer, OrgWarning.org_id)
    warning = db.session.scalar(stmt)
    if warning is None:
        raise NotFound()
    return warning


def acknowledge(warning: OrgWarning, viewer, note: str, now: datetime) -> None:
    """An organizer says they have seen it and what is being done; the warning stays until its
    condition is gone (acknowledging does not make a paralysed branch active)."""
    note = (note or "").strip()
    if not note:
        raise Invalid(_("Write a note: what is being done about it."))
    if len(note) > 1000:
        raise Invalid(_("The note is too long (1,000 characters at most)."))
    if warning.state == "resolved":
        raise Invalid(_("This warning is already resolved."))
    warning.state = "acknowledged"
    _event(warning, "acknowledged", now, note=note, by_user_id=viewer.id)
    db.session.flush()
