"""What a member has been asked to study: the plans that reach their branch, and their progress."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from school import db
from school.courses.models import Course, Lesson
from school.learning.models import LessonProgress
from school.orgs.models import OrgClosure
from school.plans.models import PlanItem, StudyPlan


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


def _member_plans_stmt(user, today: date) -> sa.Select | None:
    if user.home_org_id is None:
        return None
    above = sa.select(OrgClosure.ancestor_id).where(OrgClosure.descendant_id == user.home_org_id)
    return sa.select(StudyPlan).where(StudyPlan.org_id.in_(above), StudyPlan.starts_on <= today)


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
