import re

import sqlalchemy as sa

from school import db
from school.accounts.models import RoleGrant
from school.courses import service
from school.courses.models import Course, Lesson
from tests.conftest import api_token, csrf_from, sign_in
from tests.factories import make_org, make_user


def lecturer(phone: str, name: str = "讲师"):
    return make_user(roles=[("lecturer", None)], phone=phone, name=name)


def make_course(owner, title="党课", published=False):
    course = service.create_course(owner, title, "简介", "组织生活, 三会一课")
    lesson = service.create_lesson(course, "第一课")
    service.update_lesson(lesson, "第一课", "**正文**", "0.5", "read")
    if published:
        service.set_lesson_state(lesson, "published")
        service.set_course_state(course, "published", db.utcnow())
    db.session.commit()
    assert course.lessons  # loaded now, so tests can read them after requests end the session
    return course


def post(client, url, data, page):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_lecturer_creates_a_course_and_a_lesson(client):
    lecturer("13800000001")
    sign_in(client, "13800000001")
    response = post(client, "/teach/courses", {"title": "三会一课怎么开好"}, "/teach")
    course = db.session.scalar(sa.select(Course))
    assert response.headers["Location"] == f"/teach/courses/{course.id}"
    response = post(
        client,
        f"/teach/courses/{course.id}/lessons",
        {"lesson-title": "支部党员大会"},
        f"/teach/courses/{course.id}",
    )
    lesson = db.session.scalar(sa.select(Lesson))
    assert response.headers["Location"] == f"/teach/lessons/{lesson.id}"
    assert "支部党员大会" in client.get(f"/teach/courses/{course.id}").get_data(as_text=True)


def test_another_lecturer_cannot_edit_the_course_by_page_or_api(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    lecturer("13800000002")
    sign_in(client, "13800000002")
    assert client.get(f"/teach/courses/{course.id}").status_code == 403
    assert client.get(f"/teach/lessons/{course.lessons[0].id}").status_code == 403
    token = csrf_from(client.get("/teach").get_data(as_text=True))
    assert (
        client.post(f"/teach/courses/{course.id}", data={"title": "x", "csrf_token": token}).status_code
        == 403
    )
    api = client.patch(
        f"/api/v1/courses/{course.id}", json={"title": "被改了"}, headers={"X-CSRFToken": api_token(client)}
    )
    assert api.status_code == 403
    db.session.expire_all()
    assert db.session.get(Course, course.id).title == "党课"


def test_other_lecturers_may_read_published_courses_only(client):
    owner = lecturer("13800000001")
    draft = make_course(owner, "草稿课")
    published = make_course(owner, "已发布", published=True)
    lecturer("13800000002")
    sign_in(client, "13800000002")
    assert client.get(f"/courses/{draft.id}").status_code == 403
    assert client.get(f"/courses/{published.id}").status_code == 200


def test_a_co_lecturer_edits_until_their_lecturer_role_is_revoked(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    co = lecturer("13800000002", "合作讲师")
    service.add_co_lecturer(course, "13800000002")
    db.session.commit()
    sign_in(client, "13800000002")
    response = client.patch(
        f"/api/v1/courses/{course.id}",
        json={"title": "新标题", "tags": ["党课"]},
        headers={"X-CSRFToken": api_token(client)},
    )
    assert response.status_code == 200 and response.get_json()["tags"] == ["党课"]
    db.session.execute(sa.delete(RoleGrant).where(RoleGrant.user_id == co.id))
    db.session.commit()
    assert client.get(f"/teach/courses/{course.id}").status_code == 403


def test_only_the_owner_adds_co_lecturers(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    lecturer("13800000002")
    lecturer("13800000003")
    service.add_co_lecturer(course, "13800000002")
    db.session.commit()
    sign_in(client, "13800000002")
    page = f"/teach/courses/{course.id}"
    assert post(client, f"{page}/lecturers", {"login": "13800000003"}, page).status_code == 403


def test_members_cannot_open_authoring(client):
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    assert client.get("/teach").status_code == 403
    assert client.post("/api/v1/uploads", json={}).status_code in (400, 403)


def test_drafts_are_hidden_from_members(client):
    owner = lecturer("13800000001")
    draft = make_course(owner, "草稿课")
    published = make_course(owner, "公开课", published=True)
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    catalogue = client.get("/courses").get_data(as_text=True)
    assert "公开课" in catalogue and "草稿课" not in catalogue
    assert client.get(f"/courses/{draft.id}").status_code == 403
    assert client.get(f"/lessons/{draft.lessons[0].id}").status_code == 403
    lesson_page = client.get(f"/lessons/{published.lessons[0].id}").get_data(as_text=True)
    assert "<strong>正文</strong>" in lesson_page


def test_bad_study_hours_are_refused_with_a_reason_and_nothing_changes(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    lesson = course.lessons[0]
    sign_in(client, "13800000001")
    page = f"/teach/lessons/{lesson.id}"
    for bad in ("abc", "-1", "0.123", "1000", "NaN"):
        response = post(
            client, page, {"title": "改", "body_md": "", "credit_hours": bad, "completion": "read"}, page
        )
        assert response.status_code == 400, bad
        assert "学时" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lesson, lesson.id).title == "第一课"


def test_a_course_needs_a_published_lesson_before_it_is_published(client):
    owner = lecturer("13800000001")
    course = service.create_course(owner, "空课程")
    db.session.commit()
    sign_in(client, "13800000001")
    page = f"/teach/courses/{course.id}"
    response = post(client, f"{page}/state", {"state": "published"}, page)
    assert response.headers["Location"] == page  # back in the editor, with the reason
    assert "至少发布一个课时" in client.get(page).get_data(as_text=True)
    assert db.session.get(Course, course.id).state == "draft"


def test_saving_a_course_unchanged_keeps_its_tags(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    sign_in(client, "13800000001")
    page = f"/teach/courses/{course.id}"
    html = client.get(page).get_data(as_text=True)
    shown = re.search(r'id="tags"[^>]*value="([^"]*)"', html).group(1)
    assert shown == "三会一课, 组织生活"
    post(client, page, {"title": "党课", "description": "简介", "tags": shown}, page)
    db.session.expire_all()
    assert db.session.get(Course, course.id).tags == ["三会一课", "组织生活"]


def test_a_watch_lesson_needs_media_before_it_is_published(client):
    owner = lecturer("13800000001")
    course = service.create_course(owner, "课程")
    lesson = service.create_lesson(course, "视频课")
    db.session.commit()
    sign_in(client, "13800000001")
    page = f"/teach/lessons/{lesson.id}"
    assert post(client, f"{page}/state", {"state": "published"}, page).headers["Location"] == page
    assert "请先添加已处理完成的视频或音频" in client.get(page).get_data(as_text=True)
    assert db.session.get(Lesson, lesson.id).state == "draft"


def test_lessons_move_up_and_down(client):
    owner = lecturer("13800000001")
    course = make_course(owner)
    second = service.create_lesson(course, "第二课")
    db.session.commit()
    sign_in(client, "13800000001")
    page = f"/teach/courses/{course.id}"
    post(client, f"/teach/lessons/{second.id}/move", {"step": "up"}, page)
    db.session.expire_all()
    titles = [x.title for x in db.session.get(Course, course.id).lessons]
    assert titles == ["第二课", "第一课"]


def test_tags_are_split_on_chinese_and_western_commas():
    assert service.parse_tags("组织生活，三会一课、党课, 党课 #学习") == [
        "组织生活",
        "三会一课",
        "党课",
        "学习",
    ]


def test_course_text_is_rendered_safely(client):
    owner = lecturer("13800000001")
    course = make_course(owner, published=True)
    course.description = "<script>alert(1)</script>[x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    db.session.commit()
    make_user(make_org(), phone="13800000009")
    sign_in(client, "13800000009")
    html = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "<script>alert" not in html and 'href="javascript' not in html
    assert re.search(r"<img[^>]*onerror", html) is None
