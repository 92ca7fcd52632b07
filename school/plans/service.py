"""What a member has been asked to study: the plans that reach their branch, and their progress."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.audit import service as audit
from school.courses.models import Course, Lesson
from school.errors import Forbidden, Invalid, NotFound
from school.learning.models import LessonProgress
from school.orgs.models import Org, OrgClosure
from school.plans.models import CATEGORIES, PlanItem, PlanTarget, StudyPlan


@dataclass
class MemberPlan:
    """A plan as one member sees it: how many of its lessons they have completed."""

    plan: StudyPlan
    total: int
    completed: int
    today: date

    @property
    def done(self) -> bool:
        return self.total > 0 and self.completed >= self.total

    @property
    def overdue(self) -> bool:
        return not self.done and self.plan.due_on < self.today

    @property
    def days_left(self) -> int:
        return (self.plan.due_on - self.today).days

    @property
    def share(self) -> float:
        return self.completed / self.total if self.total else 0.0


def _today() -> date:
    from school.credits.service import local_now

    return local_now().date()


def category_condition(category: str):
    """SQL condition on User for one member category of PlanTarget."""
    from school.accounts.models import User

    if category == "floating":
        return User.floating.is_(True)
    if category in ("full", "probationary"):
        return User.member_status == category
    return User.employment == category


def _targets(kind: str, *conditions) -> sa.Exists:
    return sa.exists().where(PlanTarget.plan_id == StudyPlan.id, PlanTarget.kind == kind, *conditions)


def _reaches_user(user) -> sa.ColumnElement[bool]:
    """SQL condition on StudyPlan: the plan's targets take in this user (subtree checked apart)."""
    in_org = sa.select(OrgClosure.ancestor_id).where(OrgClosure.descendant_id == user.home_org_id)
    categories = [c for c, on in _user_categories(user).items() if on]
    by_org = sa.or_(~_targets("org"), _targets("org", PlanTarget.org_id.in_(in_org)))
    by_category = sa.or_(~_targets("category"), _targets("category", PlanTarget.category.in_(categories)))
    grouped = sa.or_(_targets("org"), _targets("category"))
    return sa.or_(
        ~sa.exists().where(PlanTarget.plan_id == StudyPlan.id),
        _targets("member", PlanTarget.user_id == user.id),
        sa.and_(grouped, by_org, by_category),
    )


def _user_categories(user) -> dict[str, bool]:
    return {
        "full": user.member_status == "full",
        "probationary": user.member_status == "probationary",
        "working": user.employment == "working",
        "retired": user.employment == "retired",
        "floating": bool(user.floating),
    }


def _member_plans_stmt(user, today: date) -> sa.Select | None:
    if user.home_org_id is None:
        return None
    above = sa.select(OrgClosure.ancestor_id).where(OrgClosure.descendant_id == user.home_org_id)
    return sa.select(StudyPlan).where(
        StudyPlan.org_id.in_(above),
        StudyPlan.starts_on <= today,
        StudyPlan.closed_at.is_(None),
        _reaches_user(user),
    )


def members_of_plan_stmt(plan: StudyPlan) -> sa.Select:
    """SELECT of the ids of the active members a plan reaches now (read at query time, so members
    who join or transfer into its subtree are included and those who leave are not)."""
    from school.accounts.models import User

    subtree = sa.select(OrgClosure.descendant_id).where(OrgClosure.ancestor_id == plan.org_id)
    stmt = sa.select(User.id).where(User.active.is_(True), User.home_org_id.in_(subtree))
    targets = list(plan.targets)
    if not targets:
        return stmt
    org_ids = [t.org_id for t in targets if t.kind == "org"]
    categories = [t.category for t in targets if t.kind == "category"]
    member_ids = [t.user_id for t in targets if t.kind == "member"]
    reached = []
    if org_ids or categories:
        grouped = []
        if org_ids:
            below = sa.select(OrgClosure.descendant_id).where(OrgClosure.ancestor_id.in_(org_ids))
            grouped.append(User.home_org_id.in_(below))
        if categories:
            grouped.append(sa.or_(*[category_condition(c) for c in categories]))
        reached.append(sa.and_(*grouped))
    if member_ids:
        reached.append(User.id.in_(member_ids))
    return stmt.where(sa.or_(*reached))


def plan_lesson_ids(plan: StudyPlan) -> list[int]:
    """Published lesson ids a plan asks for (a course item counts all its published lessons)."""
    return sorted(plan_lessons([plan])[plan.id])


def plan_lessons(plans: list[StudyPlan]) -> dict[int, set[int]]:
    """Published lesson ids of each plan (a course item counts all its published lessons)."""
    course_ids = {item.course_id for plan in plans for item in plan.items if item.course_id}
    lesson_ids = {item.lesson_id for plan in plans for item in plan.items if item.lesson_id}
    by_course: dict[int, set[int]] = {}
    published: set[int] = set()
    if course_ids or lesson_ids:
        rows = db.session.execute(
            sa.select(Lesson.id, Lesson.course_id)
            .join(Course, Course.id == Lesson.course_id)
            .where(
                Lesson.state == "published",
                Course.state == "published",
                sa.or_(Lesson.course_id.in_(course_ids), Lesson.id.in_(lesson_ids)),
            )
        ).all()
        for lesson_id, course_id in rows:
            by_course.setdefault(course_id, set()).add(lesson_id)
            published.add(lesson_id)
    result: dict[int, set[int]] = {}
    for plan in plans:
        ids: set[int] = set()
        for item in plan.items:
            if item.course_id:
                ids |= by_course.get(item.course_id, set())
            elif item.lesson_id in published:
                ids.add(item.lesson_id)
        result[plan.id] = ids
    return result


def plans_for_member(user, today: date | None = None, include_finished: bool = False) -> list[MemberPlan]:
    """Started plans of the member's branch and the orgs above it, soonest deadline first.

    Plans the member has completed whose deadline has passed are history and left out, unless
    `include_finished`.
    """
    today = today or _today()
    stmt = _member_plans_stmt(user, today)
    if stmt is None:
        return []
    plans = list(db.session.scalars(stmt.order_by(StudyPlan.due_on, StudyPlan.id)))
    lessons = plan_lessons(plans)
    wanted = set().union(*lessons.values()) if lessons else set()
    completed: set[int] = set()
    if wanted:
        completed = set(
            db.session.scalars(
                sa.select(LessonProgress.lesson_id).where(
                    LessonProgress.user_id == user.id,
                    LessonProgress.completed_at.is_not(None),
                    LessonProgress.lesson_id.in_(wanted),
                )
            )
        )
    result = [
        MemberPlan(plan, len(lessons[plan.id]), len(lessons[plan.id] & completed), today) for plan in plans
    ]
    if not include_finished:
        result = [p for p in result if not (p.done and p.plan.due_on < today)]
    return result


def assigned_course_ids(user, today: date | None = None) -> set[int]:
    """Courses the member's started plans name, directly or through one of their lessons."""
    today = today or _today()
    stmt = _member_plans_stmt(user, today)
    if stmt is None:
        return set()
    plans = list(db.session.scalars(stmt))
    ids = {item.course_id for plan in plans for item in plan.items if item.course_id}
    lesson_ids = {item.lesson_id for plan in plans for item in plan.items if item.lesson_id}
    if lesson_ids:
        ids |= set(db.session.scalars(sa.select(Lesson.course_id).where(Lesson.id.in_(lesson_ids))))
    return ids


def upsert_plan(
    code: str,
    org_id: int,
    title: str,
    starts_on: date,
    due_on: date,
    course_ids: list[int],
    description: str = "",
    required_hours=None,
) -> tuple[StudyPlan, bool, bool]:
    """Create or update the plan with this code; returns (plan, created, changed).

    Items are replaced by the given courses when they differ (lesson items are left alone).
    """
    plan = db.session.scalar(sa.select(StudyPlan).where(StudyPlan.code == code))
    created = plan is None
    if created:
        plan = StudyPlan(code=code)
        db.session.add(plan)
    fields = {
        "org_id": org_id,
        "title": title,
        "description": description,
        "starts_on": starts_on,
        "due_on": due_on,
        "required_hours": required_hours,
    }
    changed = False
    for key, value in fields.items():
        if getattr(plan, key) != value:
            setattr(plan, key, value)
            changed = True
    current = [item.course_id for item in plan.items if item.course_id]
    if current != list(course_ids):
        plan.items = [item for item in plan.items if item.lesson_id] + [
            PlanItem(course_id=course_id) for course_id in course_ids
        ]
        changed = True
    db.session.flush()
    return plan, created, changed and not created


# Organiser side: listing, saving, closing plans; reminders.


@dataclass
class PlanInput:
    """What an organiser typed into the plan form (already parsed to types)."""

    title: str
    starts_on: date | None
    due_on: date | None
    description: str = ""
    required_hours: Decimal | None = None
    course_ids: list[int] = field(default_factory=list)
    lesson_ids: list[int] = field(default_factory=list)
    org_ids: list[int] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    member_logins: list[str] = field(default_factory=list)


def plans_stmt(viewer, org_id: int | None = None) -> sa.Select:
    """Plans of the viewer's subtree (optionally under one org), latest deadline first."""
    from school.orgs.service import scope, subtree_ids

    stmt = scope(sa.select(StudyPlan), viewer, StudyPlan.org_id)
    if org_id is not None:
        stmt = stmt.where(StudyPlan.org_id.in_(subtree_ids(org_id)))
    return stmt.order_by(StudyPlan.closed_at.is_not(None), StudyPlan.due_on.desc(), StudyPlan.id.desc())


def get_plan(viewer, plan_id: int) -> StudyPlan:
    """A plan the viewer may administer, else NotFound/Forbidden."""
    from school.orgs.service import in_scope

    plan = db.session.get(StudyPlan, plan_id)
    if plan is None:
        raise NotFound()
    if not in_scope(viewer, plan.org_id):
        raise Forbidden()
    return plan


def target_org_choices(org_id: int) -> list[Org]:
    """Orgs below org_id (not itself) a plan of it may be narrowed to, tree order."""
    stmt = (
        sa.select(Org)
        .join(OrgClosure, OrgClosure.descendant_id == Org.id)
        .where(OrgClosure.ancestor_id == org_id, OrgClosure.distance > 0, Org.closed_at.is_(None))
        .order_by(Org.depth, Org.position, Org.name, Org.id)
    )
    return list(db.session.scalars(stmt))


def published_courses() -> list[Course]:
    """Courses a plan may name."""
    return list(
        db.session.scalars(sa.select(Course).where(Course.state == "published").order_by(Course.title))
    )


def published_lessons() -> list[Lesson]:
    """Lessons a plan may name one by one (published, in a published course)."""
    stmt = (
        sa.select(Lesson)
        .join(Course, Course.id == Lesson.course_id)
        .where(Lesson.state == "published", Course.state == "published")
        .order_by(Course.title, Lesson.position, Lesson.id)
    )
    return list(db.session.scalars(stmt))


def _check(data: PlanInput, org_id: int) -> tuple[list[PlanTarget], list[PlanItem]]:
    """Validate the input against the plan's org; returns the targets and items to store."""
    from school.accounts.models import User
    from school.orgs.service import subtree_ids

    if not data.title.strip():
        raise Invalid(_("A study plan needs a title."))
    if len(data.title.strip()) > 120:
        raise Invalid(_("The title may have at most 120 characters."))
    if data.starts_on is None or data.due_on is None:
        raise Invalid(_("Please give a start date and a deadline."))
    if data.due_on < data.starts_on:
        raise Invalid(_("The deadline cannot be before the start date."))
    if data.required_hours is not None and not (0 <= data.required_hours <= 200):
        raise Invalid(_("Required study hours must be between 0 and 200."))
    course_ids, lesson_ids = sorted(set(data.course_ids)), sorted(set(data.lesson_ids))
    if not course_ids and not lesson_ids:
        raise Invalid(_("Choose at least one course or lesson."))
    found = set(
        db.session.scalars(sa.select(Course.id).where(Course.id.in_(course_ids), Course.state == "published"))
    )
    found_lessons = set(
        db.session.scalars(
            sa.select(Lesson.id)
            .join(Course, Course.id == Lesson.course_id)
            .where(Lesson.id.in_(lesson_ids), Lesson.state == "published", Course.state == "published")
        )
    )
    if found != set(course_ids) or found_lessons != set(lesson_ids):
        raise Invalid(_("Only published courses and lessons can be assigned."))
    subtree = set(db.session.scalars(subtree_ids(org_id)))
    org_ids = sorted(set(data.org_ids))
    if any(o not in subtree or o == org_id for o in org_ids):
        raise Invalid(_("Chosen organisations must lie inside the plan's organisation."))
    categories = sorted(set(data.categories))
    if any(c not in CATEGORIES for c in categories):
        raise Invalid(_("Unknown member category."))
    members: list[int] = []
    logins = sorted({login.strip() for login in data.member_logins if login.strip()})
    if logins:
        rows = db.session.execute(
            sa.select(User.id, User.phone, User.username, User.home_org_id).where(
                sa.or_(User.phone.in_(logins), User.username.in_(logins))
            )
        ).all()
        known = {row.phone for row in rows} | {row.username for row in rows}
        missing = [login for login in logins if login not in known]
        if missing:
            raise Invalid(_("No member with phone number or username: %(logins)s", logins="、".join(missing)))
        outside = [row.phone or row.username for row in rows if row.home_org_id not in subtree]
        if outside:
            raise Invalid(
                _(
                    "These people are not members of the plan's organisation: %(logins)s",
                    logins="、".join(outside),
                )
            )
        members = sorted({row.id for row in rows})
    targets = (
        [PlanTarget(kind="org", org_id=o) for o in org_ids]
        + [PlanTarget(kind="category", category=c) for c in categories]
        + [PlanTarget(kind="member", user_id=u) for u in members]
    )
    items = [PlanItem(course_id=c) for c in course_ids] + [
        PlanItem(lesson_id=lesson) for lesson in lesson_ids
    ]
    return targets, items


PLAN_FIELDS = ("title", "description", "starts_on", "due_on", "required_hours", "items", "targets")  # audited


def save_plan(viewer, org_id: int, data: PlanInput, plan: StudyPlan | None = None) -> StudyPlan:
    """Create a plan for org_id (or update `plan`, whose org stays) after checking everything;
    nothing is written when any check fails."""
    from school.orgs.service import get_org, in_scope

    if plan is not None:
        org_id = plan.org_id
    get_org(org_id)
    if not in_scope(viewer, org_id):
        raise Forbidden(_("You can only assign study plans within the organisations you manage."))
    targets, items = _check(data, org_id)
    if plan is None:
        plan = StudyPlan(org_id=org_id, created_by_id=viewer.id)
        db.session.add(plan)
    plan.title = data.title.strip()
    plan.description = data.description.strip()
    plan.starts_on, plan.due_on = data.starts_on, data.due_on
    plan.required_hours = data.required_hours
    plan.targets = targets
    plan.items = items
    audit.record(
        "plan.create" if sa.inspect(plan).pending else "plan.update",
        org_id=org_id,
        target=plan,
        details=audit.changes(plan, PLAN_FIELDS),
        actor=viewer,
    )
    db.session.flush()
    return plan


def set_closed(plan: StudyPlan, closed: bool, now) -> None:
    """Close a plan (members stop seeing it, no more reminders) or reopen it."""
    plan.closed_at = (plan.closed_at or now) if closed else None
    audit.record("plan.close" if closed else "plan.reopen", org_id=plan.org_id, target=plan)


def plan_summary(plan: StudyPlan) -> tuple[int, int]:
    """(members reached now, of them how many completed every lesson)."""
    reached = db.session.scalar(sa.select(sa.func.count()).select_from(members_of_plan_stmt(plan).subquery()))
    done = len(_completed_members(plan, plan_lesson_ids(plan)))
    return reached or 0, done


def completed_members_stmt(
    plan: StudyPlan, lesson_ids: list[int], before: datetime | None = None
) -> sa.Select:
    """SELECT (one column, `user_id`) of the members the plan reaches who completed every one of
    its lessons `lesson_ids` (before `before`, naive UTC, when given); none when it has no lessons."""
    completed = (
        LessonProgress.completed_at.is_not(None) if before is None else LessonProgress.completed_at < before
    )
    return (
        sa.select(LessonProgress.user_id.label("user_id"))
        .where(
            LessonProgress.user_id.in_(members_of_plan_stmt(plan)),
            LessonProgress.lesson_id.in_(lesson_ids),
            completed,
        )
        .group_by(LessonProgress.user_id)
        .having(sa.func.count(sa.distinct(LessonProgress.lesson_id)) >= max(len(lesson_ids), 1))
    )


def _completed_members(plan: StudyPlan, lesson_ids: list[int]) -> set[int]:
    if not lesson_ids:
        return set()
    return set(db.session.scalars(completed_members_stmt(plan, lesson_ids)))


def reminder_days(raw: str) -> list[int]:
    """Parse the PLAN_REMINDER_DAYS setting ("7,1") into day counts."""
    return sorted({int(part) for part in raw.replace(" ", "").split(",") if part.isdigit()}, reverse=True)


def send_plan_reminders(today: date, days: list[int] | None = None) -> int:
    """Remind every reached member who has not completed an open plan, N days before its deadline
    and once on the day after it; safe to run again (one notification per plan, member, reminder)."""
    from flask import current_app, url_for

    from school.accounts.models import User
    from school.notifications.service import send

    if days is None:
        days = reminder_days(current_app.config["PLAN_REMINDER_DAYS"])
    wanted = {today + timedelta(days=n): n for n in days}
    overdue_on = today - timedelta(days=1)
    plans = db.session.scalars(
        sa.select(StudyPlan).where(
            StudyPlan.closed_at.is_(None),
            StudyPlan.starts_on <= today,
            StudyPlan.due_on.in_([*wanted, overdue_on]),
        )
    )
    sent = 0
    for plan in plans:
        lesson_ids = plan_lesson_ids(plan)
        if not lesson_ids:
            continue
        done = _completed_members(plan, lesson_ids)
        members = db.session.scalars(sa.select(User).where(User.id.in_(members_of_plan_stmt(plan))))
        if plan.due_on == overdue_on:
            which = "overdue"
            title = _("Study plan overdue: %(title)s", title=plan.title)
            body = _(
                "The deadline was %(date)s. Please finish it as soon as you can.",
                date=plan.due_on.isoformat(),
            )
        else:
            left = wanted[plan.due_on]
            which = f"due-{left}"
            title = _("Study plan due in %(days)d days: %(title)s", days=left, title=plan.title)
            body = _("Please finish it by %(date)s.", date=plan.due_on.isoformat())
        try:
            url = url_for("system.home")
        except RuntimeError:  # no request or SERVER_NAME: a relative link works in the app
            url = "/"
        for member in members:
            if member.id in done:
                continue
            if send(member, "plan_reminder", title, body, url, key=f"plan:{plan.id}:{which}"):
                sent += 1
    return sent
