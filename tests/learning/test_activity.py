"""The one definition of "studied in a period" (school/learning/activity.py), and the three pages
that use it agreeing on the same data: 防瘫预警, the member list's "no study in N days" filter and
the comparison of organisations."""

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.comparison import service as comparison
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.learning import activity
from school.learning import service as learning
from school.learning.models import LessonProgress, ViewingSession
from school.orgs import service as orgs
from school.quizzes.models import Attempt
from school.warnings import service as warnings
from school.warnings.models import WarningRule
from tests.factories import make_admin, make_lesson, make_org, make_tree, make_user


class Clock:
    """The server's clock, moved by the test (school.db.utcnow is what the services read)."""

    def __init__(self, monkeypatch):
        self.now = db.utcnow()
        monkeypatch.setattr(db, "utcnow", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture()
def clock(monkeypatch):
    return Clock(monkeypatch)


def studied(start, end=None) -> set[int]:
    return set(db.session.scalars(activity.studied_user_ids(start, end)))


def credit(user, amount, source, when):
    entry = CreditEntry(
        user_id=user.id,
        year=when.year,
        amount=Decimal(amount),
        source=source,
        ref_key=f"{source}:{secrets.token_hex(4)}",
        created_at=when,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


# The definition, kind by kind


def test_playing_a_lesson_is_study(ctx, clock):
    member, lesson = make_user(), make_lesson()
    start = clock.now
    viewing, _progress = learning.start_session(member, lesson)
    clock.advance(12)
    learning.record_beat(member, viewing.id, {"seq": 1, "from": 0, "to": 10, "rate": 1.0})
    db.session.commit()
    assert studied(start) == {member.id}


def test_reading_a_lesson_is_study(ctx, clock):
    member, lesson = make_user(), make_lesson(duration=None, completion="read")
    start = clock.now
    viewing, _progress = learning.start_session(member, lesson)
    clock.advance(12)
    learning.record_beat(member, viewing.id, {"seq": 1, "read": 10})
    db.session.commit()
    assert studied(start) == {member.id}


def test_opening_a_lesson_without_playing_it_is_not_study(ctx, clock):
    member, lesson = make_user(), make_lesson()
    start = clock.now
    learning.start_session(member, lesson)
    db.session.commit()
    assert studied(start) == set()


def test_completing_a_lesson_is_study(ctx):
    member, lesson = make_user(), make_lesson()
    now = db.utcnow()
    db.session.add(LessonProgress(user_id=member.id, lesson_id=lesson.id, completed_at=now, updated_at=now))
    db.session.commit()
    assert studied(now - timedelta(days=1)) == {member.id}


def test_confirming_a_lesson_finished_is_study(ctx, clock):
    member, lesson = make_user(), make_lesson(duration=None, completion="confirm")
    start = clock.now
    learning.confirm_finished(member, lesson)
    db.session.execute(sa.delete(CreditEntry))  # the confirmation alone, without its 学时
    db.session.commit()
    assert studied(start) == {member.id}


def test_submitting_a_quiz_is_study_even_when_it_earns_no_hours(ctx):
    member = make_user()
    now = db.utcnow()
    db.session.add(
        Attempt(
            user_id=member.id,
            kind="daily",
            day=now.date(),
            state="submitted",
            items_json="[]",
            pass_percent=60,
            submitted_at=now,
        )
    )
    db.session.commit()
    assert studied(now - timedelta(days=1)) == {member.id}


def test_earning_hours_is_study(ctx):
    member = make_user()
    start = db.utcnow() - timedelta(seconds=1)
    credits.credit_once(member.id, 1, "offline", "offline:1")
    db.session.commit()
    assert studied(start) == {member.id}


def test_a_member_with_only_a_reversed_credit_has_not_studied(ctx):
    member, admin = make_user(), make_admin()
    entry = credit(member, "2", "lesson", db.utcnow())
    credits.reverse(entry, admin, "credited by mistake", logged=False)
    db.session.commit()
    assert studied(db.utcnow() - timedelta(days=1)) == set()


def test_a_manual_adjustment_is_not_study(ctx):
    member = make_user()
    credit(member, "3", "manual", db.utcnow())
    db.session.commit()
    assert studied(db.utcnow() - timedelta(days=1)) == set()


def test_only_study_inside_the_period_counts(ctx):
    member, lesson = make_user(), make_lesson()
    now = db.utcnow()
    db.session.add(
        ViewingSession(
            id=secrets.token_hex(16),
            user_id=member.id,
            lesson_id=lesson.id,
            started_at=now - timedelta(days=10),
            last_beat_at=now - timedelta(days=10),
            beats=3,
        )
    )
    db.session.commit()
    assert studied(now - timedelta(days=20), now - timedelta(days=5)) == {member.id}
    assert studied(now - timedelta(days=20), now - timedelta(days=15)) == set()
    assert studied(now - timedelta(days=5)) == set()


def test_last_study_is_the_latest_moment_of_any_kind(ctx):
    member, lesson = make_user(), make_lesson()
    now = db.utcnow()
    db.session.add(
        LessonProgress(user_id=member.id, lesson_id=lesson.id, completed_at=now - timedelta(days=9))
    )
    credit(member, "1", "daily_quiz", now - timedelta(days=3))
    credit(member, "1", "manual", now - timedelta(days=1))  # not study
    db.session.commit()
    assert activity.last_study_at(member.id) == now - timedelta(days=3)
    assert activity.last_study_at(make_user().id) is None


# The pages agree


def lesson_opened(user, lesson, when):
    db.session.add(
        LessonProgress(user_id=user.id, lesson_id=lesson.id, updated_at=when, first_opened_at=when)
    )


def lesson_read(user, lesson, when):
    db.session.add(
        LessonProgress(user_id=user.id, lesson_id=lesson.id, updated_at=when, time_spent=60, read_seconds=60)
    )


def lesson_played(user, lesson, when):
    db.session.add(
        ViewingSession(
            id=secrets.token_hex(16),
            user_id=user.id,
            lesson_id=lesson.id,
            started_at=when,
            last_beat_at=when,
            beats=3,
        )
    )


def lesson_completed(user, lesson, when):
    db.session.add(LessonProgress(user_id=user.id, lesson_id=lesson.id, completed_at=when, updated_at=when))


def credit_reversed(user, lesson, when):
    entry = credit(user, "2", "lesson", when)
    db.session.add(
        CreditEntry(
            user_id=user.id,
            year=when.year,
            amount=-entry.amount,
            source="reversal",
            ref_key=f"reversal:{entry.id}",
            reverses_id=entry.id,
            created_at=when,
        )
    )


# What each member did (two days ago unless said otherwise), and whether they studied in the
# last 30 days.
CASES = {
    "played": (lesson_played, True),
    "read": (lesson_read, True),
    "completed": (lesson_completed, True),
    "earned hours": (lambda user, lesson, when: credit(user, "1", "lesson", when), True),
    "opened only": (lesson_opened, False),
    "reversed credit": (credit_reversed, False),
    "manual adjustment": (lambda user, lesson, when: credit(user, "1", "manual", when), False),
    "played long ago": (
        lambda user, lesson, when: lesson_played(user, lesson, when - timedelta(days=58)),
        False,
    ),
    "nothing": (lambda user, lesson, when: None, False),
}


def test_warnings_member_filter_and_comparison_agree_on_who_studied(ctx):
    tree = make_tree()
    street, lesson = tree["street_a"], make_lesson()
    now = db.utcnow()
    recent = now - timedelta(days=2)
    branch_of, member_of = {}, {}
    for name, (do, _studied) in CASES.items():
        branch = make_org(f"支部 {name}", "branch", street)
        member = make_user(branch)
        member.created_at = now - timedelta(days=90)  # long enough to be judged by the warning rule
        do(member, lesson, recent)
        branch_of[name], member_of[name] = branch.id, member.id
    db.session.execute(sa.delete(WarningRule))
    rule = WarningRule(
        kind="inactive_share", org_kind="branch", days=30, threshold=Decimal("0"), min_members=1
    )
    db.session.add(rule)
    db.session.commit()
    idle = {name for name, (_do, did_study) in CASES.items() if not did_study}

    warned = {f.org_id for f in warnings.findings(rule, now, now.date())}
    assert warned == {branch_of[name] for name in idle}

    admin = make_admin()
    filtered = orgs.members_stmt(admin, street.id, filters=orgs.MemberFilter(idle_days=30), now=now)
    assert set(db.session.scalars(filtered.with_only_columns(User.id))) == {member_of[name] for name in idle}

    today = now.date()
    period = comparison.Period("30d", today - timedelta(days=29), today)
    rows = comparison.figures(street.id, period, (Decimal(1), Decimal(1)))
    assert {row.org_id for row in rows if row.members and not row.studied} == {
        branch_of[name] for name in idle
    }
