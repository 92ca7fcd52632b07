import io
from datetime import datetime

from pypdf import PdfReader

from school import db
from school.credits import service as credits
from tests.conftest import sign_in
from tests.factories import make_admin, make_org, make_user
from tests.plans.study_data import complete, make_course


def study_two_years(app, member):
    """A lesson completed and credited in each of 2025 and 2026 (local time), plus corrections."""
    course = make_course(title="三会一课", lessons=2)
    old, new = course.lessons
    complete(member, old, datetime(2025, 6, 1, 2, 0))
    complete(member, new, datetime(2026, 3, 1, 2, 0))
    admin = make_admin()
    with app.app_context():
        credits.adjust(member.id, "1.5", "补录2025年线下党课", admin, year=2025)
        credits.credit_once(member.id, "0.5", "lesson", f"lesson:{new.id}", "三会一课 · 三会一课第2课")
        credits.credit_once(member.id, "1", "daily_quiz", "daily:2026-03-02", "每日答题")
        entry = credits.adjust(member.id, "2", "重复录入", admin, year=2026)
        credits.reverse(entry, admin, "重复录入，予以冲销")
        db.session.commit()
    return old, new


def test_record_shows_the_years_entries_and_completed_lessons_only(app, client):
    member = make_user(make_org(), phone="13912345678")
    study_two_years(app, member)
    sign_in(client, "13912345678")
    html = client.get("/me/record?year=2026").get_data(as_text=True)
    assert "2026年学习档案" in html
    assert "三会一课第2课" in html and "三会一课第1课" not in html
    assert "课程学习" in html and "每日答题" in html and "人工调整" in html and "更正冲销" in html
    assert "原因：重复录入，予以冲销" in html and "补录2025年" not in html
    assert '<span class="stat">1.5</span> / 32' in html  # 0.5 + 1 + 2 − 2
    assert 'href="/me/record?year=2025"' in html  # the year switcher

    old_year = client.get("/me/record?year=2025").get_data(as_text=True)
    assert "三会一课第1课" in old_year and "三会一课第2课" not in old_year
    assert "原因：补录2025年线下党课" in old_year and "每日答题" not in old_year


def test_record_defaults_to_this_year_and_ignores_an_odd_year(app, client):
    make_user(make_org(), phone="13912345678")
    with app.app_context():
        year = credits.study_year()
    sign_in(client, "13912345678")
    for url in ("/me/record", "/me/record?year=abc", "/me/record?year=99999"):
        assert f"{year}年学习档案" in client.get(url).get_data(as_text=True), url


def test_another_members_record_cannot_be_reached(app, client):
    other = make_user(make_org(), phone="13900000002")
    study_two_years(app, other)
    me = make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    for url in (f"/me/record?year=2026&user_id={other.id}", f"/me/record?year=2025&user_id={other.id}"):
        html = client.get(url).get_data(as_text=True)
        assert "三会一课" not in html and "人工调整" not in html
    pdf = client.get(f"/me/record.pdf?year=2026&user_id={other.id}").data
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert me.display_name in text and other.display_name not in text and "三会一课" not in text


def test_record_pdf_is_a_real_pdf_with_chinese_text(app, client):
    member = make_user(make_org("东华社区第一党支部"), phone="13912345678", name="王晓梅")
    study_two_years(app, member)
    sign_in(client, "13912345678")
    response = client.get("/me/record.pdf?year=2026")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    for words in (
        "2026年学习档案",
        "王晓梅",
        "东华社区第一党支部",
        "三会一课第2课",
        "每日答题",
        "更正冲销",
        "重复录入，予以冲销",
    ):
        assert words in text, words
    assert "三会一课第1课" not in text


def test_profile_links_to_the_study_record(client):
    make_user(make_org(), phone="13912345678")
    sign_in(client, "13912345678")
    html = client.get("/me").get_data(as_text=True)
    assert 'href="/me/record"' in html and "学习档案" in html


def test_record_needs_sign_in(client):
    assert client.get("/me/record").status_code == 302
    assert client.get("/me/record.pdf").status_code == 302
