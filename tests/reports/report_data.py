"""Builders shared by the plan, course and export report tests."""

from datetime import datetime, timedelta

from school import db
from school.learning.models import LessonProgress


def progress(user, lesson, covered: float, duration: float = 100.0, done_at: datetime | None = None, at=None):
    when = at or done_at or db.utcnow()
    db.session.add(
        LessonProgress(
            user_id=user.id,
            lesson_id=lesson.id,
            duration=duration,
            covered_seconds=covered,
            updated_at=when,
            first_opened_at=when - timedelta(minutes=30),
            completed_at=done_at,
        )
    )
    db.session.commit()
