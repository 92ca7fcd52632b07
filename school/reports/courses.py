"""Per-course report: among the members of an organisation's subtree, how far they got in one
course, where they dropped off, how they did in its quizzes and which questions they missed most.

Counts are GROUP BYs over lesson_progress and quiz_attempt restricted to the subtree's active
members; the most-missed questions are read from the attempts' snapshots (what was really asked).
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import User
from school.courses.models import Course, Lesson
from school.errors import NotFound
from school.learning.models import LessonProgress
from school.orgs import service as orgs
from school.orgs.models import Org
from school.quizzes.models import Attempt, LessonQuiz
from school.reports.service import TENTH, Table, scoped_trail

MISSED_SHOWN = 10


def share(part: int, whole: int) -> Decimal:
    """part ÷ whole in percent to one decimal (0 when whole is 0)."""
    return (Decimal(100 * part) / whole).quantize(TENTH) if whole else Decimal("0.0")


@dataclass
class LessonFigures:
    lesson_id: int
    title: str
    started: int = 0
    completed: int = 0
    coverage: float = 0.0  # sum over starters, 0–1 each
    quiz: bool = False
    attempted: int = 0  # members who submitted the quiz
    passed: int = 0

    @property
    def average_coverage(self) -> Decimal:
        return (
            Decimal(str(100 * self.coverage / self.started)).quantize(TENTH)
            if self.started
            else Decimal("0.0")
        )


@dataclass
class Missed:
    stem: str
    lesson: str
    asked: int
    wrong: int

    @property
    def rate(self) -> Decimal:
        return share(self.wrong, self.asked)


@dataclass
class CourseReport:
    course: Course
    org: Org
    trail: list[Org]
    children: list[Org]
    members: int
    started: int
    completed: int
    lessons: list[LessonFigures] = field(default_factory=list)
    missed: list[Missed] = field(default_factory=list)

    @property
    def rate(self) -> Decimal:
        return share(self.completed, self.members)

    @property
    def quiz_attempted(self) -> int:
        return sum(f.attempted for f in self.lessons)

    @property
    def quiz_passed(self) -> int:
        return sum(f.passed for f in self.lessons)

    @property
    def pass_rate(self) -> Decimal:
        return share(self.quiz_passed, self.quiz_attempted)

    @property
    def average_coverage(self) -> Decimal:
        """Mean coverage over every member and lesson (lessons never opened count 0)."""
        slots = self.members * len(self.lessons)
        if not slots:
            return Decimal("0.0")
        return Decimal(str(100 * sum(f.coverage for f in self.lessons) / slots)).quantize(TENTH)


def reportable_courses() -> list[Course]:
    """Published courses, by title, for the course picker."""
    return list(
        db.session.scalars(sa.select(Course).where(Course.state == "published").order_by(Course.title))
    )


def get_course(course_id: int) -> Course:
    course = db.session.get(Course, course_id)
    if course is None or course.state != "published":
        raise NotFound(_("No such published course."))
    return course


def _coverage():
    return sa.case(
        (LessonProgress.completed_at.is_not(None), 1.0),
        (LessonProgress.duration <= 0, 0.0),
        (LessonProgress.covered_seconds >= LessonProgress.duration, 1.0),
        else_=LessonProgress.covered_seconds / LessonProgress.duration,
    )


def course_report(course: Course, org_id: int, viewer: User) -> CourseReport:
    """The course among the active members of org_id's subtree. The caller has checked scope."""
    node = orgs.get_org(org_id)
    members = sa.select(User.id).where(User.home_org_id.in_(orgs.subtree_ids(node.id)), User.active.is_(True))
    lessons = list(
        db.session.execute(
            sa.select(Lesson.id, Lesson.title)
            .where(Lesson.course_id == course.id, Lesson.state == "published")
            .order_by(Lesson.position, Lesson.id)
        )
    )
    ids = [lesson.id for lesson in lessons]
    figures = {lesson.id: LessonFigures(lesson.id, lesson.title) for lesson in lessons}
    in_scope = [LessonProgress.lesson_id.in_(ids or [-1]), LessonProgress.user_id.in_(members)]
    for lesson_id, started, completed, coverage in db.session.execute(
        sa.select(
            LessonProgress.lesson_id,
            sa.func.count(),
            sa.func.count(LessonProgress.completed_at),
            sa.func.sum(_coverage()),
        )
        .where(*in_scope)
        .group_by(LessonProgress.lesson_id)
    ):
        row = figures[lesson_id]
        row.started, row.completed, row.coverage = started, completed, float(coverage or 0)
    per_member = (
        sa.select(
            LessonProgress.user_id,
            sa.func.count(LessonProgress.completed_at).label("done"),
        )
        .where(*in_scope)
        .group_by(LessonProgress.user_id)
        .subquery()
    )
    started, completed = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((per_member.c.done >= max(len(ids), 1), 1), else_=0)), 0),
        ).select_from(per_member)
    ).one()
    quizzes = set(
        db.session.scalars(
            sa.select(LessonQuiz.lesson_id).where(LessonQuiz.lesson_id.in_(ids or [-1]), LessonQuiz.enabled)
        )
    )
    attempts = [
        Attempt.kind == "lesson",
        Attempt.state == "submitted",
        Attempt.lesson_id.in_(ids or [-1]),
        Attempt.user_id.in_(members),
    ]
    for lesson_id, attempted, passed in db.session.execute(
        sa.select(
            Attempt.lesson_id,
            sa.func.count(sa.distinct(Attempt.user_id)),
            sa.func.count(sa.distinct(sa.case((Attempt.passed.is_(True), Attempt.user_id)))),
        )
        .where(*attempts)
        .group_by(Attempt.lesson_id)
    ):
        figures[lesson_id].attempted, figures[lesson_id].passed = attempted, passed
    for lesson_id in quizzes | {f.lesson_id for f in figures.values() if f.attempted}:
        figures[lesson_id].quiz = True
    total = db.session.scalar(sa.select(sa.func.count()).select_from(members.subquery())) or 0
    children = list(
        db.session.scalars(sa.select(Org).where(Org.parent_id == node.id).order_by(Org.position, Org.id))
    )
    return CourseReport(
        course,
        node,
        scoped_trail(node, viewer),
        children,
        total,
        started,
        completed,
        [figures[i] for i in ids],
        most_missed(attempts, {lesson.id: lesson.title for lesson in lessons}),
    )


def most_missed(conditions: list, titles: dict[int, str], limit: int = MISSED_SHOWN) -> list[Missed]:
    """Questions most often answered wrong in these attempts, by share wrong (then how often asked).

    Read from each attempt's snapshot, streamed, so an edited question still counts as asked."""
    counts: dict[tuple, Missed] = {}
    stmt = sa.select(Attempt.lesson_id, Attempt.items_json, Attempt.results_json).where(*conditions)
    for lesson_id, items_json, results_json in db.session.execute(stmt.execution_options(yield_per=2000)):
        items, results = json.loads(items_json or "[]"), json.loads(results_json or "[]")
        for item, right in zip(items, results, strict=False):
            key = (item.get("qid"), item.get("stem"))
            row = counts.get(key)
            if row is None:
                row = counts[key] = Missed(item.get("stem", ""), titles.get(lesson_id, ""), 0, 0)
            row.asked += 1
            row.wrong += 0 if right else 1
    ranked = sorted((m for m in counts.values() if m.wrong), key=lambda m: (-m.rate, -m.asked, m.stem))
    return ranked[:limit]


def course_tables(report: CourseReport) -> list[Table]:
    """The report as the tables the page shows and the exports write."""
    summary = Table(
        _("Summary"),
        [
            _("Members"),
            _("Started"),
            _("Completed"),
            _("Completion rate (%)"),
            _("Average coverage (%)"),
            _("Quiz pass rate (%)"),
        ],
        [
            [
                report.members,
                report.started,
                report.completed,
                report.rate,
                report.average_coverage,
                report.pass_rate,
            ]
        ],
        [None],
    )
    headers = [
        _("Lesson"),
        _("Started"),
        _("Completed"),
        _("Completed (share of members, %)"),
        _("Average coverage (%)"),
        _("Quiz taken"),
        _("Quiz passed"),
        _("Pass rate (%)"),
    ]
    rows = []
    for n, f in enumerate(report.lessons, 1):
        quiz = [f.attempted, f.passed, share(f.passed, f.attempted)] if f.quiz else ["", "", ""]
        rows.append(
            [
                f"{n}. {f.title}",
                f.started,
                f.completed,
                share(f.completed, report.members),
                f.average_coverage,
                *quiz,
            ]
        )
    tables = [summary, Table(_("Lessons in order"), headers, rows, [None] * len(rows))]
    if report.missed:
        headers = [_("Question"), _("Lesson"), _("Times asked"), _("Times wrong"), _("Wrong (%)")]
        rows = [[m.stem, m.lesson, m.asked, m.wrong, m.rate] for m in report.missed]
        tables.append(Table(_("Most missed questions"), headers, rows, [None] * len(rows)))
    return tables
