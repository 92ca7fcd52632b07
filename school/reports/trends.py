"""Week-by-week trends: plan completions (cumulative) and 学时 credited, on the site's calendar.

SQL groups by local day (at most a year of rows); weeks (Monday to Sunday) are summed here.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.credits.models import CreditEntry
from school.learning.models import LessonProgress
from school.orgs import service as orgs
from school.plans.models import StudyPlan
from school.plans.service import members_of_plan_stmt
from school.reports.service import CENT, Table


@dataclass
class Week:
    starts_on: date
    value: Decimal | int
    total: Decimal | int


def _offset_minutes() -> int:
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    offset = datetime.now(UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def local_date(column) -> sa.ColumnElement:
    """The site-local calendar date of a stored naive-UTC time, in SQL."""
    minutes = _offset_minutes()
    if db.engine.dialect.name == "postgresql":
        return sa.cast(column + sa.text(f"interval '{minutes} minutes'"), sa.Date)
    return sa.func.date(column, f"{minutes:+d} minutes")


def _day(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weeks(per_day: dict[date, Decimal | int], first: date, last: date, zero) -> list[Week]:
    """Every week from first's to last's, with the week's sum and the running total."""
    sums: dict[date, Decimal | int] = {}
    for day, value in per_day.items():
        sums[monday(day)] = sums.get(monday(day), zero) + value
    weeks, total = [], zero
    week = monday(min([first, *per_day]))
    end = monday(max([last, *per_day]))
    while week <= end:
        value = sums.get(week, zero)
        total += value
        weeks.append(Week(week, value, total))
        week += timedelta(days=7)
    return weeks


def plan_weeks(plan: StudyPlan, org_id: int, lesson_ids: list[int], today: date) -> list[Week]:
    """Members of org_id's subtree who completed the whole plan, by the week they finished it."""
    if not lesson_ids:
        return []
    reached = members_of_plan_stmt(plan).whereclause
    members = sa.select(User.id).where(reached, User.home_org_id.in_(orgs.subtree_ids(org_id)))
    finished = (
        sa.select(sa.func.max(LessonProgress.completed_at).label("at"))
        .where(
            LessonProgress.lesson_id.in_(lesson_ids),
            LessonProgress.completed_at.is_not(None),
            LessonProgress.user_id.in_(members),
        )
        .group_by(LessonProgress.user_id)
        .having(sa.func.count(LessonProgress.completed_at) >= len(lesson_ids))
        .subquery()
    )
    day = local_date(finished.c.at)
    per_day = {_day(d): n for d, n in db.session.execute(sa.select(day, sa.func.count()).group_by(day))}
    last = min(today, plan.due_on) if today >= plan.starts_on else plan.starts_on
    return _weeks(per_day, plan.starts_on, last, 0)


def hours_weeks(org_id: int, year: int, today: date) -> list[Week]:
    """学时 credited to active members of org_id's subtree in a study year, by week."""
    members = sa.select(User.id).where(User.home_org_id.in_(orgs.subtree_ids(org_id)), User.active.is_(True))
    day = local_date(CreditEntry.created_at)
    stmt = (
        sa.select(day, sa.func.sum(CreditEntry.amount))
        .where(CreditEntry.year == year, CreditEntry.user_id.in_(members))
        .group_by(day)
    )
    per_day = {_day(d): Decimal(str(v)).quantize(CENT) for d, v in db.session.execute(stmt)}
    first = date(year, 1, 1)
    last = min(today, date(year, 12, 31)) if today.year >= year else first
    if per_day:
        first = max(first, monday(min(per_day)))  # a short year starts at its first credit
    return _weeks(per_day, first, last, Decimal("0.00"))


def plan_trend_table(weeks: list[Week]) -> Table:
    headers = [_("Week of"), _("Completed that week"), _("Completed in all")]
    rows = [[w.starts_on.isoformat(), w.value, w.total] for w in weeks]
    return Table(_("Completions by week"), headers, rows, [None] * len(rows))


def hours_trend_table(weeks: list[Week]) -> Table:
    headers = [_("Week of"), _("Hours credited"), _("Hours in all")]
    rows = [[w.starts_on.isoformat(), w.value, w.total] for w in weeks]
    return Table(_("Study hours by week"), headers, rows, [None] * len(rows))
