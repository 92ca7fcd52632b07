"""Builders for study data shared by the plans, home, catalogue and record tests."""

from datetime import date, datetime, timedelta

from school import db
from school.courses import service as courses
from school.learning.models import LessonProgress
from school.plans.models import PlanItem, StudyPlan
from tests.factories import make_user


def local_today(app) -> date:
    """Today in the site's time zone, as pages count days (it may differ from the UTC date)."""
    from school.credits.service import local_now

    with app.app_context():
        return local_now().date()


def make_course(owner=None, title="党课", lessons=2, tags="", published=True, code=None):
    """A course of `lessons` read-to-complete lessons, published unless told otherwise."""
    owner = owner or make_user(roles=[("lecturer", None)])
    course = courses.create_course(owner, title, "简介", tags, code=code)
    for n in range(1, lessons + 1):
        lesson = courses.create_lesson(course, f"{title}第{n}课")
        courses.update_lesson(lesson, f"{title}第{n}课", "正文", "0.5", "read")
        if published:
            courses.set_lesson_state(lesson, "published")
    if published:
        courses.set_course_state(course, "published", db.utcnow())
    db.session.commit()
    assert course.lessons
    return course


def complete(user, lesson, when: datetime | None = None) -> None:
    when = when or db.utcnow()
    db.session.add(
        LessonProgress(
            user_id=user.id, lesson_id=lesson.id, completed_at=when, updated_at=when, read_seconds=60
        )
    )
    db.session.commit()


def start(user, lesson, watched: float, duration: float = 100.0) -> None:
    db.session.add(
        LessonProgress(user_id=user.id, lesson_id=lesson.id, duration=duration, covered_seconds=watched)
    )
    db.session.commit()


def make_plan(org, title, due: date, courses_=(), starts: date | None = None) -> StudyPlan:
    plan = StudyPlan(
        org_id=org.id,
        title=title,
        starts_on=starts or due - timedelta(days=60),
        due_on=due,
        items=[PlanItem(course_id=c.id) for c in courses_],
    )
    db.session.add(plan)
    db.session.commit()
    return plan
