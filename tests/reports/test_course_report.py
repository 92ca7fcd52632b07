import csv
import io
import json

import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.courses.models import Course
from school.quizzes.models import Attempt, LessonQuiz
from school.reports import courses
from tests.conftest import sign_in
from tests.factories import make_organizer, make_tree, make_user
from tests.plans.study_data import make_course
from tests.reports.report_data import progress
from tests.reports.test_hours_report import _num, csv_rows, page_rows, xlsx_rows


def attempt(user, lesson, results: list[bool], stems: list[str]):
    items = [
        {"qid": n, "kind": "single", "stem": s, "options": [], "answer": [0]} for n, s in enumerate(stems)
    ]
    passed = sum(results) * 100 >= 60 * len(results)
    db.session.add(
        Attempt(
            user_id=user.id,
            kind="lesson",
            lesson_id=lesson.id,
            state="submitted",
            items_json=json.dumps(items, ensure_ascii=False),
            results_json=json.dumps(results),
            pass_percent=60,
            score=sum(results),
            passed=passed,
        )
    )
    db.session.commit()


@pytest.fixture()
def course_data(app):
    """A three-lesson course with a quiz on lesson 1. In district a: 甲 completed everything, 乙
    completed lesson 1 and half-watched lesson 2, 丙 failed the quiz once and passed it the next
    time, 丁 never started. In district b: 戊 started lesson 1 (out of district a's scope)."""
    with app.app_context():
        t = make_tree()
        course = make_course(title="党史", lessons=3)
        l1, l2, l3 = course.lessons
        db.session.add(LessonQuiz(lesson_id=l1.id, question_count=2))
        people = {
            k: make_user(org=t["branch_a1"], name=n) for k, n in (("jia", "甲"), ("yi", "乙"), ("bing", "丙"))
        }
        people["ding"] = make_user(org=t["branch_a2"], name="丁")
        people["wu"] = make_user(org=t["branch_b1"], name="戊")
        now = db.utcnow()
        for lesson in (l1, l2, l3):
            progress(people["jia"], lesson, 100, done_at=now)
        progress(people["yi"], l1, 100, done_at=now)
        progress(people["yi"], l2, 50)
        progress(people["bing"], l1, 100, done_at=now)
        progress(people["wu"], l1, 20)
        stems = ["难题", "易题"]
        attempt(people["jia"], l1, [True, True], stems)
        attempt(people["yi"], l1, [False, True], stems)
        attempt(people["yi"], l1, [True, True], stems)
        attempt(people["bing"], l1, [False, False], stems)
        attempt(people["bing"], l1, [False, True], stems)
        attempt(people["wu"], l1, [False, False], stems)
        make_organizer(t["district_a"], username="org-a")
        ids = {k: v.id for k, v in {**t, **people}.items()}
        ids["course"] = course.id
        return ids


def run(app, ids, org_key="district_a"):
    with app.app_context():
        who = db.session.scalars(sa.select(User).where(User.username == "org-a")).one()
        return courses.course_report(db.session.get(Course, ids["course"]), ids[org_key], who)


def test_completion_and_drop_off_by_lesson(app, course_data):
    r = run(app, course_data)
    assert (r.members, r.started, r.completed) == (4, 3, 1)
    assert [(f.started, f.completed) for f in r.lessons] == [(3, 3), (2, 1), (1, 1)]
    assert str(r.lessons[1].average_coverage) == "75.0"  # 甲 100%, 乙 50%
    assert str(r.average_coverage) == "45.8"  # (3 + 1.5 + 1) / (4 members × 3 lessons)


def test_quiz_pass_rate_counts_members_not_attempts(app, course_data):
    r = run(app, course_data)
    first = r.lessons[0]
    assert (first.quiz, first.attempted, first.passed) == (True, 3, 2)  # 丙 failed twice (1/2 < 60%)
    assert not r.lessons[1].quiz


def test_most_missed_questions_come_from_the_attempts(app, course_data):
    missed = run(app, course_data).missed
    assert [(m.stem, m.asked, m.wrong) for m in missed] == [("难题", 5, 3), ("易题", 5, 1)]


def test_members_outside_the_node_are_left_out(app, course_data):
    r = run(app, course_data, "branch_a1")
    assert (r.members, r.started) == (3, 3)


def test_organizer_cannot_see_another_district(client, course_data):
    sign_in(client, "org-a")
    for suffix in ("", ".csv", ".xlsx"):
        url = f"/reports/courses/{course_data['course']}{suffix}?org_id={course_data['district_b']}"
        assert client.get(url).status_code == 403
    assert client.get(f"/reports/courses?org_id={course_data['city']}").status_code == 403


def test_picker_lists_published_courses(client, course_data):
    sign_in(client, "org-a")
    page = client.get("/reports/courses").get_data(as_text=True)
    assert f"/reports/courses/{course_data['course']}?org_id={course_data['district_a']}" in page


def test_unknown_course_is_not_found(client, course_data):
    sign_in(client, "org-a")
    assert client.get("/reports/courses/999").status_code == 404


def test_exports_hold_the_figures_on_the_page(client, course_data):
    sign_in(client, "org-a")
    base = f"/reports/courses/{course_data['course']}"
    shown = page_rows(client.get(base).get_data(as_text=True))
    assert len(shown) > 4
    assert csv_rows(client.get(base + ".csv").data) == shown
    numeric = xlsx_rows(client.get(base + ".xlsx").data)
    assert [[_num(c) for c in r] for r in numeric] == [[_num(c) for c in r] for r in shown]


def test_formula_in_a_question_is_exported_inert(client, course_data, app):
    evil = '=HYPERLINK("http://x","y")'
    with app.app_context():
        lesson = db.session.get(Course, course_data["course"]).lessons[0]
        attempt(db.session.get(User, course_data["ding"]), lesson, [False], [evil])
    sign_in(client, "org-a")
    text = client.get(f"/reports/courses/{course_data['course']}.csv").data.decode("utf-8-sig")
    firsts = [r[0] for r in csv.reader(io.StringIO(text)) if r]
    assert "'" + evil in firsts and evil not in firsts
