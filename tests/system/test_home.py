import re
from datetime import timedelta

from school import db
from school.credits import service as credits
from tests.conftest import sign_in
from tests.factories import make_org, make_tree, make_user
from tests.plans.study_data import complete, local_today, make_course, make_plan, start


def home(client, phone="13912345678") -> str:
    sign_in(client, phone)
    return client.get("/").get_data(as_text=True)


def test_home_lists_my_plans_soonest_first_with_the_overdue_one_marked(app, client):
    branch = make_org("一支部")
    make_user(branch, phone="13912345678")
    course = make_course(title="三会一课")
    today = local_today(app)
    make_plan(branch, "年度学习", today + timedelta(days=40), [course])
    make_plan(branch, "专题学习", today + timedelta(days=3), [course])
    make_plan(branch, "上月任务", today - timedelta(days=2), [course])
    html = home(client)
    assert "我的任务" in html
    assert html.index("上月任务") < html.index("专题学习") < html.index("年度学习")
    overdue = re.search(r'<li class="overdue">(.*?)</li>', html, re.S).group(1)
    assert "上月任务" in overdue and "已逾期" in overdue and "逾期 2 天" in overdue
    assert "还剩 3 天" in html
    assert "已完成 0/2 课时" in html


def test_home_does_not_show_plans_of_another_branch_subtree(app, client):
    tree = make_tree()
    make_user(tree["branch_a1"], phone="13912345678")
    course = make_course()
    make_plan(tree["district_b"], "b区计划", local_today(app) + timedelta(days=3), [course])
    make_plan(tree["city"], "全市计划", local_today(app) + timedelta(days=3), [course])
    html = home(client)
    assert "全市计划" in html and "b区计划" not in html


def test_home_offers_to_continue_lessons_where_i_stopped(client):
    member = make_user(make_org(), phone="13912345678")
    course = make_course(title="流动党员", lessons=3)
    start(member, course.lessons[1], watched=42)
    complete(member, course.lessons[0])
    html = home(client)
    assert "继续学习" in html
    section = html[html.index("继续学习") :]
    assert "流动党员第2课" in section and "已看 42%" in section
    assert "流动党员第1课" not in section
    assert f'href="/lessons/{course.lessons[1].id}"' in section


def test_home_ring_shows_my_hours_this_year_against_the_quota(app, client):
    member = make_user(make_org(), phone="13912345678")
    with app.app_context():
        credits.credit_once(member.id, "6.5", "lesson", "lesson:1", "党课")
        credits.credit_once(member.id, "1.5", "daily_quiz", "daily:1", "每日答题")
        year = credits.study_year()
        db.session.commit()
    html = home(client)
    assert "已获 8 / 32 学时" in html and "还差 24 学时" in html
    assert f'href="/me/record?year={year}"' in html
    # 8 of 32 is a quarter of the ring's 263.89 circumference
    assert 'stroke-dasharray="65.97 263.89"' in html


def test_home_ring_is_full_once_the_quota_is_reached(app, client):
    member = make_user(make_org(), phone="13912345678")
    with app.app_context():
        credits.credit_once(member.id, "40", "offline", "offline:1", "线下党课")
        db.session.commit()
    html = home(client)
    assert "已完成全年学时" in html and 'stroke-dasharray="263.89 263.89"' in html


def test_home_without_plans_says_so(client):
    make_user(make_org(), phone="13912345678")
    assert "目前没有学习任务" in home(client)
