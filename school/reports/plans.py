"""Plan completion report: who a study plan reaches, and how far they are, rolled up the tree.

Like the 学时 report, every figure is one set-based query: per-member figures (lessons of the plan
completed, coverage, last study, 学时 in the plan's window) are aggregated first, then joined to
the members and the closure table and grouped by the children of the chosen node. The page and
the exports are built from the same `plan_tables()`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.credits.models import CreditEntry
from school.errors import Forbidden, NotFound
from school.learning.models import LessonProgress
from school.orgs import service as orgs
from school.orgs.models import Org, OrgClosure
from school.plans.models import StudyPlan
from school.plans.service import members_of_plan_stmt, plan_lesson_ids
from school.reports.service import CENT, TENTH, Table, local_day, scoped_trail

# Member statuses, in the order people chase them.
DONE, DOING, NOT_STARTED, OVERDUE = "done", "doing", "not_started", "overdue"


@dataclass
class OrgPlan:
    """A plan's figures over one organisation's subtree (or its own direct members)."""

    org_id: int
    name: str
    assigned: int = 0
    completed: int = 0
    started: int = 0  # members with any progress on the plan's lessons
    coverage: float = 0.0  # sum over members of their average coverage (0–1), for the mean
    hours: Decimal = Decimal(0)
    hours_reached: int = 0
    last_at: datetime | None = None
    direct: bool = False

    @property
    def rate(self) -> Decimal:
        """Completion rate in percent to one decimal."""
        if not self.assigned:
            return Decimal("0.0")
        return (Decimal(100 * self.completed) / self.assigned).quantize(TENTH)

    @property
    def average_coverage(self) -> Decimal:
        if not self.assigned:
            return Decimal("0.0")
        return (Decimal(str(100 * self.coverage)) / self.assigned).quantize(TENTH)

    @property
    def not_started(self) -> int:
        return self.assigned - self.started

    @property
    def average_hours(self) -> Decimal:
        return (self.hours / self.assigned).quantize(CENT) if self.assigned else Decimal("0.00")

    def add(self, other: "OrgPlan") -> None:
        self.assigned += other.assigned
        self.completed += other.completed
        self.started += other.started
        self.coverage += other.coverage
        self.hours += other.hours
        self.hours_reached += other.hours_reached
        if other.last_at and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at


@dataclass
class MemberPlanRow:
    user_id: int
    name: str
    completed: int
    lessons: int
    coverage: float  # 0–1
    hours: Decimal
    last_at: datetime | None
    status: str


@dataclass
class PlanReport:
    plan: StudyPlan
    org: Org
    trail: list[Org]
    lessons: int
    today: date
    total: OrgPlan
    children: list[OrgPlan] = field(default_factory=list)
    members: list[MemberPlanRow] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return self.today > self.plan.due_on

    @property
    def with_hours(self) -> bool:
        return self.plan.required_hours is not None and self.plan.required_hours > 0


def report_node(viewer: User, plan_id: int, raw_org_id: str | None) -> tuple[StudyPlan, int]:
    """The plan and the node to report on, checked: the node lies in the plan's subtree and in the
    viewer's. Without ?org_id=, the plan's org, or the viewer's own node inside the plan's subtree."""
    plan = db.session.get(StudyPlan, plan_id)
    if plan is None:
        raise NotFound()
    in_plan = set(db.session.scalars(orgs.subtree_ids(plan.org_id)))
    if raw_org_id in (None, ""):
        if orgs.in_scope(viewer, plan.org_id):
            return plan, plan.org_id
        mine = [org_id for org_id in viewer.organizer_org_ids if org_id in in_plan]
        if not mine:
            raise Forbidden(_("This study plan is not one of the organisations you manage."))
        return plan, min(mine)
    if not str(raw_org_id).isdigit():
        raise Forbidden(_("You may only see reports of the organisations you manage."))
    org_id = int(raw_org_id)
    if not orgs.in_scope(viewer, org_id):
        raise Forbidden(_("You may only see reports of the organisations you manage."))
    if org_id not in in_plan:
        raise NotFound(_("This organisation is not part of the study plan."))
    return plan, org_id


def plan_window(plan: StudyPlan) -> tuple[datetime, datetime]:
    """The plan's start and the end of its deadline day, as naive UTC (how times are stored)."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])

    def utc(day: date) -> datetime:
        return datetime.combine(day, time(), zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    return utc(plan.starts_on), utc(plan.due_on + timedelta(days=1))


def _progress(lesson_ids: list[int], members: sa.Select | None):
    """Per member: lessons of the plan completed, summed coverage (completed lessons count 1), last
    study; over `members` (a SELECT of user ids; None: everyone)."""
    coverage = sa.case(
        (LessonProgress.completed_at.is_not(None), 1.0),
        (LessonProgress.duration <= 0, 0.0),
        (LessonProgress.covered_seconds >= LessonProgress.duration, 1.0),
        else_=LessonProgress.covered_seconds / LessonProgress.duration,
    )
    conditions = [LessonProgress.lesson_id.in_(lesson_ids or [-1])]
    if members is not None:
        conditions.append(LessonProgress.user_id.in_(members))
    return (
        sa.select(
            LessonProgress.user_id.label("user_id"),
            sa.func.count(LessonProgress.completed_at).label("done"),
            sa.func.sum(coverage).label("coverage"),
            sa.func.max(LessonProgress.updated_at).label("last_at"),
        )
        .where(*conditions)
        .group_by(LessonProgress.user_id)
        .subquery("progress")
    )


def _ledger(plan: StudyPlan, members: sa.Select | None):
    """Per member: 学时 credited between the plan's start and the end of its deadline day."""
    begin, end = plan_window(plan)
    conditions = [CreditEntry.created_at >= begin, CreditEntry.created_at < end]
    if members is not None:
        conditions.append(CreditEntry.user_id.in_(members))
    return (
        sa.select(CreditEntry.user_id.label("user_id"), sa.func.sum(CreditEntry.amount).label("hours"))
        .where(*conditions)
        .group_by(CreditEntry.user_id)
        .subquery("ledger")
    )


def _reached(plan: StudyPlan) -> sa.ColumnElement[bool]:
    """The plan's own condition on User (active, in its subtree, its targets), without a subquery
    per member: members_of_plan_stmt's WHERE applied to the outer query's users."""
    return members_of_plan_stmt(plan).whereclause


def _scope_members(plan: StudyPlan, org_id: int) -> sa.Select:
    return sa.select(User.id).where(_reached(plan), User.home_org_id.in_(orgs.subtree_ids(org_id)))


def rollup(plan: StudyPlan, org_id: int, lesson_ids: list[int], root: bool = False) -> list[OrgPlan]:
    """Per child of org_id (its whole subtree), plus a `direct` row for members whose home is
    org_id itself: one GROUP BY over closure × reached members × per-member figures.

    At the plan's own org the per-member figures are computed for everyone who studied the plan's
    lessons: restricting them first would only cost.
    """
    members = None if root else _scope_members(plan, org_id)
    progress = _progress(lesson_ids, members)
    with_hours = plan.required_hours is not None and plan.required_hours > 0
    ledger = _ledger(plan, members) if with_hours else None
    n = len(lesson_ids)
    done = sa.case((sa.and_(sa.literal(n) > 0, progress.c.done >= n), 1), else_=0)
    columns = [
        OrgClosure.ancestor_id,
        sa.func.count(User.id),
        sa.func.sum(done),
        sa.func.count(progress.c.user_id),
        sa.func.coalesce(sa.func.sum(progress.c.coverage), 0),
        sa.func.max(progress.c.last_at),
    ]
    stmt = (
        sa.select()
        .select_from(User)
        .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
        .outerjoin(progress, progress.c.user_id == User.id)
    )
    if ledger is not None:
        hours = sa.func.coalesce(ledger.c.hours, 0)
        required = sa.literal(plan.required_hours, sa.Numeric(6, 2))
        columns += [
            sa.func.coalesce(sa.func.sum(ledger.c.hours), 0),
            sa.func.sum(sa.case((hours >= required, 1), else_=0)),
        ]
        stmt = stmt.outerjoin(ledger, ledger.c.user_id == User.id)
    children = sa.select(Org.id).where(Org.parent_id == org_id)
    stmt = (
        stmt.add_columns(*columns)
        .where(
            _reached(plan),
            sa.or_(
                OrgClosure.ancestor_id.in_(children),
                sa.and_(OrgClosure.ancestor_id == org_id, OrgClosure.distance == 0),
            ),
        )
        .group_by(OrgClosure.ancestor_id)
    )
    found = {}
    for row in db.session.execute(stmt):
        ancestor, assigned, completed, started, coverage, last_at = row[:6]
        hours, reached = (
            (Decimal(str(row[6])).quantize(CENT), row[7] or 0) if ledger is not None else (Decimal(0), 0)
        )
        found[ancestor] = dict(
            assigned=assigned,
            completed=completed or 0,
            started=started,
            coverage=float(coverage or 0) / n if n else 0.0,
            hours=hours,
            hours_reached=reached,
            last_at=_as_time(last_at),
        )
    rows = []
    for child in db.session.execute(
        sa.select(Org.id, Org.name).where(Org.parent_id == org_id).order_by(Org.position, Org.id)
    ):
        rows.append(OrgPlan(child.id, child.name, **found.get(child.id, {})))
    if org_id in found:
        rows.append(OrgPlan(org_id, "", **found[org_id], direct=True))
    return rows


def _as_time(value) -> datetime | None:
    if isinstance(value, str):  # SQLite hands back text from an aggregate in some versions
        return datetime.fromisoformat(value)
    return value


def member_rows(plan: StudyPlan, org_id: int, lesson_ids: list[int], today: date) -> list[MemberPlanRow]:
    """Reached members whose home is org_id, each with their progress and status, by name."""
    members = sa.select(User.id).where(_reached(plan), User.home_org_id == org_id)
    progress = _progress(lesson_ids, members)
    with_hours = plan.required_hours is not None and plan.required_hours > 0
    ledger = _ledger(plan, members) if with_hours else None
    columns = [User.id, User.display_name, progress.c.done, progress.c.coverage, progress.c.last_at]
    stmt = sa.select(*columns).outerjoin(progress, progress.c.user_id == User.id)
    if ledger is not None:
        stmt = stmt.add_columns(ledger.c.hours).outerjoin(ledger, ledger.c.user_id == User.id)
    stmt = stmt.where(_reached(plan), User.home_org_id == org_id).order_by(User.display_name, User.id)
    n = len(lesson_ids)
    rows = []
    for row in db.session.execute(stmt):
        uid, name, done, coverage, last_at = row[:5]
        hours = Decimal(str(row[5] or 0)).quantize(CENT) if ledger is not None else Decimal(0)
        done = done or 0
        if n and done >= n:
            status = DONE
        elif today > plan.due_on:
            status = OVERDUE
        elif last_at is not None:
            status = DOING
        else:
            status = NOT_STARTED
        rows.append(
            MemberPlanRow(
                uid, name, done, n, float(coverage or 0) / n if n else 0.0, hours, _as_time(last_at), status
            )
        )
    return rows


def plan_report(plan: StudyPlan, org_id: int, viewer: User, today: date) -> PlanReport:
    """A plan's completion for org_id's subtree. The caller has checked the viewer's scope."""
    node = orgs.get_org(org_id)
    lesson_ids = plan_lesson_ids(plan)
    children = rollup(plan, node.id, lesson_ids, root=node.id == plan.org_id)
    total = OrgPlan(node.id, node.name)
    for row in children:
        total.add(row)
    report = PlanReport(plan, node, scoped_trail(node, viewer), len(lesson_ids), today, total, children)
    if not any(not row.direct for row in children) or any(row.direct for row in children):
        report.members = member_rows(plan, node.id, lesson_ids, today)
    return report


def status_label(status: str) -> str:
    return {
        DONE: _("Completed"),
        DOING: _("In progress"),
        NOT_STARTED: _("Not started"),
        OVERDUE: _("Overdue"),
    }[status]


def percent(share: float) -> Decimal:
    return Decimal(str(100 * share)).quantize(TENTH)


def plan_tables(report: PlanReport) -> list[Table]:
    """The report as the tables the page shows and the exports write."""
    from school.formatting import hours as fmt_hours

    tables = []
    with_hours = report.with_hours
    if any(not row.direct for row in report.children):
        headers = [
            _("Organisation"),
            _("Members assigned"),
            _("Completed"),
            _("Completion rate (%)"),
            _("Average coverage (%)"),
            _("Not started"),
        ]
        if with_hours:
            headers += [
                _("Average hours"),
                _("Reached %(hours)s hours", hours=fmt_hours(report.plan.required_hours)),
            ]
        headers.append(_("Last study"))
        rows, links = [], []
        for row in [*report.children, report.total]:
            if row is report.total:
                name = _("Total")
            elif row.direct:
                name = _("Directly in %(name)s", name=report.org.name)
            else:
                name = row.name
            cells = [name, row.assigned, row.completed, row.rate, row.average_coverage, row.not_started]
            if with_hours:
                cells += [row.average_hours, row.hours_reached]
            cells.append(local_day(row.last_at))
            rows.append(cells)
            links.append(None if row.direct or row is report.total else row.org_id)
        tables.append(Table(_("By organisation"), headers, rows, links))
    if report.members:
        headers = [_("Member"), _("Lessons completed"), _("Coverage (%)")]
        if with_hours:
            headers.append(_("Hours"))
        headers += [_("Status"), _("Last study")]
        rows = []
        for m in report.members:
            cells = [m.name, f"{m.completed}/{m.lessons}", percent(m.coverage)]
            if with_hours:
                cells.append(m.hours)
            cells += [status_label(m.status), local_day(m.last_at)]
            rows.append(cells)
        tables.append(Table(_("Members"), headers, rows, [None] * len(rows)))
    return tables
