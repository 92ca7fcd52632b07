"""Stored XSS: hostile text saved in every free-text field, then every page, JSON answer and export
that shows it is opened as each kind of user; the payload must come out inert (escaped)."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import openpyxl
import pytest
import sqlalchemy as sa
from werkzeug.routing import IntegerConverter

from school import db
from school.courses import service as courses
from school.media import service as media
from school.meetings import service as meetings
from school.notifications import service as notifications
from school.plans import service as plans
from school.quizzes import service as quizzes
from school.warnings import service as warnings
from school.warnings.models import OrgWarning, WarningRule
from tests.conftest import csrf_from, sign_in
from tests.factories import make_org, make_user
from tests.search.test_search import SRT, run_jobs

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
TEXTAREA = "</textarea><b>x</b>"
# One string carrying every markup payload; short enough for name fields (64 characters).
P = f"{SCRIPT}{IMG}{TEMPLATE}"
LONG = f"{P}{TEXTAREA}' onmouseover='alert(1)"
JS_URL = "javascript:alert(1)"
FORMULA = "=cmd|' /C calc'!A0"
MARKDOWN = (
    f"# {P}\n\n党费 {P} 交纳\n\n"
    f"[x]({JS_URL}) [y](JAVASCRIPT:alert(1)) <img src=x onerror=alert(1)> {SCRIPT}\n\n"
    f'<a href="{JS_URL}">raw</a> ![i](javascript:alert(1)) {TEXTAREA} {TEMPLATE}'
)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


class ActiveMarkup(HTMLParser):
    """Finds markup that would run script: script bodies, on* handlers, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.open: dict[str, int] = {}
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.open[tag] = self.open.get(tag, 0) + 1
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and (
                value or ""
            ).strip().lower().replace("\t", "").startswith(("javascript:", "data:text/html", "vbscript:")):
                self.found.append(f"<{tag} {name}={value}>")
            if tag == "img" and name == "src" and value == "x":
                self.found.append("<img src=x>")
        if tag == "script":
            self._in_script = dict(attrs).get("type") != "application/json"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        self.open[tag] = self.open.get(tag, 0) - 1

    def handle_data(self, data):
        if self._in_script and "alert" in data:
            self.found.append(f"<script>{data[:40]}")


def active_markup(html: str) -> list[str]:
    parser = ActiveMarkup()
    parser.feed(html)
    found = parser.found
    if parser.open.get("textarea", 0) < 0:  # a stored </textarea> closed the page's own textarea
        found.append("</textarea> broke out")
    if parser.open.get("b", 0) != 0:
        found.append("<b> injected")
    return found


def check_page(url: str, response) -> None:
    if response.mimetype != "text/html":
        # JSON, CSV, XLSX, PDF carry the text as data; nosniff keeps browsers from reading it as HTML.
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert not response.get_data()[:200].lstrip().lower().startswith((b"<!doctype", b"<html")), url
        return
    body = response.get_data(as_text=True)
    assert "<script>alert(1)" not in body, url
    assert "<img src=x" not in body, url
    assert active_markup(body) == [], url
    if TEMPLATE.replace("{{", "").replace("}}", "") in body:  # "7*7" shown means not evaluated
        assert "49" not in body.split("7*7")[0][-20:], url


@pytest.fixture()
def world(app, tmp_path):
    """Every free-text field holds hostile text, stored through the services the forms use."""
    city = make_org(f"市{P}"[:64], "city")
    district = make_org(f"区{P}"[:64], "district", city)
    street = make_org(f"街{P}"[:64], "street", district)
    branch = make_org(f"支{P}"[:64], "branch", street)
    admin = make_user(branch, roles=[("admin", None), ("member", None)], phone="13800000001", name=P)
    organizer = make_user(
        branch, roles=[("organizer", city.id), ("member", None)], phone="13800000002", name=P
    )
    lecturer = make_user(roles=[("lecturer", None)], phone="13800000003", name=P)
    member = make_user(branch, phone="13800000004", name=P)
    formula = make_user(branch, phone="13800000005", name=FORMULA)
    with app.app_context():
        owner = db.session.get(type(lecturer), lecturer.id)
        course = courses.create_course(owner, P, LONG, [SCRIPT, IMG, TEMPLATE])
        lesson = courses.create_lesson(course, P)
        courses.update_lesson(lesson, P, MARKDOWN, "1", "read")
        media.add_subtitles(lesson, f"1\n00:00:01,000 --> 00:00:04,000\n{P}\n\n".encode() + SRT.encode())
        source = tmp_path / "png"
        source.write_bytes(PNG)
        attachment = media.add_attachment(lesson, source, f"{P}.png")
        courses.set_lesson_state(lesson, "published")
        courses.set_course_state(course, "published", db.utcnow())
        data = quizzes.check_question("single", LONG, [P, f"B{P}"], [0], LONG, None)
        question = quizzes.save_question(course, data)
        quizzes.set_quiz_settings(lesson, True, 1, 60, 0, quizzes.GRADINGS[0])
        attempt = quizzes.start_lesson_attempt(db.session.get(type(member), member.id), lesson, db.utcnow())
        today = date.today()
        plan = plans.save_plan(
            db.session.get(type(organizer), organizer.id),
            city.id,
            plans.PlanInput(
                title=P,
                starts_on=today - timedelta(days=1),
                due_on=today + timedelta(days=30),
                description=LONG,
                course_ids=[course.id],
            ),
        )
        meeting = meetings.record_meeting(
            db.session.get(type(organizer), organizer.id),
            branch.id,
            meetings.MeetingInput(
                kind=_meeting_kind(),
                held_on=today.isoformat(),
                topic=P,
                lecturer=P,
                hours="1",
                attendee_ids=[str(member.id)],
            ),
            token="xss-meeting",
            on=today,
            config=app.config,
        )
        rule = WarningRule(kind="inactive_share", org_kind="branch")
        db.session.add(rule)
        db.session.flush()
        warning = OrgWarning(
            rule_id=rule.id, org_id=branch.id, open_key="xss", value=Decimal("60"), members=3
        )
        db.session.add(warning)
        db.session.flush()
        warnings.acknowledge(warning, db.session.get(type(organizer), organizer.id), LONG, db.utcnow())
        for user in (admin, organizer, member, lecturer):
            notifications.send(
                db.session.get(type(user), user.id), "plan", P, LONG, url=JS_URL, key=f"x{user.id}"
            )
        db.session.commit()
        ids = {
            "org_id": branch.id,
            "course_id": course.id,
            "lesson_id": lesson.id,
            "user_id": member.id,
            "question_id": question.id,
            "attempt_id": attempt.id,
            "plan_id": plan.id,
            "meeting_id": meeting.id,
            "warning_id": warning.id,
            "rule_id": rule.id,
            "attachment_id": attachment.id,
            "formula_user": formula.id,
        }
    run_jobs(app)  # the search index takes the hostile text too
    return ids


def _meeting_kind() -> str:
    from school.meetings.models import KINDS

    return next(iter(KINDS))


def urls_for(app, ids: dict) -> list[str]:
    found = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        values = dict(rule.defaults or {})
        for name, converter in rule._converters.items():
            is_int = isinstance(converter, IntegerConverter)
            values[name] = ids.get(name, 1) if is_int else "x"
        found.add(rule.build(values, append_unknown=False)[1])
    return sorted(found)


@pytest.mark.parametrize("phone", ["13800000001", "13800000002", "13800000003", "13800000004"])
def test_hostile_text_is_inert_on_every_page(app, client, world, phone):
    sign_in(client, phone)
    pages = [
        *urls_for(app, world),
        f"/orgs/{world['org_id']}?q={P}",
        f"/members?q={P}",
        f"/search?q={P}",
        "/search?q=alert",
        "/search?q=script",
        f"/api/v1/search?q={P}",
        f"/courses?q={P}",
        f"/courses?tag={P}",
    ]
    shown = 0
    for url in pages:
        response = client.get(url)
        check_page(url, response)
        if response.status_code == 200 and b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.data:
            shown += 1
    if phone == "13800000004":  # the member's own quiz attempt shows the question and options
        attempt = client.get(f"/quizzes/attempts/{world['attempt_id']}")
        assert attempt.status_code == 200 and b"&lt;script&gt;alert(1)" in attempt.data
    assert shown >= 3  # the hostile text was really shown (escaped), not just absent


def test_search_snippets_escape_indexed_text(app, client, world):
    sign_in(client, "13800000004")
    body = client.get("/search?q=党费").get_data(as_text=True)
    assert "<mark class=" in body  # the highlighted hit is there, and only <mark> is markup
    assert "&lt;script&gt;" in body and "<script>alert" not in body
    assert active_markup(body) == []


def test_lesson_markdown_drops_javascript_links(app, client, world):
    sign_in(client, "13800000004")
    body = client.get(f"/lessons/{world['lesson_id']}").get_data(as_text=True)
    assert "[x](javascript:alert(1))" in body  # markdown-it refuses the link: it stays text
    assert '<a href="javascript' not in body.lower() and '<img src="javascript' not in body.lower()
    assert active_markup(body) == []


def test_notification_links_never_run_script(app, client, world):
    sign_in(client, "13800000004")
    body = client.get("/notifications").get_data(as_text=True)
    assert active_markup(body) == [] and "javascript:" not in body.lower()


def test_attachment_names_and_svg_uploads_are_inert(app, client, world, tmp_path):
    sign_in(client, "13800000004")
    response = client.get(f"/media/attachments/{world['attachment_id']}/x?inline=1")
    assert response.status_code == 200
    assert "<" not in response.headers["Content-Disposition"].split("filename*")[0]
    assert "sandbox" in response.headers["Content-Security-Policy"]
    # An SVG (it can carry script) is not taken as an attachment: files are recognised by their
    # bytes, and SVG is not among the kinds a page may show (documents.INLINE_SAFE).
    from school.courses.models import Lesson
    from school.errors import Invalid

    svg = tmp_path / "x.svg"
    svg.write_bytes(SVG)
    with app.app_context():
        lesson = db.session.get(Lesson, world["lesson_id"])
        with pytest.raises(Invalid):
            media.add_attachment(lesson, svg, "x.svg")
        db.session.rollback()


def test_member_import_cells_are_escaped_in_the_dry_run(app, client, world):
    sign_in(client, "13800000002")
    form = client.get(f"/orgs/{world['org_id']}/import")
    token = csrf_from(form.get_data(as_text=True))
    from school.roster.importer import HEADERS

    rows = ",".join(HEADERS) + "\n"
    rows += f"{P},13900000001,{P},{P},在职,否\n{FORMULA},{P},x,正式党员,{P},{P}\n"
    response = client.post(
        f"/orgs/{world['org_id']}/import",
        data={"csrf_token": token, "file": (io.BytesIO(rows.encode()), f"{P}.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)[-1500:]
    check_page("import dry run", response)
    assert "&lt;script&gt;" in response.get_data(as_text=True)


def _cells_csv(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_exports_neutralise_formulas_and_keep_text(app, client, world):
    sign_in(client, "13800000002")
    org = world["org_id"]
    exports = [
        f"/reports/hours.csv?org_id={org}",
        f"/reports/hours.xlsx?org_id={org}",
        f"/reports/plans/{world['plan_id']}.csv",
        f"/reports/plans/{world['plan_id']}.xlsx",
        f"/reports/courses/{world['course_id']}.csv",
        f"/reports/courses/{world['course_id']}.xlsx",
        "/compare.csv",
        "/compare.xlsx",
        f"/orgs/{org}/import/template.csv",
    ]
    checked = 0
    for url in exports:
        response = client.get(url)
        if response.status_code != 200:
            continue
        if url.endswith(".csv") or ".csv?" in url:
            cells = _cells_csv(response.data)
        else:
            book = openpyxl.load_workbook(io.BytesIO(response.data))
            cells = []
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        assert cell.data_type != "f", (url, cell.value)  # never a live formula
                        if cell.value is not None:
                            cells.append(str(cell.value))
        for cell in cells:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (url, cell)
            assert not (cell.startswith("-") and not _number(cell)), (url, cell)
        checked += 1
    assert checked >= 6
    body = client.get(f"/reports/hours.csv?org_id={org}").data.decode("utf-8-sig")
    assert "'=cmd" in body  # the formula member is listed, neutralised


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_hostile_json_answers_stay_json(app, client, world):
    sign_in(client, "13800000004")
    for url in ("/api/v1/me", f"/api/v1/search?q={P}"):
        response = client.get(url)
        assert response.mimetype == "application/json", url
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OrgWarning)) == 1
