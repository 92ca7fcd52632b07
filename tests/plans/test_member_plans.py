from datetime import date, timedelta

import sqlalchemy as sa

from school import db
from school.plans import service
from school.plans.models import PlanItem, StudyPlan
from tests.factories import make_org, make_tree, make_user
from tests.plans.study_data import complete, make_course, make_plan

TODAY = date(2026, 11, 27)


def test_member_gets_plans_of_their_branch_and_every_org_above_soonest_first():
    tree = make_tree()
    member = make_user(tree["branch_a1"])
    course = make_course()
    make_plan(tree["city"], "全市计划", TODAY + timedelta(days=30), [course])
    make_plan(tree["street_a"], "街道计划", TODAY + timedelta(days=3), [course])
    make_plan(tree["branch_a1"], "支部计划", TODAY + timedelta(days=10), [course])
    titles = [p.plan.title for p in service.plans_for_member(member, TODAY)]
    assert titles == ["街道计划", "支部计划", "全市计划"]


def test_plans_of_another_branch_subtree_do_not_reach_the_member():
    tree = make_tree()
    member = make_user(tree["branch_a1"])
    course = make_course()
    make_plan(tree["district_b"], "b区计划", TODAY + timedelta(days=3), [course])
    make_plan(tree["branch_a2"], "兄弟支部计划", TODAY + timedelta(days=3), [course])
    assert service.plans_for_member(member, TODAY) == []
    assert service.assigned_course_ids(member, TODAY) == set()


def test_plans_that_have_not_started_are_not_shown():
    branch = make_org()
    member = make_user(branch)
    make_plan(
        branch, "下月计划", TODAY + timedelta(days=60), [make_course()], starts=TODAY + timedelta(days=1)
    )
    assert service.plans_for_member(member, TODAY) == []


def test_plan_progress_counts_the_published_lessons_the_member_completed():
    branch = make_org()
    member = make_user(branch)
    course = make_course(lessons=3)
    draft = make_course(title="草稿课", published=False)
    make_plan(branch, "计划", TODAY + timedelta(days=5), [course, draft])
    complete(member, course.lessons[0])
    complete(make_user(branch), course.lessons[1])  # someone else's progress does not count
    (plan,) = service.plans_for_member(member, TODAY)
    assert (plan.completed, plan.total, plan.done, plan.overdue) == (1, 3, False, False)


def test_a_plan_past_its_deadline_and_not_done_is_overdue():
    branch = make_org()
    member = make_user(branch)
    make_plan(branch, "计划", TODAY - timedelta(days=2), [make_course()])
    (plan,) = service.plans_for_member(member, TODAY)
    assert plan.overdue and plan.days_left == -2


def test_a_plan_with_a_lesson_item_counts_that_lesson_and_assigns_its_course():
    branch = make_org()
    member = make_user(branch)
    course = make_course(lessons=2)
    plan = StudyPlan(
        org_id=branch.id,
        title="单课",
        starts_on=TODAY,
        due_on=TODAY,
        items=[PlanItem(lesson_id=course.lessons[1].id)],
    )
    db.session.add(plan)
    db.session.commit()
    (mine,) = service.plans_for_member(member, TODAY)
    assert mine.total == 1
    assert service.assigned_course_ids(member, TODAY) == {course.id}


PLANS_YAML = """
plans:
  - code: p-1
    title: 组织生活专题学习
    org: c
    start: 2026-11-01
    deadline: 2026-12-31
    courses: [course-a]
  - code: p-2
    title: 临时计划
    org: b
    start: -3d
    deadline: +14d
    required_hours: 2
    courses: [course-a, course-b]
"""


def _content(tmp_path, plans=PLANS_YAML):
    (tmp_path / "orgs.yaml").write_text(
        "- {code: c, name: 市委, kind: city, children: [{code: b, name: 一支部, kind: branch}]}\n",
        encoding="utf-8",
    )
    (tmp_path / "plans.yaml").write_text(plans, encoding="utf-8")
    return tmp_path


def test_plans_load_from_content_and_a_second_load_changes_nothing(app, tmp_path):
    make_course(code="course-a")
    make_course(title="另一课", code="course-b")
    runner = app.test_cli_runner()
    first = runner.invoke(app.cli, ["content", "load", str(_content(tmp_path))])
    assert first.exit_code == 0, first.output
    assert "plans: 2 created, 0 updated, 0 unchanged" in first.output
    second = runner.invoke(app.cli, ["content", "load", str(tmp_path)])
    assert "plans: 0 created, 0 updated, 2 unchanged" in second.output
    with app.app_context():
        plans = list(db.session.scalars(sa.select(StudyPlan).order_by(StudyPlan.code)))
        assert [len(p.items) for p in plans] == [1, 2]
        assert plans[0].due_on == date(2026, 12, 31)
        assert plans[1].due_on - plans[1].starts_on == timedelta(days=17)


def test_a_changed_plan_is_updated(app, tmp_path):
    make_course(code="course-a")
    make_course(title="另一课", code="course-b")
    runner = app.test_cli_runner()
    runner.invoke(app.cli, ["content", "load", str(_content(tmp_path))])
    result = runner.invoke(
        app.cli, ["content", "load", str(_content(tmp_path, PLANS_YAML.replace("2026-12-31", "2026-12-20")))]
    )
    assert "plans: 0 created, 1 updated, 1 unchanged" in result.output


def test_a_plan_naming_an_unknown_course_loads_no_plan(app, tmp_path):
    make_course(code="course-a")
    result = app.test_cli_runner().invoke(app.cli, ["content", "load", str(_content(tmp_path))])
    assert result.exit_code != 0 and "unknown course 'course-b'" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StudyPlan)) == 0
