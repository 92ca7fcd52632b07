import re

from tests.conftest import sign_in
from tests.factories import make_org, make_tree, make_user
from tests.plans.study_data import complete, local_today, make_course, make_plan, start


def titles(html: str) -> list[str]:
    return re.findall(r'class="card course-card".*?<span class="name">(.*?)</span>', html, re.S)


def test_catalogue_filters_by_tag_and_offers_the_tags_as_chips(client):
    make_user(make_org(), phone="13912345678")
    make_course(title="三会一课", tags="组织生活, 支部工作")
    make_course(title="数字党建", tags="信息化")
    sign_in(client, "13912345678")
    html = client.get("/courses").get_data(as_text=True)
    assert sorted(titles(html)) == ["三会一课", "数字党建"]
    assert 'href="/courses?tag=%E7%BB%84%E7%BB%87%E7%94%9F%E6%B4%BB"' in html  # 组织生活
    assert titles(client.get("/courses?tag=组织生活").get_data(as_text=True)) == ["三会一课"]
    assert titles(client.get("/courses?tag=无此标签").get_data(as_text=True)) == []


def test_catalogue_shows_the_courses_my_plans_assign_to_me(app, client):
    tree = make_tree()
    make_user(tree["branch_a1"], phone="13912345678")
    mine, theirs = make_course(title="我的必修"), make_course(title="b区必修")
    make_course(title="选修")
    due = local_today(app)
    make_plan(tree["city"], "全市计划", due, [mine])
    make_plan(tree["district_b"], "b区计划", due, [theirs])
    sign_in(client, "13912345678")
    assert titles(client.get("/courses?show=assigned").get_data(as_text=True)) == ["我的必修"]
    html = client.get("/courses").get_data(as_text=True)
    assert len(titles(html)) == 3 and html.count("已指派</span>") == 1
    assert "指派给我 1" in html


def test_catalogue_new_shows_recently_published_courses(client):
    from school import db

    make_user(make_org(), phone="13912345678")
    old = make_course(title="旧课")
    make_course(title="新课")
    old.published_at = old.published_at.replace(year=old.published_at.year - 1)
    db.session.commit()
    sign_in(client, "13912345678")
    assert titles(client.get("/courses?show=new").get_data(as_text=True)) == ["新课"]


def test_course_page_shows_my_status_on_each_lesson_and_the_course_progress(client):
    member = make_user(make_org(), phone="13912345678")
    course = make_course(title="流动党员", lessons=3)
    first, second, _third = course.lessons
    complete(member, first)
    start(member, second, watched=37, duration=100)
    complete(make_user(make_org()), second)  # another member's progress is not mine
    sign_in(client, "13912345678")
    html = client.get(f"/courses/{course.id}").get_data(as_text=True)
    rows = re.findall(
        r"<li><span><a class=\"name\"[^>]*>(.*?)</a>.*?<span class=\"status[^\"]*\">(.*?)</span>", html, re.S
    )
    assert rows == [("流动党员第1课", "已完成"), ("流动党员第2课", "学习中 37%"), ("流动党员第3课", "未开始")]
    assert "已完成 1/3 课时" in html
