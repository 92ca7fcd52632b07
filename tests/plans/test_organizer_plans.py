from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from school import db
from school.plans import service
from school.plans.models import PlanTarget, StudyPlan
from tests.conftest import csrf_from, sign_in
from tests.factories import make_organizer, make_tree, make_user
from tests.plans.study_data import local_today, make_course, make_plan

TODAY = date(2026, 11, 27)


@pytest.fixture()
def tree():
    return make_tree()


def organizer_client(client, org, phone="13800000001"):
    make_organizer(org, phone=phone)
    sign_in(client, phone)
    return client


def post_plan(client, url, **fields):
    token = csrf_from(client.get(url).get_data(as_text=True))
    data = {"csrf_token": token, "title": "学习计划", "starts_on": "2026-12-01", "due_on": "2026-12-31"}
    data.update(fields)
    return client.post(url, data=data)


def plan_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(StudyPlan.id)))


def reached(plan) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(service.members_of_plan_stmt(db.session.get(StudyPlan, plan.id))))


# Scope


def test_organizer_lists_only_plans_of_their_subtree(app, client, tree):
    course = make_course()
    make_plan(tree["branch_a1"], "a支部计划", TODAY, [course])
    make_plan(tree["district_b"], "b区计划", TODAY, [course])
    organizer_client(client, tree["district_a"])
    html = client.get("/plans").get_data(as_text=True)
    assert "a支部计划" in html and "b区计划" not in html


def test_org_id_of_another_district_is_refused_on_every_route(app, client, tree):
    organizer_client(client, tree["district_a"])
    other = tree["branch_b1"].id
    assert client.get(f"/plans?org_id={other}").status_code == 403
    assert client.get(f"/plans/new?org_id={other}").status_code == 403
    token = csrf_from(client.get("/plans/new").get_data(as_text=True))
    response = client.post(f"/plans/new?org_id={other}", data={"csrf_token": token, "title": "x"})
    assert response.status_code == 403
    assert plan_count() == 0


def test_organizer_cannot_see_edit_or_close_a_plan_of_another_district(app, client, tree):
    plan = make_plan(tree["district_b"], "b区计划", TODAY, [make_course()])
    organizer_client(client, tree["district_a"])
    token = csrf_from(client.get("/plans").get_data(as_text=True))
    assert client.get(f"/plans/{plan.id}").status_code == 403
    assert client.get(f"/plans/{plan.id}/edit").status_code == 403
    assert client.post(f"/plans/{plan.id}/edit", data={"csrf_token": token, "title": "改"}).status_code == 403
    assert client.post(f"/plans/{plan.id}/close", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/plans/{plan.id}/reopen", data={"csrf_token": token}).status_code == 403
    db.session.expire_all()
    assert db.session.get(StudyPlan, plan.id).title == "b区计划"
    assert db.session.get(StudyPlan, plan.id).closed_at is None


def test_members_cannot_open_plan_pages(app, client, tree):
    make_user(tree["branch_a1"], phone="13900000009")
    sign_in(client, "13900000009")
    assert client.get("/plans").status_code == 403


# Create, edit, close


def test_organizer_creates_a_plan_narrowed_to_a_branch_and_a_category(app, client, tree):
    course = make_course()
    organizer_client(client, tree["district_a"])
    response = post_plan(
        client,
        f"/plans/new?org_id={tree['district_a'].id}",
        courses=str(course.id),
        orgs=str(tree["branch_a1"].id),
        categories="retired",
        required_hours="4.5",
    )
    assert response.status_code == 302
    plan = db.session.scalar(sa.select(StudyPlan))
    assert plan.org_id == tree["district_a"].id and str(plan.required_hours) == "4.50"
    assert {(t.kind, t.org_id, t.category) for t in plan.targets} == {
        ("org", tree["branch_a1"].id, None),
        ("category", None, "retired"),
    }
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "a街道第1支部" in page and "离退休" in page


def test_edit_replaces_items_and_targets_and_close_then_reopen(app, client, tree):
    first, second = make_course(title="甲"), make_course(title="乙")
    plan = make_plan(tree["district_a"], "计划", TODAY, [first])
    organizer_client(client, tree["district_a"])
    url = f"/plans/{plan.id}/edit"
    assert "计划" in client.get(url).get_data(as_text=True)
    assert (
        post_plan(client, url, title="新计划", courses=str(second.id), categories="floating").status_code
        == 302
    )
    db.session.expire_all()
    plan = db.session.get(StudyPlan, plan.id)
    assert plan.title == "新计划" and [i.course_id for i in plan.items] == [second.id]
    assert [t.category for t in plan.targets] == ["floating"]
    token = csrf_from(client.get(f"/plans/{plan.id}").get_data(as_text=True))
    client.post(f"/plans/{plan.id}/close", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(StudyPlan, plan.id).closed_at is not None
    client.post(f"/plans/{plan.id}/reopen", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(StudyPlan, plan.id).closed_at is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"starts_on": "2026-12-31", "due_on": "2026-12-01"}, "截止日期不能早于开始日期"),
        ({"title": ""}, "请填写学习计划的标题"),
        ({"title": "长" * 121}, "标题最多 120 个字"),
        ({"required_hours": "201"}, "要求学时须在 0 到 200 之间"),
        ({"courses": ""}, "请至少选择一门课程或一个课时"),
        ({"courses": "99999"}, "只能指派已发布的课程和课时"),
        ({"orgs": "BRANCH_B"}, "所选组织必须在本计划的组织之内"),
        ({"members": "13700000000"}, "找不到手机号或用户名为"),
        ({"members": "13900000008"}, "不是本计划组织的党员"),
    ],
)
def test_invalid_plan_shows_a_chinese_message_and_saves_nothing(app, client, tree, fields, message):
    course = make_course()
    make_user(tree["branch_b1"], phone="13900000008")
    organizer_client(client, tree["district_a"])
    data = {"courses": str(course.id)}
    data.update(fields)
    if data.get("orgs") == "BRANCH_B":
        data["orgs"] = str(tree["branch_b1"].id)
    response = post_plan(client, f"/plans/new?org_id={tree['district_a'].id}", **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert plan_count() == 0
    assert db.session.scalar(sa.select(sa.func.count(PlanTarget.id))) == 0


def test_draft_course_cannot_be_assigned(app, client, tree):
    draft = make_course(published=False)
    organizer_client(client, tree["district_a"])
    response = post_plan(client, "/plans/new", courses=str(draft.id))
    assert response.status_code == 400 and plan_count() == 0


def test_plan_page_shows_how_many_members_it_reaches(app, client, tree):
    plan = make_plan(tree["street_a"], "街道计划", TODAY, [make_course()])
    make_user(tree["branch_a1"]), make_user(tree["branch_a2"]), make_user(tree["branch_b1"])
    organizer_client(client, tree["district_a"])
    html = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert '<span class="stat">0</span> / 2' in html


def test_home_links_organizers_to_study_plans(app, client, tree):
    organizer_client(client, tree["district_a"])
    assert 'href="/plans"' in client.get("/").get_data(as_text=True)


# Targeting


def add_targets(plan, *targets):
    plan.targets = list(targets)
    db.session.commit()


def test_plan_without_targets_reaches_the_whole_subtree(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    a1, a2 = make_user(tree["branch_a1"]), make_user(tree["branch_a2"])
    make_user(tree["branch_b1"])
    assert reached(plan) == {a1.id, a2.id}


def test_branch_target_narrows_to_that_branch(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    add_targets(plan, PlanTarget(kind="org", org_id=tree["branch_a1"].id))
    a1, a2 = make_user(tree["branch_a1"]), make_user(tree["branch_a2"])
    assert reached(plan) == {a1.id}
    assert [p.plan.title for p in service.plans_for_member(a1, TODAY)] == ["计划"]
    assert service.plans_for_member(a2, TODAY) == []
    assert service.assigned_course_ids(a2, TODAY) == set()


def test_category_target_narrows_to_members_of_that_category(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    add_targets(
        plan,
        PlanTarget(kind="category", category="probationary"),
        PlanTarget(kind="category", category="floating"),
    )
    trial = make_user(tree["branch_a1"], member_status="probationary")
    away = make_user(tree["branch_a2"], member_status="full", floating=True)
    full = make_user(tree["branch_a1"], member_status="full")
    assert reached(plan) == {trial.id, away.id}
    assert service.plans_for_member(full, TODAY) == []
    assert len(service.plans_for_member(away, TODAY)) == 1


def test_branch_and_category_targets_both_apply_and_named_members_are_added(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    retired_a1 = make_user(tree["branch_a1"], employment="retired")
    working_a1 = make_user(tree["branch_a1"], employment="working")
    retired_a2 = make_user(tree["branch_a2"], employment="retired")
    named = make_user(tree["branch_a2"], employment="working")
    add_targets(
        plan,
        PlanTarget(kind="org", org_id=tree["branch_a1"].id),
        PlanTarget(kind="category", category="retired"),
        PlanTarget(kind="member", user_id=named.id),
    )
    assert reached(plan) == {retired_a1.id, named.id}
    assert service.plans_for_member(working_a1, TODAY) == []
    assert service.plans_for_member(retired_a2, TODAY) == []
    assert len(service.plans_for_member(named, TODAY)) == 1


def test_member_transferred_into_the_subtree_gets_the_plan_and_one_transferred_out_loses_it(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    newcomer = make_user(tree["branch_b1"])
    leaver = make_user(tree["branch_a1"])
    assert service.plans_for_member(newcomer, TODAY) == []
    newcomer.home_org_id, leaver.home_org_id = tree["branch_a2"].id, tree["branch_b2"].id
    db.session.commit()
    assert [p.plan.title for p in service.plans_for_member(newcomer, TODAY)] == ["计划"]
    assert service.plans_for_member(leaver, TODAY) == []
    assert reached(plan) == {newcomer.id}


def test_named_member_who_transfers_out_loses_the_plan(app, tree):
    plan = make_plan(tree["district_a"], "计划", TODAY, [make_course()])
    named = make_user(tree["branch_a1"])
    add_targets(plan, PlanTarget(kind="member", user_id=named.id))
    named.home_org_id = tree["branch_b1"].id
    db.session.commit()
    assert reached(plan) == set()
    assert service.plans_for_member(named, TODAY) == []


def test_closed_plan_is_not_shown_to_members(app, tree):
    plan = make_plan(tree["branch_a1"], "计划", TODAY, [make_course()])
    member = make_user(tree["branch_a1"])
    plan.closed_at = db.utcnow()
    db.session.commit()
    assert service.plans_for_member(member, TODAY) == []


def test_plan_lesson_ids_lists_published_lessons_of_its_courses(app, tree):
    course = make_course(lessons=3)
    plan = make_plan(tree["branch_a1"], "计划", local_today(app), [course])
    assert service.plan_lesson_ids(plan) == sorted(lesson.id for lesson in course.lessons)


def test_plans_cli_remind_prints_how_many_were_sent(app, tree):
    course = make_course(lessons=1)
    make_plan(tree["branch_a1"], "计划", TODAY + timedelta(days=7), [course])
    make_user(tree["branch_a1"]), make_user(tree["branch_a1"])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["plans", "remind", "--date", TODAY.isoformat()])
    assert result.exit_code == 0 and "2 reminders sent" in result.output
    result = runner.invoke(args=["plans", "remind", "--date", TODAY.isoformat()])
    assert "0 reminders sent" in result.output
