"""Load plans.yaml (学习计划 pushed to an org subtree) after the courses it names, idempotently.

Plans match by code. Dates are YYYY-MM-DD, or `+14d` / `-7d` counted from the day of loading, so
that the demo always has a plan due soon (such a plan's dates move when it is loaded on another day).
"""

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlalchemy as sa
import yaml

from school import db
from school.content.service import Summary, read_text
from school.courses.models import Course
from school.errors import Invalid
from school.orgs.models import Org
from school.plans import service as plans

RELATIVE = re.compile(r"^([+-]\d{1,4})d$")
CODE = re.compile(r"^[a-z0-9-]{1,64}$")


def parse_day(value, today: date) -> date | None:
    """A date from YAML: a date, YYYY-MM-DD, or ±N days from today (`+14d`); None if neither."""
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    match = RELATIVE.match(text)
    if match:
        return today + timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def read_plans(path: Path, today: date, org_ids: dict[str, int], course_ids: dict[str, int]):
    """Parse and check plans.yaml: (rows, errors)."""
    data = yaml.safe_load(read_text(path)) or {}
    raw_plans = data.get("plans") if isinstance(data, dict) else None
    if not isinstance(raw_plans, list):
        return [], ["plans.yaml: a list under `plans:` is needed"]
    rows, errors, seen = [], [], set()
    for i, raw in enumerate(raw_plans, 1):
        if not isinstance(raw, dict):
            errors.append(f"plans.yaml: plan {i} is not a mapping")
            continue
        code = str(raw.get("code") or "")
        where = f"plans.yaml: plan {i} ({code or '?'})"
        if not CODE.match(code):
            errors.append(f"{where}: code must be [a-z0-9-], 1 to 64 characters")
        elif code in seen:
            errors.append(f"{where}: code appears twice")
        seen.add(code)
        title = " ".join(str(raw.get("title") or "").split())
        if not title or len(title) > 120:
            errors.append(f"{where}: a title of 1 to 120 characters is needed")
        org = str(raw.get("org") or "")
        if org not in org_ids:
            errors.append(f"{where}: unknown org {org!r}")
        start, deadline = parse_day(raw.get("start"), today), parse_day(raw.get("deadline"), today)
        if start is None or deadline is None:
            errors.append(f"{where}: start and deadline must be YYYY-MM-DD or +Nd / -Nd")
        elif deadline < start:
            errors.append(f"{where}: the deadline is before the start")
        courses = raw.get("courses") or []
        if not isinstance(courses, list) or not courses:
            errors.append(f"{where}: courses must be a list of course codes")
            courses = []
        for course in courses:
            if course not in course_ids:
                errors.append(f"{where}: unknown course {course!r}")
        hours = raw.get("required_hours")
        if hours is not None:
            try:
                hours = Decimal(str(hours)).quantize(Decimal("0.01"))
            except InvalidOperation:
                errors.append(f"{where}: required_hours must be a number")
                hours = None
        rows.append(
            {
                "code": code,
                "title": title,
                "org": org,
                "start": start,
                "deadline": deadline,
                "courses": courses,
                "description": str(raw.get("description") or "").strip(),
                "required_hours": hours,
            }
        )
    return rows, errors


def load_plans(folder: Path, today: date) -> Summary:
    """Load folder/plans.yaml (caller commits). Raises Invalid listing every error."""
    summary = Summary()
    path = folder / "plans.yaml"
    if not path.exists():
        return summary
    org_ids = dict(db.session.execute(sa.select(Org.code, Org.id).where(Org.code.is_not(None))).all())
    course_ids = dict(
        db.session.execute(sa.select(Course.code, Course.id).where(Course.code.is_not(None))).all()
    )
    rows, errors = read_plans(path, today, org_ids, course_ids)
    if errors:
        raise Invalid("\n".join(errors))
    for row in rows:
        _plan, created, changed = plans.upsert_plan(
            row["code"],
            org_ids[row["org"]],
            row["title"],
            row["start"],
            row["deadline"],
            [course_ids[c] for c in row["courses"]],
            description=row["description"],
            required_hours=row["required_hours"],
        )
        summary.count("plans", "created" if created else "updated" if changed else "unchanged")
    return summary
