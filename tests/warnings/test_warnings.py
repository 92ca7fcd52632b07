"""防瘫预警: rules raise warnings where study stopped, levels rise as it lasts, history is kept."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.learning.models import LessonProgress
from school.notifications.models import Notification
from school.warnings import service
from school.warnings.models import OrgWarning, WarningEvent, WarningRule
from tests.conftest import csrf_from, sign_in
from tests.factories import make_admin, make_lesson, make_organizer, make_tree, make_user
from tests.plans.study_data import complete, make_course, make_plan


@pytest.fixture()
def tree():
    return make_tree()


def only_rule(kind="inactive_share", org_kind="branch", **values):
    """Replace the default rules by one rule, so each test sees only what it is about."""
    db.session.execute(sa.delete(WarningRule))
    rule = WarningRule(kind=kind, org_kind=org_kind, **values)
    db.session.add(rule)
    db.session.commit()
    return rule


def members(org, n):
    return [make_user(org) for _ in range(n)]


def study(user, lesson, when):
    db.session.add(
        LessonProgress(
            user_id=user.id, lesson_id=lesson.id, updated_at=when, covered_seconds=10, time_spent=10
        )
    )
    db.session.commit()


def run(now, today=None):

    with _APP[0].app_context():
        outcome = service.evaluate(now, today or now.date())
        db.session.commit()
    return outcome


_APP = []


@pytest.fixture(autouse=True)
def remember_app(app):
    _APP[:] = [app]


def open_warnings():
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OrgWarning).where(OrgWarning.state != "resolved")))


def history(warning):
    return [
        (e.action, e.level)
        for e in db.session.scalars(
            sa.select(WarningEvent).where(WarningEvent.warning_id == warning.id).order_by(WarningEvent.id)
        )
    ]


def test_a_branch_where_most_members_stopped_studying_is_warned_and_the_active_one_is_not(tree):
    only_rule(days=30, threshold=Decimal("50"))
    lesson = make_lesson()
    idle_branch, busy_branch = tree["branch_a1"], tree["branch_a2"]
    members(idle_branch, 4)
    busy = members(busy_branch, 4)
    start = db.utcnow()
    later = start + timedelta(days=40)
    for person in busy[:3]:
        study(person, lesson, later - timedelta(days=2))

    outcome = run(later)

    warned = open_warnings()
    assert [w.org_id for w in warned] == [idle_branch.id]
    assert len(outcome.raised) == 1
    assert warned[0].level == "yellow" and warned[0].value == Decimal("100.0") and warned[0].members == 4
    # Streets and districts are not watched by a branch rule.
    assert tree["street_a"].id not in {w.org_id for w in warned}


def test_evaluating_twice_changes_nothing_and_levels_rise_while_it_lasts_then_it_resolves(tree):
    only_rule(days=30, threshold=Decimal("50"), orange_after_days=14, red_after_days=30)
    lesson = make_lesson()
    people = members(tree["branch_b1"], 3)
    t0 = db.utcnow() + timedelta(days=40)

    run(t0)
    second = run(t0 + timedelta(hours=1))
    assert not (second.raised or second.escalated or second.resolved)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrgWarning)) == 1

    run(t0 + timedelta(days=15))
    assert open_warnings()[0].level == "orange"
    run(t0 + timedelta(days=31))
    (warning,) = open_warnings()
    assert warning.level == "red"

    # Two of three study again: 33% idle is under the limit, so the warning resolves.
    back = t0 + timedelta(days=32)
    for person in people[:2]:
        study(person, lesson, back)
    outcome = run(back + timedelta(hours=1))
    assert len(outcome.resolved) == 1 and open_warnings() == []
    db.session.expire_all()
    warning = db.session.get(OrgWarning, warning.id)
    assert warning.state == "resolved" and warning.open_key is None
    assert history(warning) == [
        ("raised", "yellow"),
        ("escalated", "orange"),
        ("escalated", "red"),
        ("resolved", "red"),
    ]

    # If it stops again, a new warning starts from yellow; the old one keeps its history.
    run(back + timedelta(days=45))
    (again,) = open_warnings()
    assert again.id != warning.id and again.level == "yellow"


def test_small_branches_and_new_members_are_not_judged(tree):
    only_rule(days=30, threshold=Decimal("50"), min_members=3)
    members(tree["branch_a1"], 2)  # too few
    run(db.utcnow() + timedelta(days=40))
    assert open_warnings() == []

    members(tree["branch_a2"], 5)  # joined just now: they have not had 30 days yet
    run(db.utcnow() + timedelta(days=5))
    assert open_warnings() == []


def test_offline_credit_counts_as_study(app, tree):
    from school.credits.service import credit_once

    only_rule(days=30, threshold=Decimal("50"))
    people = members(tree["branch_a1"], 3)
    later = db.utcnow() + timedelta(days=40)
    for person in people:
        with app.app_context():
            credit_once(person.id, Decimal("1"), "offline", "offline:1", "支部党员大会")
            db.session.commit()
        db.session.execute(
            sa.text("UPDATE credit_entry SET created_at = :t WHERE user_id = :u"),
            {"t": later - timedelta(days=1), "u": person.id},
        )
    db.session.commit()
    run(later)
    assert open_warnings() == []


def test_a_plan_behind_its_schedule_warns_the_branch_that_is_behind(tree):
    only_rule(kind="plan_behind", days=1, threshold=Decimal("30"))
    course = make_course(lessons=1)
    today = date(2026, 11, 27)
    plan = make_plan(
        tree["street_a"],
        "学习二十大",
        due=today + timedelta(days=10),
        courses_=[course],
        starts=today - timedelta(days=30),
    )  # 75% of its time has gone by
    behind = members(tree["branch_a1"], 4)
    ahead = members(tree["branch_a2"], 4)
    members(tree["branch_b1"], 4)  # outside the plan
    for person in ahead:
        complete(person, course.lessons[0])
    complete(behind[0], course.lessons[0])  # 25% done: 50 points behind

    run(db.utcnow(), today)

    (warning,) = open_warnings()
    assert warning.org_id == tree["branch_a1"].id and warning.plan_id == plan.id
    assert warning.value == Decimal("50.0")
    with _APP[0].test_request_context():
        assert "学习二十大" in service.describe(warning)

    # Early in a plan nobody is behind yet.
    db.session.execute(sa.delete(OrgWarning))
    db.session.commit()
    run(db.utcnow(), today - timedelta(days=25))
    assert open_warnings() == []


def test_turning_a_rule_off_resolves_its_warnings(tree):
    rule = only_rule(days=30, threshold=Decimal("50"))
    members(tree["branch_a1"], 3)
    later = db.utcnow() + timedelta(days=40)
    run(later)
    assert len(open_warnings()) == 1
    db.session.get(WarningRule, rule.id).enabled = False
    db.session.commit()
    run(later + timedelta(hours=1))
    assert open_warnings() == []


def test_the_organizers_of_the_branch_and_its_parent_are_told_once_per_level(tree):
    only_rule(days=30, threshold=Decimal("50"), orange_after_days=10, red_after_days=20)
    branch_boss = make_organizer(tree["branch_a1"])
    street_boss = make_organizer(tree["street_a"])
    city_boss = make_organizer(tree["city"])
    members(tree["branch_a1"], 3)
    t0 = db.utcnow() + timedelta(days=40)
    run(t0)
    run(t0 + timedelta(hours=2))
    run(t0 + timedelta(days=11))

    def told(user):
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(Notification).where(Notification.user_id == user.id)
        )

    assert told(branch_boss) == 2 and told(street_boss) == 2  # raised, then orange
    assert told(city_boss) == 0  # the city sees it on its pages, not in its inbox


def raise_one(tree):
    only_rule(days=30, threshold=Decimal("50"))
    members(tree["branch_a1"], 3)
    run(db.utcnow() + timedelta(days=40))
    (warning,) = open_warnings()
    return warning


def test_organizers_above_see_it_on_their_home_and_outsiders_do_not(client, tree):
    warning = raise_one(tree)
    make_organizer(tree["district_a"], phone="13800000001")
    sign_in(client, "13800000001")
    home = client.get("/").get_data(as_text=True)
    assert "防瘫预警" in home and tree["branch_a1"].name in home
    assert client.get(f"/warnings/{warning.id}").status_code == 200
    assert tree["branch_a1"].name in client.get("/warnings").get_data(as_text=True)

    other = client.application.test_client()
    make_organizer(tree["district_b"], phone="13800000002")
    sign_in(other, "13800000002")
    assert tree["branch_a1"].name not in other.get("/").get_data(as_text=True)
    assert other.get(f"/warnings/{warning.id}").status_code == 404
    assert tree["branch_a1"].name not in other.get("/warnings?state=all").get_data(as_text=True)
    assert other.get(f"/warnings?org_id={tree['district_a'].id}").status_code == 403
    token = csrf_from(other.get("/notifications").get_data(as_text=True))
    answer = other.post(f"/warnings/{warning.id}", data={"csrf_token": token, "note": "我来处理"})
    assert answer.status_code == 404
    assert db.session.get(OrgWarning, warning.id).state == "open"


def test_acknowledging_needs_a_note_and_keeps_it_in_the_history(client, tree):
    warning = raise_one(tree)
    make_organizer(tree["branch_a1"], phone="13800000001", name="王书记")
    sign_in(client, "13800000001")
    url = f"/warnings/{warning.id}"
    token = csrf_from(client.get(url).get_data(as_text=True))

    empty = client.post(url, data={"csrf_token": token, "note": "   "})
    assert empty.status_code == 400 and "写明" in empty.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OrgWarning, warning.id).state == "open"

    done = client.post(
        url,
        data={"csrf_token": token, "note": "<script>alert(1)</script>下周组织补学"},
        follow_redirects=True,
    )
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    db.session.expire_all()
    warning = db.session.get(OrgWarning, warning.id)
    assert warning.state == "acknowledged" and warning.level == "yellow"
    assert history(warning)[-1] == ("acknowledged", "yellow")
    assert "王书记" in html


def test_members_cannot_see_warnings_and_organizers_cannot_change_rules(client, tree):
    raise_one(tree)
    make_user(tree["branch_a1"], phone="13800000003")
    sign_in(client, "13800000003")
    assert client.get("/warnings").status_code == 403
    other = client.application.test_client()
    make_organizer(tree["city"], phone="13800000004")
    sign_in(other, "13800000004")
    assert other.get("/warnings/rules").status_code == 403
    token = csrf_from(other.get("/notifications").get_data(as_text=True))
    assert other.post("/warnings/evaluate", data={"next": "rules", "csrf_token": token}).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WarningEvent)) == 1  # only the raise


@pytest.mark.parametrize(
    "change, message",
    [
        ({"threshold": "150"}, "0 到 100"),
        ({"threshold": "NaN"}, "0 到 100"),
        ({"days": "0"}, "1 到 366"),
        ({"days": "abc"}, "1 到 366"),
        ({"orange_after_days": "20", "red_after_days": "10"}, "红色"),
        ({"kind": "drop_table"}, "选择"),
        ({"org_kind": "planet"}, "选择"),
    ],
)
def test_admins_tune_rules_and_bad_values_are_refused_in_chinese(client, change, message):
    make_admin(phone="13800000005")
    sign_in(client, "13800000005")
    page = client.get("/warnings/rules")
    assert page.status_code == 200
    rule = db.session.scalars(sa.select(WarningRule).where(WarningRule.kind == "inactive_share")).first()
    url = f"/warnings/rules/{rule.id}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    data = {
        "csrf_token": token,
        "kind": "inactive_share",
        "org_kind": "branch",
        "days": "45",
        "threshold": "60",
        "min_members": "3",
        "orange_after_days": "7",
        "red_after_days": "21",
        "enabled": "y",
    }
    bad = client.post(url, data={**data, **change})
    assert bad.status_code == 400 and message in bad.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(WarningRule, rule.id).days == 30

    good = client.post(url, data=data)
    assert good.status_code == 302
    db.session.expire_all()
    saved = db.session.get(WarningRule, rule.id)
    assert (saved.days, saved.threshold, saved.red_after_days) == (45, Decimal("60.0"), 21)


def test_the_default_rules_watch_branches_and_streets(app):
    with app.app_context():
        service.ensure_default_rules()
        service.ensure_default_rules()
        db.session.commit()
        kinds = sorted((r.kind, r.org_kind) for r in service.rules())
    assert ("inactive_share", "branch") in kinds and ("inactive_share", "street") in kinds
    assert ("no_offline_lesson", "branch") in kinds and len(kinds) == len(service.DEFAULT_RULES)


def hold_meeting(org, day, cancelled=False):
    from school.meetings.models import Meeting

    meeting = Meeting(
        org_id=org.id,
        kind="lecture",
        held_on=day,
        topic="党课",
        hours=Decimal("1"),
        cancelled_at=db.utcnow() if cancelled else None,
    )
    db.session.add(meeting)
    db.session.commit()


def test_a_branch_without_an_offline_lesson_this_quarter_is_warned_and_it_carries_over(tree):
    only_rule(kind="no_offline_lesson", days=30, threshold=Decimal("0"))
    for name in ("branch_a1", "branch_a2", "branch_b1"):
        members(tree[name], 3)
    today = date(2026, 11, 27)  # day 57 of the quarter: past the 30 days' grace
    hold_meeting(tree["branch_a2"], date(2026, 10, 20))
    hold_meeting(tree["branch_b1"], date(2026, 11, 1), cancelled=True)  # does not count
    hold_meeting(tree["branch_a1"], date(2026, 9, 30))  # last quarter

    run(db.utcnow(), today)
    warned = {w.org_id: w for w in open_warnings()}
    assert set(warned) == {tree["branch_a1"].id, tree["branch_b1"].id}
    assert warned[tree["branch_a1"].id].value == Decimal((today - date(2026, 9, 30)).days)

    # In the first days of the next quarter last quarter is still what counts: no flapping.
    run(db.utcnow(), date(2027, 1, 10))
    assert {w.org_id for w in open_warnings()} == {tree["branch_a1"].id, tree["branch_b1"].id}
    hold_meeting(tree["branch_a1"], date(2027, 1, 8))
    run(db.utcnow(), date(2027, 1, 11))
    assert {w.org_id for w in open_warnings()} == {tree["branch_b1"].id}


def test_checked_period_starts_this_quarter_after_the_grace_days():
    assert service.checked_period_start(date(2026, 11, 27), 30) == date(2026, 10, 1)
    assert service.checked_period_start(date(2026, 10, 5), 30) == date(2026, 7, 1)
    assert service.checked_period_start(date(2027, 1, 31), 30) == date(2027, 1, 1)
    assert service.checked_period_start(date(2027, 1, 30), 30) == date(2026, 10, 1)


def test_two_evaluations_at_once_raise_each_warning_once(app, tree):
    import threading

    only_rule(days=30, threshold=Decimal("50"))
    for name in ("branch_a1", "branch_a2", "branch_b1"):
        members(tree[name], 3)
    later = db.utcnow() + timedelta(days=40)
    errors = []

    def evaluate():
        try:
            with app.app_context():
                service.evaluate(later, later.date())
                db.session.commit()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            db.session.remove()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(open_warnings()) == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WarningEvent)) == 3
