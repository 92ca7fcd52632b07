from datetime import timedelta

import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.content import generate
from school.credits.models import CreditEntry
from school.errors import Conflict
from school.learning.models import LessonProgress
from school.orgs.models import Org
from school.plans.models import StudyPlan
from school.quizzes.models import Attempt

SHAPE = {"members": 200, "lessons": 12, "districts": 2, "streets": 2, "branches": 3}


@pytest.fixture()
def city(app):
    with app.app_context():
        return generate.build_city(**SHAPE)


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_builds_the_tree_members_courses_and_plan(app, city):
    with app.app_context():
        assert count(Org, Org.kind == "branch") == 12 and len(city.branch_ids) == 12
        assert count(User, User.home_org_id.in_(city.branch_ids)) == 200
        # every branch has members
        homes = set(
            db.session.scalars(sa.select(User.home_org_id).where(User.home_org_id.in_(city.branch_ids)))
        )
        assert homes == set(city.branch_ids)
        assert len(city.lesson_ids) == 12 and len(city.course_ids) == 2
        plan = db.session.get(StudyPlan, city.plan_id)
        assert plan.org_id == city.city_id and plan.required_hours > 0


def test_study_is_partial_with_ledger_entries_for_completions(app, city):
    with app.app_context():
        rows = count(LessonProgress)
        done = count(LessonProgress, LessonProgress.completed_at.is_not(None))
        assert 0 < done < rows
        assert count(CreditEntry) == done  # one ledger entry per completed lesson
        partial = count(
            LessonProgress, LessonProgress.completed_at.is_(None), LessonProgress.covered_seconds > 0
        )
        assert partial > 0
        assert count(Attempt, Attempt.state == "submitted") > 0


def test_dormant_branches_stopped_studying_long_ago(app, city):
    with app.app_context():
        now = db.utcnow()
        members = sa.select(User.id).where(User.home_org_id.in_(city.dormant_branch_ids))
        latest = db.session.scalar(
            sa.select(sa.func.max(LessonProgress.updated_at)).where(LessonProgress.user_id.in_(members))
        )
        assert latest is not None and latest < now - timedelta(days=59)
        others = sa.select(User.id).where(User.home_org_id.notin_(city.dormant_branch_ids))
        recent = db.session.scalar(
            sa.select(sa.func.max(LessonProgress.updated_at)).where(LessonProgress.user_id.in_(others))
        )
        assert recent > now - timedelta(days=30)


def test_a_second_run_is_refused_and_changes_nothing(app, city):
    with app.app_context():
        before = count(User)
        with pytest.raises(Conflict):
            generate.build_city(**SHAPE)
        db.session.rollback()
        assert count(User) == before


def test_command_generates_then_refuses_a_second_time(app):
    runner = app.test_cli_runner()
    args = ["content", "generate-city", "--members", "60", "--lessons", "10"]
    args += ["--districts", "1", "--streets", "1", "--branches", "2"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "60 members" in first.output and "gen-organizer-city" in first.output
    second = runner.invoke(args=args)
    assert second.exit_code != 0 and "already" in second.output


def test_warnings_are_raised_on_the_dormant_branches_and_escalate_while_it_lasts(app, city):
    from school.warnings import service as warnings
    from school.warnings.models import OrgWarning

    with app.app_context():
        now = db.utcnow()
        warnings.evaluate(now, now.date())
        db.session.commit()
        stopped = {
            w.org_id: w
            for w in db.session.scalars(sa.select(OrgWarning))
            if w.rule.kind in ("inactive_share", "no_offline_lesson")
        }
        assert set(city.dormant_branch_ids) <= set(stopped)
        warnings.evaluate(now + timedelta(days=15), (now + timedelta(days=15)).date())
        db.session.commit()
        db.session.expire_all()
        dormant = db.session.scalars(
            sa.select(OrgWarning).where(OrgWarning.org_id.in_(city.dormant_branch_ids))
        ).all()
        assert dormant and {w.level for w in dormant} == {"orange"}
