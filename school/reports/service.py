"""Completion reports for organisers: 学时 compliance rolled up the organisation tree.

Every figure comes from set-based SQL: one GROUP BY over the closure table, the members and a
per-member ledger sum for the children of a node, and one query for a branch's members. The
page and both exports are built from the same `hours_table()`, so they cannot disagree.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import db
from school.accounts.models import RoleGrant, User
from school.credits.models import CreditEntry
from school.errors import Invalid
from school.orgs import service as orgs
from school.orgs.models import Org, OrgClosure

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
# Member statuses on a branch's list, in the order people scan for them.
REACHED, SHORT, IDLE = "reached", "short", "idle"


@dataclass
class OrgHours:
    """学时 compliance of one organisation's whole subtree (or of its own direct members)."""

    org_id: int
    name: str
    members: int = 0
    reached: int = 0
    idle: int = 0
    hours: Decimal = Decimal(0)  # total 学时 of the members, for the average
    last_at: datetime | None = None
    direct: bool = False  # members whose home is the node itself, not one of its children

    @property
    def rate(self) -> Decimal:
        """Share of members who reached their quota, in percent to one decimal."""
        if not self.members:
            return Decimal("0.0")
        return (Decimal(100 * self.reached) / self.members).quantize(TENTH)

    @property
    def average(self) -> Decimal:
        return (self.hours / self.members).quantize(CENT) if self.members else Decimal("0.00")

    def add(self, other: "OrgHours") -> None:
        self.members += other.members
        self.reached += other.reached
        self.idle += other.idle
        self.hours += other.hours
        if other.last_at and (self.last_at is None or other.last_at > self.last_at):
            self.last_at = other.last_at


@dataclass
class MemberHours:
    user_id: int
    name: str
    hours: Decimal
    quota: Decimal
    last_at: datetime | None

    @property
    def status(self) -> str:
        if self.hours >= self.quota:
            return REACHED
        return SHORT if self.hours > 0 else IDLE


@dataclass
class HoursReport:
    org: Org
    year: int
    trail: list[Org]  # breadcrumbs from the viewer's top node down to org
    total: OrgHours
    children: list[OrgHours] = field(default_factory=list)
    members: list[MemberHours] = field(default_factory=list)


@dataclass
class Table:
    """What the page shows and the exports write: headers and display values, cell for cell."""

    title: str
    headers: list[str]
    rows: list[list]
    links: list[int | None]  # org id to drill down to, per row (None: no link)


def check_year(raw: str | None, default: int) -> int:
    """The ?year= parameter, or default; Invalid when it is not a plausible year."""
    if raw in (None, ""):
        return default
    if not str(raw).isdigit() or not 2000 <= int(raw) <= 2100:
        raise Invalid(_("Choose a year between 2000 and 2100."))
    return int(raw)


def quotas() -> tuple[Decimal, Decimal]:
    """(member quota, organizer quota) from the settings."""
    config = current_app.config
    return Decimal(config["QUOTA_HOURS"]), Decimal(config["QUOTA_HOURS_ORGANIZER"])


def _member_figures(year: int, members: sa.Select | None):
    """Columns per member of `members` (a SELECT of user ids; None: everyone): 学时, quota, last.

    The ledger is summed per member first (only for these members), then joined: the aggregate
    before the join, as measured in FIELD-NOTES.
    """
    member_quota, organizer_quota = quotas()
    ledger = (
        sa.select(
            CreditEntry.user_id.label("user_id"),
            sa.func.round(sa.func.sum(CreditEntry.amount), 2).label("hours"),
            sa.func.max(CreditEntry.created_at).label("last_at"),
        )
        .where(CreditEntry.year == year, *([] if members is None else [CreditEntry.user_id.in_(members)]))
        .group_by(CreditEntry.user_id)
        .subquery("ledger")
    )
    organizers = (
        sa.select(RoleGrant.user_id.label("user_id"))
        .where(RoleGrant.role == "organizer")
        .distinct()
        .subquery("organizers")
    )
    hours = sa.func.coalesce(ledger.c.hours, 0)
    quota = sa.case(
        (organizers.c.user_id.is_not(None), sa.literal(organizer_quota, sa.Numeric(6, 2))),
        else_=sa.literal(member_quota, sa.Numeric(6, 2)),
    )
    return ledger, organizers, hours, quota


def _active_members(org_id: int) -> sa.Select:
    return sa.select(User.id).where(User.home_org_id.in_(orgs.subtree_ids(org_id)), User.active.is_(True))


def rollup(org_id: int, year: int, root: bool = False) -> list[OrgHours]:
    """Per child of org_id (over each child's whole subtree), plus a `direct` row for members
    whose home is org_id itself: one GROUP BY over closure × members × per-member ledger.

    At a root the ledger is summed for everyone: restricting it to the subtree would only cost.
    """
    ledger, organizers, hours, quota = _member_figures(year, None if root else _active_members(org_id))
    children = sa.select(Org.id).where(Org.parent_id == org_id)
    stmt = (
        sa.select(
            OrgClosure.ancestor_id,
            sa.func.count(User.id),
            sa.func.sum(sa.case((hours >= quota, 1), else_=0)),
            sa.func.sum(sa.case((hours <= 0, 1), else_=0)),
            sa.func.coalesce(sa.func.sum(ledger.c.hours), 0),
            sa.func.max(ledger.c.last_at),
        )
        .select_from(User)
        .join(OrgClosure, OrgClosure.descendant_id == User.home_org_id)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .outerjoin(organizers, organizers.c.user_id == User.id)
        .where(
            User.active.is_(True),
            sa.or_(
                OrgClosure.ancestor_id.in_(children),
                sa.and_(OrgClosure.ancestor_id == org_id, OrgClosure.distance == 0),
            ),
        )
        .group_by(OrgClosure.ancestor_id)
    )
    found = {}
    for ancestor, members, reached, idle, total, last_at in db.session.execute(stmt):
        found[ancestor] = (members, reached or 0, idle or 0, Decimal(str(total)).quantize(CENT), last_at)
    rows = []
    for child in db.session.execute(
        sa.select(Org.id, Org.name).where(Org.parent_id == org_id).order_by(Org.position, Org.id)
    ):
        rows.append(OrgHours(child.id, child.name, *found.get(child.id, ())))
    if org_id in found:
        rows.append(OrgHours(org_id, "", *found[org_id], direct=True))
    return rows


def member_hours(org_id: int, year: int) -> list[MemberHours]:
    """Active members whose home is org_id, each with 学时, quota and last study, by name."""
    members = sa.select(User.id).where(User.home_org_id == org_id, User.active.is_(True))
    ledger, organizers, hours, quota = _member_figures(year, members)
    stmt = (
        sa.select(User.id, User.display_name, hours, quota, ledger.c.last_at)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .outerjoin(organizers, organizers.c.user_id == User.id)
        .where(User.home_org_id == org_id, User.active.is_(True))
        .order_by(User.display_name, User.id)
    )
    return [
        MemberHours(uid, name, Decimal(str(h)).quantize(CENT), Decimal(str(q)).quantize(CENT), last)
        for uid, name, h, q, last in db.session.execute(stmt)
    ]


def scoped_trail(node: Org, viewer: User) -> list[Org]:
    """Breadcrumbs from the viewer's highest node above (or at) `node` down to it: never above."""
    trail = orgs.ancestors(node)
    visible = orgs.visible_org_ids(viewer)
    if visible is None:
        return trail
    allowed = set(db.session.scalars(visible.where(OrgClosure.descendant_id.in_([o.id for o in trail]))))
    for i, org in enumerate(trail):
        if org.id in allowed:
            return trail[i:]
    return []


def hours_report(org_id: int, year: int, viewer: User) -> HoursReport:
    """学时 compliance for org_id's subtree in a year. The caller has checked the viewer's scope."""
    node = orgs.get_org(org_id)
    children = rollup(node.id, year, root=node.parent_id is None)
    total = OrgHours(node.id, node.name)
    for row in children:
        total.add(row)
    report = HoursReport(node, year, scoped_trail(node, viewer), total, children)
    # A leaf (a branch) lists its members; so does any node with members of its own.
    if not any(not row.direct for row in children) or any(row.direct for row in children):
        report.members = member_hours(node.id, year)
    return report


def local_day(moment: datetime | None) -> str:
    """The site-local calendar day of a stored (naive UTC) time, as 2026-11-27; "" for none."""
    if moment is None:
        return ""
    if isinstance(moment, str):  # SQLite hands back text from an aggregate in some versions
        moment = datetime.fromisoformat(moment)
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    day: date = moment.replace(tzinfo=UTC).astimezone(zone).date()
    return day.isoformat()


def status_label(status: str) -> str:
    return {REACHED: _("Reached"), SHORT: _("Not yet reached"), IDLE: _("Not studied")}[status]


def hours_tables(report: HoursReport) -> list[Table]:
    """The report as the tables the page shows and the exports write."""
    tables = []
    if any(not row.direct for row in report.children):
        headers = [
            _("Organisation"),
            _("Members"),
            _("Reached quota"),
            _("Rate (%)"),
            _("Average hours"),
            _("Not studied"),
            _("Last study"),
        ]
        rows, links = [], []
        for row in [*report.children, report.total]:
            if row is report.total:
                name = _("Total")
            elif row.direct:
                name = _("Directly in %(name)s", name=report.org.name)
            else:
                name = row.name
            rows.append(
                [name, row.members, row.reached, row.rate, row.average, row.idle, local_day(row.last_at)]
            )
            links.append(None if row.direct or row is report.total else row.org_id)
        tables.append(Table(_("By organisation"), headers, rows, links))
    if report.members:
        headers = [_("Member"), _("Hours"), _("Quota"), _("Status"), _("Last study")]
        rows = [
            [m.name, m.hours, m.quota, status_label(m.status), local_day(m.last_at)] for m in report.members
        ]
        tables.append(Table(_("Members"), headers, rows, [None] * len(rows)))
    return tables
