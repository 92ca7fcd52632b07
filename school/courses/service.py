"""Course authoring: courses, lessons, tags, co-lecturers, states and ordering."""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import RoleGrant, User
from school.courses.models import AUDIENCES, COMPLETIONS, Course, CourseLecturer, CourseTag, Lesson
from school.errors import Invalid, NotFound

MAX_TAGS = 10


def get_course(course_id: int) -> Course:
    """The course with this id, or NotFound."""
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound()
    return course


def get_lesson(lesson_id: int) -> Lesson:
    """The lesson with this id, or NotFound."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound()
    return lesson


def clean_title(text: str | None) -> str:
    """A title of 1–120 characters, or Invalid."""
    title = " ".join((text or "").split())
    if not title or len(title) > 120:
        raise Invalid(_("A title of 1 to 120 characters is needed."))
    return title


def parse_tags(text: str | list | None) -> list[str]:
    """Tags from "a, b，c、d" (or a list): trimmed, unique, at most 10 of at most 32 characters."""
    parts = text if isinstance(text, list) else re.split(r"[,，、;；\s]+", text or "")
    tags: list[str] = []
    for part in parts:
        tag = str(part).strip().lstrip("#")
        if not tag or tag in tags:
            continue
        if len(tag) > 32:
            raise Invalid(_("A tag may have at most 32 characters."))
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Invalid(_("A course may have at most %(n)d tags.", n=MAX_TAGS))
    return tags


def parse_credit(text) -> Decimal:
    """学时 credit: a number from 0 to 100 with at most two decimals."""
    try:
        value = Decimal(str(text).strip() or "0")
    except InvalidOperation:
        raise Invalid(_("Study hours must be a number such as 0.5.")) from None
    if not value.is_finite() or value < 0 or value > 100 or value != value.quantize(Decimal("0.01")):
        raise Invalid(_("Study hours must be between 0 and 100, with at most two decimals."))
    return value


def _set_tags(course: Course, tags: list[str]) -> None:
    course.tag_rows = [CourseTag(tag=tag) for tag in tags]


def create_course(owner: User, title: str, description: str = "", tags=None, code=None) -> Course:
    """A new draft course owned by a lecturer."""
    course = Course(
        title=clean_title(title),
        description=(description or "").strip()[:20_000],
        owner_id=owner.id,
        code=code,
    )
    _set_tags(course, parse_tags(tags))
    db.session.add(course)
    db.session.flush()
    return course


def update_course(course: Course, title: str, description: str, tags, audience: str | None = None) -> None:
    """Change a course's title, description, tags and (when given) who may study it."""
    if audience is not None and audience not in AUDIENCES:
        raise Invalid(
            _("Choose who may study the course: every member, or those a study plan assigns it to.")
        )
    course.title = clean_title(title)
    course.description = (description or "").strip()[:20_000]
    _set_tags(course, parse_tags(tags))
    if audience is not None:
        course.audience = audience


def set_course_state(course: Course, state: str, now: datetime) -> None:
    """Publish (needs at least one published lesson) or take back to draft."""
    if state not in ("draft", "published"):
        raise Invalid(_("Unknown state."))
    if state == "published" and not any(lesson.state == "published" for lesson in course.lessons):
        raise Invalid(_("Publish at least one lesson before publishing the course."))
    if state == "published" and course.published_at is None:
        course.published_at = now
    course.state = state


def add_co_lecturer(course: Course, login: str) -> User:
    """Add a lecturer (by phone or username) who may edit this course too."""
    from school.accounts.service import find_by_login

    user = find_by_login(login)
    is_lecturer = user is not None and db.session.scalar(
        sa.select(RoleGrant.id).where(RoleGrant.user_id == user.id, RoleGrant.role == "lecturer")
    )
    if not is_lecturer:
        raise Invalid(_("No lecturer with this phone number or username."))
    if user.id == course.owner_id or user.id in course.co_lecturer_ids:
        raise Invalid(_("%(name)s already teaches this course.", name=user.display_name))
    course.lecturer_rows.append(CourseLecturer(user_id=user.id))
    return user


def remove_co_lecturer(course: Course, user_id: int) -> None:
    """Take a co-lecturer off the course."""
    course.lecturer_rows = [row for row in course.lecturer_rows if row.user_id != user_id]


def create_lesson(course: Course, title: str, code: str | None = None) -> Lesson:
    """A new draft lesson at the end of the course."""
    last = db.session.scalar(sa.select(sa.func.max(Lesson.position)).where(Lesson.course_id == course.id))
    lesson = Lesson(course=course, title=clean_title(title), position=(last or 0) + 1, code=code)
    db.session.add(lesson)
    db.session.flush()
    return lesson


def update_lesson(lesson: Lesson, title: str, body_md: str, credit, completion: str) -> None:
    """Change a lesson's title, text, 学时 and how it is completed."""
    if completion not in COMPLETIONS:
        raise Invalid(_("Unknown way of completing a lesson."))
    lesson.title = clean_title(title)
    lesson.body_md = (body_md or "")[:200_000]
    lesson.credit_hours = parse_credit(credit)
    lesson.completion = completion


def set_lesson_state(lesson: Lesson, state: str) -> None:
    """Publish or take back a lesson; the last published lesson keeps its course published."""
    if state not in ("draft", "published"):
        raise Invalid(_("Unknown state."))
    if state == "published" and lesson.completion == "watch" and lesson.media_id is None:
        raise Invalid(_("This lesson is completed by watching: add a video or audio that is ready first."))
    lesson.state = state
    others = [x for x in lesson.course.lessons if x.id != lesson.id and x.state == "published"]
    if state == "draft" and not others and lesson.course.state == "published":
        raise Invalid(_("A published course needs at least one published lesson."))


def move_lesson(lesson: Lesson, step: int) -> None:
    """Swap a lesson with its neighbour above (-1) or below (+1)."""
    lessons = sorted(lesson.course.lessons, key=lambda x: (x.position, x.id))
    index = lessons.index(lesson)
    other = index + (1 if step > 0 else -1)
    if 0 <= other < len(lessons):
        lessons[index], lessons[other] = lessons[other], lessons[index]
        for position, item in enumerate(lessons, 1):
            item.position = position


def editable_courses(user: User) -> sa.Select:
    """Courses the user may edit: own and co-taught (all for admins), newest first."""
    stmt = sa.select(Course).order_by(Course.updated_at.desc(), Course.id.desc())
    if user.has_role("admin"):
        return stmt
    co = sa.select(CourseLecturer.course_id).where(CourseLecturer.user_id == user.id)
    return stmt.where(sa.or_(Course.owner_id == user.id, Course.id.in_(co)))


def published_courses() -> sa.Select:
    """Published courses, newest first."""
    return (
        sa.select(Course)
        .where(Course.state == "published")
        .order_by(Course.published_at.desc(), Course.id.desc())
    )


# --- the members' catalogue -----------------------------------------------------------------


def catalogue_courses(
    tag: str | None = None,
    course_ids: set[int] | None = None,
    published_since: datetime | None = None,
    hidden: set[int] = frozenset(),
) -> sa.Select:
    """Published courses, newest first, narrowed to a tag, to some courses, or to recent ones;
    without the `hidden` ones (plan-only courses the member is not assigned)."""
    stmt = published_courses()
    if hidden:
        stmt = stmt.where(Course.id.not_in(hidden))
    if tag:
        stmt = stmt.where(Course.id.in_(sa.select(CourseTag.course_id).where(CourseTag.tag == tag)))
    if course_ids is not None:
        stmt = stmt.where(Course.id.in_(course_ids or [-1]))
    if published_since is not None:
        stmt = stmt.where(Course.published_at >= published_since)
    return stmt


def catalogue_tags(limit: int = 30, hidden: set[int] = frozenset()) -> list[str]:
    """Tags of published courses (but the `hidden` ones), the most used first."""
    count = sa.func.count(CourseTag.course_id)
    rows = db.session.execute(
        sa.select(CourseTag.tag, count)
        .join(Course, Course.id == CourseTag.course_id)
        .where(Course.state == "published", Course.id.not_in(hidden or [-1]))
        .group_by(CourseTag.tag)
        .order_by(count.desc(), CourseTag.tag)
        .limit(limit)
    ).all()
    return [tag for tag, _n in rows]


def published_lesson_counts(course_ids: list[int]) -> dict[int, int]:
    """Number of published lessons of each course (one query for a whole page of courses)."""
    if not course_ids:
        return {}
    rows = db.session.execute(
        sa.select(Lesson.course_id, sa.func.count(Lesson.id))
        .where(Lesson.course_id.in_(course_ids), Lesson.state == "published")
        .group_by(Lesson.course_id)
    ).all()
    return dict(rows)


def completed_lesson_counts(user_id: int, course_ids: list[int]) -> dict[int, int]:
    """Published lessons of each course the user has completed."""
    from school.learning.models import LessonProgress

    if not course_ids:
        return {}
    rows = db.session.execute(
        sa.select(Lesson.course_id, sa.func.count(Lesson.id))
        .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
        .where(
            Lesson.course_id.in_(course_ids),
            Lesson.state == "published",
            LessonProgress.user_id == user_id,
            LessonProgress.completed_at.is_not(None),
        )
        .group_by(Lesson.course_id)
    ).all()
    return dict(rows)
