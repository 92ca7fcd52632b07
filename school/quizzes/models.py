"""Question banks, per-lesson quiz settings and attempts.

A course has one question bank; a question may be tied to one of its lessons. A lesson's quiz
draws from the questions tied to it plus the course-wide ones. An attempt keeps a snapshot of the
questions it drew (stem, options in the order shown, the correct answer, the explanation), so a
question edited or deleted while members are answering cannot change how their attempt is graded,
and the answer key never has to be sent to the page: the form posts positions in the shown order.
"""

import json
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow

KINDS = ("single", "multiple", "truefalse", "fill")
GRADINGS = ("highest", "latest")
ATTEMPT_KINDS = ("lesson", "daily")
ATTEMPT_STATES = ("open", "submitted")


class Question(Base):
    __tablename__ = "quiz_question"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("course.id", ondelete="CASCADE"), index=True)
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id", ondelete="SET NULL"))
    code: Mapped[str | None] = mapped_column(sa.String(64))  # content folder key, stable per course
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(sa.String(16))
    stem: Mapped[str] = mapped_column(sa.Text)
    # choices: ["…", "…"]; true/false and fill-in: []
    options_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    # single/multiple: indexes into options; truefalse: [true] or [false]; fill: accepted texts
    answer_json: Mapped[str] = mapped_column(sa.Text, default="[]")
    explanation: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lesson = orm.relationship("Lesson")

    __table_args__ = (
        sa.UniqueConstraint("course_id", "code", name="code_per_course"),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
    )

    @property
    def options(self) -> list[str]:
        return json.loads(self.options_json or "[]")

    @property
    def answer(self) -> list:
        return json.loads(self.answer_json or "[]")


class LessonQuiz(Base):
    """A lesson's quiz settings; the lesson has a quiz while `enabled`."""

    __tablename__ = "lesson_quiz"

    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    question_count: Mapped[int] = mapped_column(default=5)
    pass_percent: Mapped[int] = mapped_column(default=60)
    max_attempts: Mapped[int] = mapped_column(default=0)  # 0 = unlimited
    grading: Mapped[str] = mapped_column(sa.String(16), default="highest")
    time_limit_minutes: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lesson = orm.relationship("Lesson")

    __table_args__ = (
        sa.CheckConstraint(f"grading IN {GRADINGS!r}", name="grading"),
        sa.CheckConstraint("question_count BETWEEN 1 AND 100", name="question_count"),
        sa.CheckConstraint("pass_percent BETWEEN 0 AND 100", name="pass_percent"),
        sa.CheckConstraint("max_attempts >= 0", name="max_attempts"),
    )


class Attempt(Base):
    """One try at a lesson quiz or at a day's daily quiz (one per member and local day)."""

    __tablename__ = "quiz_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    lesson_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    day: Mapped[date | None]  # daily quiz: the local date it belongs to
    state: Mapped[str] = mapped_column(sa.String(16), default="open")
    # [{"qid", "kind", "stem", "options" (as shown), "order" (bank index of each shown option),
    #   "answer" (shown positions / true|false / accepted texts), "explanation"}, …]
    items_json: Mapped[str] = mapped_column(sa.Text)
    answers_json: Mapped[str | None] = mapped_column(sa.Text)  # what the member gave, per item
    results_json: Mapped[str | None] = mapped_column(sa.Text)  # [true, false, …]
    pass_percent: Mapped[int]
    score: Mapped[int | None]  # questions answered correctly
    percent: Mapped[int | None]
    passed: Mapped[bool | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime | None]  # naive UTC; submits after it (and a grace) are refused
    submitted_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("user_id", "day", name="one_daily_per_day"),
        sa.Index("ix_quiz_attempt_user_lesson", "user_id", "lesson_id"),
        sa.CheckConstraint(f"kind IN {ATTEMPT_KINDS!r}", name="kind"),
        sa.CheckConstraint(f"state IN {ATTEMPT_STATES!r}", name="state"),
        sa.CheckConstraint("(kind = 'daily') = (day IS NOT NULL)", name="daily_has_day"),
    )

    @property
    def items(self) -> list[dict]:
        return json.loads(self.items_json or "[]")

    @property
    def answers(self) -> list:
        return json.loads(self.answers_json or "[]")

    @property
    def results(self) -> list[bool]:
        return json.loads(self.results_json or "[]")

    @property
    def total(self) -> int:
        return len(self.items)
