"""Plan-only courses: found and studied only by the members a study plan assigns them to (and by
organizers, who assign them, and by their lecturers); never seen by anyone else, in the catalogue,
the course and lesson pages, search (not even in counts), the course filter or the daily quiz."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from school import access, db
from school.courses import service as courses
from school.courses.models import Course, Lesson
from school.plans import service as plans
from school.quizzes import service as quizzes
from school.quizzes.models import Question
from school.search import service as search
from tests.conftest import csrf_from, sign_in
from tests.factories import make_org, make_organizer, make_user
from tests.search.test_search import run_jobs

SECRET = "述职评议"  # a word only the plan-only course holds


@pytest.fixture()
def world(app):
    """District A pushes a plan-only course to its branch; district B's member is not assigned."""
    with app.app_context():
        city = make_org("示范市委", "city")
        district_a, district_b = make_org("甲区委", "district", city), make_org("乙区委", "district", city)
        branch_a, branch_b = make_org("甲支部", parent=district_a), make_org("乙支部", parent=district_b)
        owner = make_user(roles=[("lecturer", None)], phone="13800000001")
        people = {
            "owner": owner,
            "member_a": make_user(branch_a, phone="13800000002"),
            "member_b": make_user(branch_b, phone="13800000003"),
            "organizer_b": make_organizer(district_b, phone="13800000004"),
            "other_lecturer": make_user(roles=[("lecturer", None)], phone="13800000005"),
        }
        open_course = courses.create_course(owner, "公开课", "人人可学", "公开")
        hidden = courses.create_course(owner, "书记专题课", f"支部书记{SECRET}准备", "专题述职")
        for course, text in ((open_course, "支部工作的基本方法"), (hidden, f"{SECRET}的材料和流程")):
            lesson = courses.create_lesson(course, course.title + "第一课")
            courses.update_lesson(lesson, lesson.title, text, "0.25", "read")
            courses.set_lesson_state(lesson, "published")
            courses.set_course_state(course, "published", db.utcnow())
        courses.update_course(hidden, hidden.title, hidden.description, hidden.tags, "plan")
        for course in (open_course, hidden):
            db.session.add(
                Question(
                    course_id=course.id, kind="truefalse", stem=f"{course.title}的题", answer_json="true"
                )
            )
        db.session.commit()
        today = db.utcnow().date()
        data = plans.PlanInput("书记专题学习", today - timedelta(days=1), today + timedelta(days=30))
        data.course_ids = [hidden.id]
        plan = plans.save_plan(make_organizer(district_a), district_a.id, data)
        db.session.commit()
        ids = {name: user.id for name, user in people.items()}
        ids |= {"open": open_course.id, "hidden": hidden.id, "plan": plan.id}
        ids["hidden_lesson"] = hidden.lessons[0].id
    run_jobs(app)
    return ids


def user(ids, name):
    from school.accounts.models import User

    return db.session.get(User, ids[name])


@pytest.mark.parametrize(
    "name, sees",
    [
        ("member_a", True),
        ("member_b", False),
        ("organizer_b", True),
        ("owner", True),
        ("other_lecturer", False),
    ],
)
def test_only_assigned_members_organizers_and_its_lecturers_see_it(app, world, name, sees):
    with app.test_request_context():
        course = db.session.get(Course, world["hidden"])
        viewer = user(world, name)
        assert access.may_view_course(viewer, course) is sees
        assert access.may_view_lesson(viewer, course.lessons[0]) is sees
        assert (world["hidden"] not in access.hidden_course_ids(viewer)) is sees
        assert access.may_view_course(viewer, db.session.get(Course, world["open"]))


def test_the_unassigned_member_never_meets_it_on_any_page(app, client, world):
    sign_in(client, "13800000003")
    catalogue = client.get("/courses").get_data(as_text=True)
    assert "公开课" in catalogue and "书记专题课" not in catalogue and "专题述职" not in catalogue
    assert client.get(f"/courses/{world['hidden']}").status_code in (403, 404)
    assert client.get(f"/lessons/{world['hidden_lesson']}").status_code in (403, 404)
    page = client.get(f"/search?q={SECRET}").get_data(as_text=True)
    assert "没有找到" in page and "<mark>" not in page and "书记专题课" not in page
    found = client.get(f"/api/v1/search?q={SECRET}").get_json()
    assert found["total"] == 0 and found["hits"] == []
    # the words it shares with open courses find only those, and count only those
    shared = client.get("/api/v1/search?q=支部").get_json()
    assert shared["total"] >= 1 and {hit["course_id"] for hit in shared["hits"]} == {world["open"]}
    # nor is its word offered as the correction of a mistyped one
    assert client.get("/api/v1/search?q=述职评以").get_json()["suggestion"] is None
    # asking for it by course filter changes nothing
    assert client.get(f"/api/v1/search?q=支部&course={world['hidden']}").get_json()["total"] == 0


def test_the_assigned_member_finds_and_opens_it(app, client, world):
    sign_in(client, "13800000002")
    catalogue = client.get("/courses?show=assigned").get_data(as_text=True)
    assert "书记专题课" in catalogue
    assert client.get(f"/lessons/{world['hidden_lesson']}").status_code == 200
    found = client.get(f"/api/v1/search?q={SECRET}").get_json()
    assert found["total"] >= 1 and {hit["course_id"] for hit in found["hits"]} == {world["hidden"]}
    page = client.get(f"/search?q={SECRET}").get_data(as_text=True)
    assert f'<option value="{world["hidden"]}"' in page  # offered in the course filter
    assert client.get("/api/v1/search?q=述职评以").get_json()["suggestion"] == SECRET


def test_closing_the_plan_takes_it_away_again(app, world):
    from school.learning.models import LessonProgress
    from school.plans.models import StudyPlan
    from school.system.views import member_home

    with app.test_request_context():
        db.session.add(
            LessonProgress(user_id=world["member_a"], lesson_id=world["hidden_lesson"], position=30)
        )
        db.session.commit()
        member = user(world, "member_a")
        assert [lesson.id for lesson, _p in member_home(member)["resume"]] == [world["hidden_lesson"]]
        plans.set_closed(db.session.get(StudyPlan, world["plan"]), True, db.utcnow())
        db.session.commit()
        assert not access.may_view_course(member, db.session.get(Course, world["hidden"]))
        assert search.search(SECRET, viewer=member).total == 0
        assert member_home(member)["resume"] == []  # no "continue" link to a page it may not open


def test_search_without_a_viewer_and_the_daily_quiz_leave_it_out(app, world):
    with app.test_request_context():
        assert search.search(SECRET).total == 0  # the CLI without --as
        assert search.search(SECRET, viewer=user(world, "organizer_b")).total >= 1
        assert {q.course_id for q in quizzes.daily_pool()} == {world["open"]}


def test_the_lecturer_sets_the_audience_and_a_bad_value_changes_nothing(app, client, world):
    sign_in(client, "13800000001")
    url = f"/teach/courses/{world['open']}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    form = {"csrf_token": token, "title": "公开课", "description": "人人可学", "tags": "公开"}
    response = client.post(url, data={**form, "audience": "everyone-and-more"})
    assert response.status_code == 400
    assert "谁可以查看和学习：不是有效的选择" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Course, world["open"]).audience == "all"
    assert client.post(url, data={**form, "audience": "plan"}).status_code == 302
    with app.app_context():
        assert db.session.get(Course, world["open"]).audience == "plan"
    patched = client.patch(
        f"/api/v1/courses/{world['open']}", json={"audience": "all"}, headers={"X-CSRFToken": token}
    )
    assert patched.status_code == 200 and patched.get_json()["audience"] == "all"
    refused = client.patch(
        f"/api/v1/courses/{world['open']}", json={"audience": ["plan"]}, headers={"X-CSRFToken": token}
    )
    assert refused.status_code == 400 and "可见范围" in refused.get_json()["error"]["message"]
    with app.app_context():
        assert db.session.get(Course, world["open"]).audience == "all"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lesson)) == 2
