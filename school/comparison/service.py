"""比 of 查核比评: sibling organisations side by side over a period, by rates scaled by head-count.

Raw totals favour big branches, so every figure is per member or a share of members. All of them
come from one GROUP BY over the closure table × active members × per-member aggregates (学时,
completions, activity, plan progress) for the children of a node; a branch's own members (for
the optional personal ranking) are one more query. The page and both exports are built from the
same `tables()`, so they cannot disagree.
"""

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from school import db
from school.accounts.models import RoleGrant, User
from school.credits.models import CreditEntry
from school.errors import Forbidden, Invalid, NotFound
from school.learning import activity
from school.learning.models import LessonProgress
from school.orgs import service as orgs
from school.orgs.models import Org, OrgClosure
from school.plans.models import StudyPlan
from school.plans.service import completed_members_stmt, members_of_plan_stmt, plan_lesson_ids
from school.reports.service import Table, scoped_trail

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
# Below this head-count one person moves a rate by 20 points or more: shown, never ranked.
MIN_MEMBERS = 5
# Longest period one may choose: comparisons are about recent participation, and the queries
# over the activity tables should stay bounded.
MAX_DAYS = 3 * 366

PERIODS = {
    "month": _l("This month"),
    "quarter": _l("This quarter"),
    "year": _l("This year"),
    "30d": _l("Last 30 days"),
    "90d": _l("Last 90 days"),
    "custom": _l("From – to"),
}
DEFAULT_PERIOD = "30d"

# The measures, in column order; each is a rate, never a raw total.
MEASURES = {
    "studied": _l("Studied (%)"),
    "hours": _l("Study hours per member"),
    "quota": _l("Met pro-rated quota (%)"),
    "completions": _l("Lessons completed per member"),
    "plan": _l("Plan completion (%)"),
}
PERCENT_MEASURES = ("studied", "quota", "plan")
SORTS = ("name", "members", *MEASURES)
DEFAULT_SORT = "studied"


@dataclass(frozen=True)
class Period:
    """Local calendar days first..last (inclusive); `last` never lies after today."""

    kind: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) as naive UTC times, as timestamps are stored."""

        def utc(day: date) -> datetime:
            return datetime.combine(day, time(), zone).astimezone(UTC).replace(tzinfo=None)

        return utc(self.first), utc(self.last + timedelta(days=1))


def _parse_day(raw: str) -> date:
    try:
        day = date.fromisoformat(raw.strip()[:10]) if len(raw.strip()) == 10 else None
    except ValueError:
        day = None
    if day is None or not 2000 <= day.year <= 2100:
        raise Invalid(_("Enter dates as YYYY-MM-DD, for example 2026-03-01."))
    return day


def parse_period(kind: str | None, raw_from: str | None, raw_to: str | None, today: date) -> Period:
    """The ?period=&from=&to= parameters as a Period ending today at the latest; Invalid if bad."""
    kind = (kind or "").strip() or ("custom" if (raw_from or raw_to) else DEFAULT_PERIOD)
    if kind not in PERIODS:
        raise Invalid(_("Unknown period. Choose one of the periods offered."))
    if kind == "month":
        return Period(kind, today.replace(day=1), today)
    if kind == "quarter":
        return Period(kind, date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today)
    if kind == "year":
        return Period(kind, date(today.year, 1, 1), today)
    if kind in ("30d", "90d"):
        return Period(kind, today - timedelta(days=int(kind[:-1]) - 1), today)
    if not raw_from or not raw_to:
        raise Invalid(_("Give both a start date and an end date."))
    first, last = _parse_day(raw_from), _parse_day(raw_to)
    if first > last:
        raise Invalid(_("The start date must not be after the end date."))
    if first > today:
        raise Invalid(_("The period cannot start in the future."))
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(_("Choose a period of at most %(days)d days.", days=MAX_DAYS))
    return Period(kind, first, min(last, today))


def prorated(quota: Decimal, period: Period) -> Decimal:
    """The yearly quota's share for the period: per calendar year, days in it ÷ days of that year."""
    total = Decimal(0)
    for year in range(period.first.year, period.last.year + 1):
        first = max(period.first, date(year, 1, 1))
        last = min(period.last, date(year, 12, 31))
        total += quota * Decimal((last - first).days + 1) / Decimal(366 if calendar.isleap(year) else 365)
    return total.quantize(CENT)


def period_quotas(period: Period) -> tuple[Decimal, Decimal]:
    """(member quota, organizer quota) pro-rated to the period, from the settings."""
    config = current_app.config
    return (
        prorated(Decimal(config["QUOTA_HOURS"]), period),
        prorated(Decimal(config["QUOTA_HOURS_ORGANIZER"]), period),
    )


@dataclass
class OrgFigures:
    """Counts for one organisation's whole subtree (or the members whose home is the node itself)."""

    org_id: int
    name: str
    members: int = 0
    studied: int = 0
    hours: Decimal = Decimal(0)
    met_quota: int = 0
    completions: int = 0
    plan_reached: int = 0
    plan_done: int = 0
    direct: bool = False
    rank: int | None = None

    @property
    def too_few(self) -> bool:
        return self.members < MIN_MEMBERS

    def _share(self, part: int, whole: int) -> Decimal | None:
        return (Decimal(100 * part) / whole).quantize(TENTH) if whole else None

    def value(self, measure: str, with_plan: bool = True) -> Decimal | None:
        """A measure as shown; None when it cannot be computed (no members, plan reaches nobody)."""
        if measure == "plan":
            return self._share(self.plan_done, self.plan_reached) if with_plan else None
        if not self.members:
            return None
        if measure == "studied":
            return self._share(self.studied, self.members)
        if measure == "quota":
            return self._share(self.met_quota, self.members)
        if measure == "hours":
            return (self.hours / self.members).quantize(CENT)
        if measure == "completions":
            return (Decimal(self.completions) / self.members).quantize(CENT)
        raise ValueError(measure)

    def add(self, other: "OrgFigures") -> None:
        for name in ("members", "studied", "hours", "met_quota", "completions", "plan_reached", "plan_done"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class MemberHours:
    user_id: int
    name: str
    hours: Decimal


@dataclass
class Comparison:
    org: Org
    period: Period
    trail: list[Org]
    quotas: tuple[Decimal, Decimal]
    sort: str
    measure: str  # what the chart shows and the ranks follow
    total: OrgFigures
    plan: StudyPlan | None = None
    rows: list[OrgFigures] = field(default_factory=list)  # display order: ranked, too few, direct
    members: list[MemberHours] | None = None  # personal ranking, only when the setting allows

    @property
    def has_children(self) -> bool:
        return any(not row.direct for row in self.rows)


def _ledger(start: datetime, end: datetime, members: sa.Select) -> sa.Subquery:
    """学时 per member written in [start, end), reversals included (a cancelled credit counts 0)."""
    return (
        sa.select(
            CreditEntry.user_id.label("user_id"),
            sa.func.round(sa.func.sum(CreditEntry.amount), 2).label("hours"),
        )
        .where(
            CreditEntry.created_at >= start, CreditEntry.created_at < end, CreditEntry.user_id.in_(members)
        )
        .group_by(CreditEntry.user_id)
        .subquery("ledger")
    )


def _organizers() -> sa.Subquery:
    return (
        sa.select(RoleGrant.user_id.label("user_id"))
        .where(RoleGrant.role == "organizer")
        .distinct()
        .subquery("organizers")
    )


def _quota_case(organizers: sa.Subquery, quotas: tuple[Decimal, Decimal]):
    member_quota, organizer_quota = quotas
    return sa.case(
        (organizers.c.user_id.is_not(None), sa.literal(organizer_quota, sa.Numeric(8, 2))),
        else_=sa.literal(member_quota, sa.Numeric(8, 2)),
    )


def figures(
    node_id: int, period: Period, quotas: tuple[Decimal, Decimal], plan: StudyPlan | None = None
) -> list[OrgFigures]:
    """Per child of node_id (over its whole subtree), plus a `direct` row for members whose home is
    the node itself: one GROUP BY over closure × active members × per-member aggregates."""
    start, end = period.bounds(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))
    members = sa.select(User.id).where(User.home_org_id.in_(orgs.subtree_ids(node_id)), User.active.is_(True))
    ledger = _ledger(start, end, members)
    studied = activity.studied_user_ids(start, end, members).subquery("studied")
    done = (
        sa.select(LessonProgress.user_id.label("user_id"), sa.func.count().label("n"))
        .where(
            LessonProgress.completed_at >= start,
            LessonProgress.completed_at < end,
            LessonProgress.user_id.in_(members),
        )
        .group_by(LessonProgress.user_id)
        .subquery("done")
    )
    organizers = _organizers()
    hours = sa.func.coalesce(ledger.c.hours, 0)
    columns = [
        OrgClosure.ancestor_id,
        sa.func.count(User.id),
        sa.func.count(studied.c.user_id),
        sa.func.coalesce(sa.func.sum(ledger.c.hours), 0),
        sa.func.sum(sa.case((hours >= _quota_case(organizers, quotas), 1), else_=0)),
        sa.func.coalesce(sa.func.sum(done.c.n), 0),
    ]
    stmt = (
        sa.select()
        .select_from(User)
        .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .outerjoin(studied, studied.c.user_id == User.id)
        .outerjoin(done, done.c.user_id == User.id)
        .outerjoin(organizers, organizers.c.user_id == User.id)
    )
    if plan is not None:
        reached = members_of_plan_stmt(plan).where(User.id.in_(members)).subquery("reached")
        finished = (
            completed_members_stmt(plan, plan_lesson_ids(plan), before=end)
            .where(LessonProgress.user_id.in_(members))  # the node's members, not all the plan reaches
            .subquery("finished")
        )
        stmt = stmt.outerjoin(reached, reached.c.id == User.id).outerjoin(
            finished, sa.and_(finished.c.user_id == User.id, reached.c.id.is_not(None))
        )
        columns += [sa.func.count(reached.c.id), sa.func.count(finished.c.user_id)]
    children = sa.select(Org.id).where(Org.parent_id == node_id)
    stmt = (
        stmt.add_columns(*columns)
        .where(
            User.active.is_(True),
            sa.or_(
                OrgClosure.ancestor_id.in_(children),
                sa.and_(OrgClosure.ancestor_id == node_id, OrgClosure.distance == 0),
            ),
        )
        .group_by(OrgClosure.ancestor_id)
    )
    found = {}
    for ancestor, *counts in db.session.execute(stmt):
        n, active, total, met, completions, *plan_counts = counts
        found[ancestor] = dict(
            members=n,
            studied=active,
            hours=Decimal(str(total)).quantize(CENT),
            met_quota=met or 0,
            completions=int(completions),
            plan_reached=plan_counts[0] if plan_counts else 0,
            plan_done=plan_counts[1] if plan_counts else 0,
        )
    rows = []
    for child in db.session.execute(
        sa.select(Org.id, Org.name, Org.closed_at)
        .where(Org.parent_id == node_id)
        .order_by(Org.position, Org.id)
    ):
        if child.closed_at is not None and child.id not in found:
            continue  # a closed organisation without members is history, not a sibling
        rows.append(OrgFigures(child.id, child.name, **found.get(child.id, {})))
    if node_id in found:
        rows.append(OrgFigures(node_id, "", **found[node_id], direct=True))
    return rows


def member_hours(org_id: int, period: Period) -> list[MemberHours]:
    """Active members whose home is org_id, by 学时 written in the period (most first), then name."""
    start, end = period.bounds(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))
    members = sa.select(User.id).where(User.home_org_id == org_id, User.active.is_(True))
    ledger = _ledger(start, end, members)
    hours = sa.func.coalesce(ledger.c.hours, 0)
    stmt = (
        sa.select(User.id, User.display_name, hours)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .where(User.home_org_id == org_id, User.active.is_(True))
        .order_by(hours.desc(), User.display_name, User.id)
    )
    return [
        MemberHours(uid, name, Decimal(str(h)).quantize(CENT)) for uid, name, h in db.session.execute(stmt)
    ]


def check_sort(raw: str | None, plan: StudyPlan | None) -> str:
    """The ?sort= column; the plan column falls back to the default when no plan is chosen."""
    sort = (raw or "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        raise Invalid(_("Unknown column to sort by."))
    if sort == "plan" and plan is None:
        return DEFAULT_SORT
    return sort


def _order(rows: list[OrgFigures], sort: str, measure: str, with_plan: bool) -> list[OrgFigures]:
    """Ranked orgs (by `measure`, ties share a rank), then those too small to rank, then the
    node's own members; each group in the `sort` column's order (names A–Z, figures high to low)."""

    def key(row: OrgFigures):
        if sort == "name":
            return (0, row.name)
        if sort == "members":
            return (0, -row.members)
        value = row.value(sort, with_plan)
        return (1, 0) if value is None else (0, -value)

    ranked = [r for r in rows if not r.direct and not r.too_few]
    by_measure = sorted(ranked, key=lambda r: -(r.value(measure, with_plan) or Decimal(-1)))
    previous, rank = None, 0
    for n, row in enumerate(by_measure, start=1):
        value = row.value(measure, with_plan)
        if value is None:
            continue  # nothing to rank by (a plan that reaches nobody there)
        if value != previous:
            rank, previous = n, value
        row.rank = rank
    small = [r for r in rows if not r.direct and r.too_few]
    direct = [r for r in rows if r.direct]
    return sorted(ranked, key=key) + sorted(small, key=key) + direct


def resolve_plan(viewer: User, node: Org, plan_id: int) -> StudyPlan:
    """A plan the viewer may compare by: one of their subtree's, or one pushed from above the node
    to its members (they are the viewer's members); else NotFound/Forbidden."""
    plan = db.session.get(StudyPlan, plan_id)
    if plan is None:
        raise NotFound(_("No such study plan."))
    above = sa.select(OrgClosure.ancestor_id).where(
        OrgClosure.descendant_id == node.id, OrgClosure.ancestor_id == plan.org_id
    )
    if not orgs.in_scope(viewer, plan.org_id) and db.session.scalar(above) is None:
        raise Forbidden(_("You can only compare by study plans of the organisations you manage."))
    return plan


def plan_choices(node: Org) -> list[StudyPlan]:
    """Plans that reach members of the node: those of its ancestors, itself and below, newest first."""
    related = sa.union(
        sa.select(OrgClosure.ancestor_id).where(OrgClosure.descendant_id == node.id),
        sa.select(OrgClosure.descendant_id).where(OrgClosure.ancestor_id == node.id),
    )
    stmt = (
        sa.select(StudyPlan)
        .where(StudyPlan.org_id.in_(related))
        .order_by(StudyPlan.closed_at.is_not(None), StudyPlan.due_on.desc(), StudyPlan.id.desc())
        .limit(50)
    )
    return list(db.session.scalars(stmt))


def compare(
    node_id: int,
    period: Period,
    viewer: User,
    plan: StudyPlan | None = None,
    sort: str = DEFAULT_SORT,
    personal: bool = False,
) -> Comparison:
    """The children of node_id side by side over the period. The caller has checked the scope;
    `personal` (the PERSONAL_RANKINGS setting) adds a branch's members by 学时."""
    node = orgs.get_org(node_id)
    quotas = period_quotas(period)
    rows = figures(node.id, period, quotas, plan)
    total = OrgFigures(node.id, node.name)
    for row in rows:
        total.add(row)
    measure = sort if sort in MEASURES else DEFAULT_SORT
    result = Comparison(node, period, scoped_trail(node, viewer), quotas, sort, measure, total, plan)
    result.rows = _order(rows, sort, measure, plan is not None)
    if personal and not result.has_children:
        result.members = member_hours(node.id, period)
    return result


def shown(value: Decimal | int | None) -> Decimal | int | str:
    """A figure as a cell: the number, or a dash when it cannot be computed."""
    return "—" if value is None else value


def measure_columns(result: Comparison) -> list[str]:
    return [m for m in MEASURES if m != "plan" or result.plan is not None]


def tables(result: Comparison) -> list[Table]:
    """The comparison as the tables the page shows and the exports write, cell for cell."""
    measures = measure_columns(result)
    with_plan = result.plan is not None
    headers = [_("Rank"), _("Organisation"), _("Members"), *[str(MEASURES[m]) for m in measures]]
    rows, links = [], []
    for row in [*result.rows, result.total]:
        if row is result.total:
            name, rank = _("Total"), ""
        elif row.direct:
            name, rank = _("Directly in %(name)s", name=result.org.name), ""
        else:
            name = row.name
            rank = _("Too few to compare") if row.too_few else shown(row.rank)
        rows.append([rank, name, row.members, *[shown(row.value(m, with_plan)) for m in measures]])
        links.append(None if row.direct or row is result.total else row.org_id)
    out = [Table(_("Organisations compared"), headers, rows, links)]
    if result.members is not None:
        member_rows = [[m.name, m.hours] for m in result.members]
        out.append(
            Table(
                _("Members by study hours"),
                [_("Member"), _("Study hours in the period")],
                member_rows,
                [None] * len(member_rows),
            )
        )
    return out


def bars(result: Comparison) -> list[tuple[OrgFigures, Decimal | None, Decimal]]:
    """(row, value, bar length 0–1) for the chart of the chosen measure, organisations only."""
    with_plan = result.plan is not None
    rows = [r for r in result.rows if not r.direct]
    values = [r.value(result.measure, with_plan) for r in rows]
    if result.measure in PERCENT_MEASURES:
        top = Decimal(100)
    else:
        top = max([v for v in values if v is not None] or [Decimal(0)])
    return [
        (row, value, (value / top) if value is not None and top > 0 else Decimal(0))
        for row, value in zip(rows, values, strict=True)
    ]
