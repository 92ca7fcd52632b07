"""Transferring a member to another branch: their record goes with them, plans follow the branch."""

from datetime import timedelta

import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.credits import service as credits
from school.learning.models import LessonProgress
from school.orgs.models import Org
from school.plans import service as plans
from school.plans.models import StudyPlan
from school.roster import members
from school.roster.models import MemberTransfer
from tests.conftest import csrf_from, sign_in
from tests.factories import make_admin, make_organizer, make_tree, make_user
from tests.plans.study_data import complete, local_today, make_course, make_plan

ORGANIZER = "13800000001"


def organizer_of(client, org, phone=ORGANIZER):
    make_organizer(org, phone=phone)
    sign_in(client, phone)
    return client


def post(client, url, data=None, page="/members"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def user(user_id: int) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def transfers(member) -> list[MemberTransfer]:
    return list(db.session.scalars(sa.select(MemberTransfer).where(MemberTransfer.user_id == member.id)))


def reached(plan) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(plans.members_of_plan_stmt(db.session.get(StudyPlan, plan.id))))


def progress_rows(member) -> list[tuple]:
    db.session.expire_all()
    stmt = sa.select(
        LessonProgress.lesson_id, LessonProgress.completed_at, LessonProgress.covered_seconds
    ).where(LessonProgress.user_id == member.id)
    return sorted(db.session.execute(stmt).all())


def test_a_transfer_keeps_study_hours_and_progress_and_the_plans_follow_the_branch(app, client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"], name="流动党员张", floating=True)
    course = make_course(lessons=2)
    complete(member, course.lessons[0])
    today = local_today(app)
    old_plan = make_plan(tree["branch_a1"], "一支部计划", today + timedelta(days=30), [course])
    new_plan = make_plan(tree["branch_a2"], "二支部计划", today + timedelta(days=30), [course])
    street_plan = make_plan(tree["street_a"], "街道计划", today + timedelta(days=30), [course])
    with app.app_context():
        credits.credit_once(member.id, "1.5", "lesson", "lesson:1", "党课")
        credits.credit_once(member.id, "0.5", "daily_quiz", "daily:2026-11-01")
        db.session.commit()
        year = credits.study_year()
        hours_before = credits.year_total(member.id, year)
    progress_before = progress_rows(member)
    assert member.id in reached(old_plan) and member.id not in reached(new_plan)

    response = post(
        client,
        f"/members/{member.id}/transfer",
        {"org_id": tree["branch_a2"].id, "reason": "外出务工，就近学习"},
    )
    assert response.status_code == 302

    moved = user(member.id)
    assert moved.home_org_id == tree["branch_a2"].id
    with app.app_context():
        assert credits.year_total(member.id, year) == hours_before == credits.year_total(moved.id, year)
        assert hours_before > 0
    assert progress_rows(member) == progress_before and progress_before
    assert member.id in reached(new_plan) and member.id not in reached(old_plan)
    assert member.id in reached(street_plan)  # still inside the street
    with app.app_context():
        titles = {p.plan.title for p in plans.plans_for_member(moved, today)}
        assert titles == {"二支部计划", "街道计划"}
        assert (
            next(p for p in plans.plans_for_member(moved, today) if p.plan.id == new_plan.id).completed == 1
        )

    [row] = transfers(member)
    assert (row.from_org_id, row.to_org_id, row.reason) == (
        tree["branch_a1"].id,
        tree["branch_a2"].id,
        "外出务工，就近学习",
    )
    assert row.by_user_id == db.session.scalar(sa.select(User.id).where(User.phone == ORGANIZER))
    html = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "由a街道第1支部转入a街道第2支部" in html and "外出务工，就近学习" in html


def test_transferring_to_a_closed_branch_is_refused_and_changes_nothing(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    db.session.execute(sa.update(Org).where(Org.id == tree["branch_a2"].id).values(closed_at=db.utcnow()))
    db.session.commit()
    response = post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_a2"].id})
    assert response.status_code == 400 and "已关闭" in response.get_data(as_text=True)
    assert user(member.id).home_org_id == tree["branch_a1"].id and transfers(member) == []
    html = client.get(f"/members/{member.id}/transfer").get_data(as_text=True)
    assert f'value="{tree["branch_a2"].id}"' not in html


def test_transferring_outside_my_subtree_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    response = post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_b1"].id})
    assert response.status_code == 403
    assert user(member.id).home_org_id == tree["branch_a1"].id and transfers(member) == []
    html = client.get(f"/members/{member.id}/transfer").get_data(as_text=True)
    assert "b街道" not in html


def test_transferring_to_the_same_branch_or_a_street_or_nowhere_is_refused(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    for target in (tree["branch_a1"].id, tree["street_a"].id, "", "abc"):
        response = post(client, f"/members/{member.id}/transfer", {"org_id": target})
        assert response.status_code == 400
    response = post(
        client, f"/members/{member.id}/transfer", {"org_id": tree["branch_a2"].id, "reason": "长" * 201}
    )
    assert response.status_code == 400
    assert user(member.id).home_org_id == tree["branch_a1"].id and transfers(member) == []


def test_admin_transfers_between_districts(client):
    tree = make_tree()
    make_admin(phone="13800000009")
    sign_in(client, "13800000009")
    member = make_user(tree["branch_a1"])
    assert post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_b2"].id}).status_code == 302
    assert user(member.id).home_org_id == tree["branch_b2"].id
    assert [t.to_org_id for t in transfers(member)] == [tree["branch_b2"].id]


def test_after_a_transfer_out_the_old_organizer_no_longer_sees_the_member(app, client):
    tree = make_tree()
    member = make_user(tree["branch_a1"])
    admin = make_admin()
    with app.test_request_context():
        members.transfer_member(admin, db.session.get(User, member.id), tree["branch_b1"].id, "", db.utcnow())
        db.session.commit()
    organizer_of(client, tree["district_a"])
    assert client.get(f"/members/{member.id}").status_code == 404


def test_a_transferred_out_branch_can_then_be_closed(client):
    tree = make_tree()
    organizer_of(client, tree["district_a"])
    member = make_user(tree["branch_a1"])
    post(client, f"/orgs/{tree['branch_a1'].id}/close")
    assert db.session.get(Org, tree["branch_a1"].id).closed_at is None
    post(client, f"/members/{member.id}/transfer", {"org_id": tree["branch_a2"].id})
    post(client, f"/orgs/{tree['branch_a1'].id}/close")
    db.session.expire_all()
    assert db.session.get(Org, tree["branch_a1"].id).closed_at is not None
