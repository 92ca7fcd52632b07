import csv
import io
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.credits.service import credit_once, local_now
from school.plans.models import PlanTarget, StudyPlan
from school.reports import plans, trends
from tests.conftest import sign_in
from tests.factories import make_organizer, make_tree, make_user
from tests.plans.study_data import local_today, make_course, make_plan
from tests.reports.report_data import progress
from tests.reports.test_hours_report import _num, csv_rows, page_rows, xlsx_rows


@pytest.fixture()
def city(app):
    """A city plan of one two-lesson course (1 study hour required). In a1: 甲 completed both
    lessons, 乙 watched half of one, 丙 nothing, 丁 completed both but was deactivated. In b1: 戊
    completed both."""
    with app.app_context():
        t = make_tree()
        course = make_course(title="党章", lessons=2)
        lessons = list(course.lessons)
        today = local_now().date()
        plan = make_plan(
            t["city"], "全市学党章", today + timedelta(days=10), [course], starts=today - timedelta(days=30)
        )
        plan.required_hours = Decimal("1")
        people = {
            "jia": make_user(org=t["branch_a1"], name="甲"),
            "yi": make_user(org=t["branch_a1"], name="乙"),
            "bing": make_user(org=t["branch_a1"], name="丙"),
            "ding": make_user(org=t["branch_a1"], name="丁"),
            "wu": make_user(org=t["branch_b1"], name="戊"),
        }
        now = db.utcnow()
        for key, days in (("jia", 1), ("ding", 2), ("wu", 9)):
            for lesson in lessons:
                progress(people[key], lesson, 100, done_at=now - timedelta(days=days))
        progress(people["yi"], lessons[0], 50)
        credit_once(people["jia"].id, "1.5", "lesson", "lesson:x", "")
        credit_once(people["yi"].id, "0.5", "lesson", "lesson:y", "")
        db.session.get(User, people["ding"].id).active = False
        db.session.commit()
        make_organizer(t["district_a"], username="org-a")
        make_organizer(t["city"], username="org-city")
        ids = {k: v.id for k, v in {**t, **people}.items()}
        ids["plan"], ids["course"] = plan.id, course.id
        return ids


def viewer(name):
    return db.session.scalars(sa.select(User).where(User.username == name)).one()


def run(app, ids, org_key, who="org-city", today=None):
    with app.app_context():
        plan = db.session.get(StudyPlan, ids["plan"])
        return plans.plan_report(plan, ids[org_key], viewer(who), today or local_now().date())


def by_name(report):
    return {row.name: row for row in report.children}


def test_city_figures_match_hand_computation(app, city):
    r = run(app, city, "city")
    a, b = by_name(r)["a区委"], by_name(r)["b区委"]
    # a: 甲 1.0, 乙 (0.5 + 0) / 2, 丙 0 → 1.25 / 3
    assert (a.assigned, a.completed, a.rate, a.average_coverage, a.not_started) == (
        3,
        1,
        Decimal("33.3"),
        Decimal("41.7"),
        1,
    )
    assert (a.hours, a.hours_reached) == (Decimal("2.00"), 1)
    assert (b.assigned, b.completed, b.rate, b.average_coverage) == (1, 1, Decimal("100.0"), Decimal("100.0"))
    assert (r.total.assigned, r.total.completed, r.total.rate) == (4, 2, Decimal("50.0"))


def test_rollup_equals_sum_of_children(app, city):
    row = by_name(run(app, city, "city"))["a区委"]
    for key in ("district_a", "street_a"):
        r = run(app, city, key)
        assert (r.total.assigned, r.total.completed, r.total.started, r.total.hours) == (
            row.assigned,
            row.completed,
            row.started,
            row.hours,
        )
        assert r.total.assigned == sum(c.assigned for c in r.children)


def test_branch_lists_each_member_with_status(app, city):
    statuses = {m.name: m.status for m in run(app, city, "branch_a1").members}
    assert statuses == {"甲": plans.DONE, "乙": plans.DOING, "丙": plans.NOT_STARTED}


def test_after_the_deadline_unfinished_members_are_overdue(app, city):
    later = local_today(app) + timedelta(days=11)
    statuses = {m.name: m.status for m in run(app, city, "branch_a1", today=later).members}
    assert statuses == {"甲": plans.DONE, "乙": plans.OVERDUE, "丙": plans.OVERDUE}


def test_plan_targets_narrow_who_is_counted(app, city):
    with app.app_context():
        plan = db.session.get(StudyPlan, city["plan"])
        plan.targets = [PlanTarget(kind="org", org_id=city["district_b"])]
        db.session.commit()
    r = run(app, city, "city")
    assert by_name(r)["a区委"].assigned == 0 and by_name(r)["b区委"].assigned == 1


def test_completions_by_week_are_cumulative(app, city):
    with app.app_context():
        plan = db.session.get(StudyPlan, city["plan"])
        today = local_now().date()
        weeks = trends.plan_weeks(plan, city["city"], plans.plan_lesson_ids(plan), today)
    assert sum(w.value for w in weeks) == 2 and weeks[-1].total == 2
    assert [w.total for w in weeks] == sorted(w.total for w in weeks)
    assert weeks[0].starts_on <= today - timedelta(days=30) < weeks[0].starts_on + timedelta(days=7)


def test_district_organizer_sees_only_their_district(client, city):
    sign_in(client, "org-a")
    page = client.get(f"/reports/plans/{city['plan']}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "a街道" in text and "b区委" not in text and "示范市委" not in text
    for key in ("city", "district_b", "branch_b1"):
        for suffix in ("", ".csv", ".xlsx"):
            response = client.get(f"/reports/plans/{city['plan']}{suffix}?org_id={city[key]}")
            assert response.status_code == 403
    refused = client.get(f"/reports/plans/{city['plan']}?org_id={city['city']}").get_data(as_text=True)
    assert "只能" in refused or "管理" in refused


def test_member_cannot_open_plan_report(client, city):
    with client.application.app_context():
        make_user(org=None, username="plain")
    sign_in(client, "plain")
    assert client.get(f"/reports/plans/{city['plan']}").status_code == 403


def test_unknown_plan_is_not_found(client, city):
    sign_in(client, "org-city")
    assert client.get("/reports/plans/9999").status_code == 404


def test_plan_page_links_to_its_report(client, city):
    sign_in(client, "org-city")
    assert f"/reports/plans/{city['plan']}" in client.get(f"/plans/{city['plan']}").get_data(as_text=True)


def test_report_links_to_its_courses(client, city):
    sign_in(client, "org-city")
    page = client.get(f"/reports/plans/{city['plan']}").get_data(as_text=True)
    assert f"/reports/courses/{city['course']}?org_id={city['city']}" in page


@pytest.mark.parametrize("org_key", ["city", "district_a", "branch_a1"])
def test_exports_hold_the_figures_on_the_page(client, city, org_key):
    sign_in(client, "org-city")
    query = f"?org_id={city[org_key]}"
    base = f"/reports/plans/{city['plan']}"
    shown = page_rows(client.get(base + query).get_data(as_text=True))
    assert len(shown) > 2
    assert csv_rows(client.get(base + ".csv" + query).data) == shown
    numeric = xlsx_rows(client.get(base + ".xlsx" + query).data)
    assert [[_num(c) for c in r] for r in numeric] == [[_num(c) for c in r] for r in shown]


def test_formula_in_a_member_name_is_exported_inert(client, city, app):
    evil = '=HYPERLINK("http://x","y")'
    with app.app_context():
        from school.orgs.models import Org

        make_user(org=db.session.get(Org, city["branch_b2"]), name=evil)
    sign_in(client, "org-city")
    query = f"?org_id={city['branch_b2']}"
    text = client.get(f"/reports/plans/{city['plan']}.csv{query}").data.decode("utf-8-sig")
    names = [r[0] for r in csv.reader(io.StringIO(text)) if r]
    assert "'" + evil in names and evil not in names
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/reports/plans/{city['plan']}.xlsx{query}").data))
    values = [row[0] for sheet in book.worksheets for row in sheet.values]
    assert "'" + evil in values and evil not in values
