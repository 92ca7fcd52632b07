import csv
import io
import re
from decimal import Decimal
from html import unescape

import openpyxl
import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.credits.service import credit_once, study_year
from school.reports import service
from tests.conftest import sign_in
from tests.factories import make_organizer, make_tree, make_user

_refs = iter(range(1, 10_000))


def credit(user, *amounts):
    for amount in amounts:
        credit_once(user.id, amount, "lesson", f"lesson:{next(_refs)}", "title")
    db.session.commit()


@pytest.fixture()
def tree(app):
    """District A: 5 active members (2 reach their quota, 1 never studied) and 1 deactivated;
    district B: 1 member with 5 hours. One member of A is an organizer (quota 56)."""
    with app.app_context():
        t = make_tree()
        people = {
            "full": make_user(org=t["branch_a1"], name="甲"),
            "short": make_user(org=t["branch_a1"], name="乙"),
            "idle": make_user(org=t["branch_a1"], name="丙"),
            "gone": make_user(org=t["branch_a1"], name="丁"),
            "exact": make_user(org=t["branch_a2"], name="戊"),
            "secretary": make_user(
                org=t["branch_a2"], name="己", roles=[("member", None), ("organizer", t["branch_a2"].id)]
            ),
            "b": make_user(org=t["branch_b1"], name="乙区党员"),
        }
        credit(people["full"], 20, 20)
        credit(people["short"], 10)
        credit(people["gone"], 50)
        credit(people["exact"], "16.5", "15.5")
        credit(people["secretary"], 40)
        credit(people["b"], 5)
        db.session.get(User, people["gone"].id).active = False
        db.session.commit()
        organizer_a = make_organizer(t["district_a"], username="org-a")
        make_organizer(t["city"], username="org-city")
        ids = {k: v.id for k, v in {**t, **people}.items()}
        ids["organizer_a"] = organizer_a.id
        return ids


def report(app, org_key, tree, viewer="org-city"):
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.username == viewer)).one()
        return service.hours_report(tree[org_key], study_year(), user)


def by_name(report_):
    return {row.name: row for row in report_.children}


def test_city_figures_match_hand_computation(app, tree):
    r = report(app, "city", tree)
    a, b = by_name(r)["a区委"], by_name(r)["b区委"]
    assert (a.members, a.reached, a.idle, a.rate, a.average) == (5, 2, 1, Decimal("40.0"), Decimal("24.40"))
    assert (b.members, b.reached, b.idle, b.rate, b.average) == (1, 0, 0, Decimal("0.0"), Decimal("5.00"))
    t = r.total
    assert (t.members, t.reached, t.idle, t.rate, t.average) == (6, 2, 1, Decimal("33.3"), Decimal("21.17"))


def test_rollup_equals_sum_of_children(app, tree):
    city = report(app, "city", tree)
    district = report(app, "district_a", tree)
    street = report(app, "street_a", tree)
    row = by_name(city)["a区委"]
    for r in (district, street):
        assert (r.total.members, r.total.reached, r.total.idle, r.total.hours) == (
            row.members,
            row.reached,
            row.idle,
            row.hours,
        )
        assert r.total.members == sum(c.members for c in r.children)
        assert r.total.hours == sum(c.hours for c in r.children)


def test_inactive_members_are_left_out(app, tree):
    branch = report(app, "branch_a1", tree)
    assert [m.name for m in branch.members] == sorted(["甲", "乙", "丙"])
    assert branch.total.members == 3
    assert branch.total.hours == Decimal("50.00")


def test_branch_lists_members_with_quota_and_status(app, tree):
    statuses = {m.name: (m.hours, m.quota, m.status) for m in report(app, "branch_a2", tree).members}
    assert statuses == {
        "戊": (Decimal("32.00"), Decimal("32.00"), service.REACHED),
        "己": (Decimal("40.00"), Decimal("56.00"), service.SHORT),
    }
    idle = {m.name: m.status for m in report(app, "branch_a1", tree).members}
    assert idle["丙"] == service.IDLE


def test_organizer_of_one_district_cannot_see_another(client, tree):
    sign_in(client, "org-a")
    for path in ("/reports/hours", "/reports/hours.csv", "/reports/hours.xlsx"):
        assert client.get(f"{path}?org_id={tree['district_b']}").status_code == 403
        assert client.get(f"{path}?org_id={tree['city']}").status_code == 403
    page = client.get("/reports/hours").get_data(as_text=True)
    assert "a街道" in page and "b街道" not in page and "b区委" not in page
    assert "示范市委" not in page  # breadcrumbs stop at the organizer's own node


def test_member_cannot_open_report(client, tree):
    with client.application.app_context():
        make_user(org=None, username="plain")
    sign_in(client, "plain")
    assert client.get("/reports/hours").status_code == 403


def test_bad_year_is_refused(client, tree):
    sign_in(client, "org-a")
    assert client.get("/reports/hours?year=abc").status_code == 400


def page_rows(html: str) -> list[list[str]]:
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    # drop the table titles and the blank separators: the page shows titles as headings
    return [r for r in rows if len(r) > 1]


def xlsx_rows(body: bytes) -> list[list[str]]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    return [["" if v is None else str(v) for v in row] for sheet in book.worksheets for row in sheet.values]


@pytest.mark.parametrize("org_key", ["city", "district_a", "branch_a1"])
def test_exports_hold_the_figures_on_the_page(client, tree, org_key):
    sign_in(client, "org-city")
    query = f"?org_id={tree[org_key]}"
    shown = page_rows(client.get("/reports/hours" + query).get_data(as_text=True))
    assert len(shown) > 1
    csv_response = client.get("/reports/hours.csv" + query)
    assert csv_rows(csv_response.data) == shown
    assert "filename*=UTF-8''" in csv_response.headers["Content-Disposition"]
    xlsx = client.get("/reports/hours.xlsx" + query)
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    numeric = xlsx_rows(xlsx.data)
    assert [[_num(c) for c in r] for r in numeric] == [[_num(c) for c in r] for r in shown]


def _num(cell: str):
    try:
        return Decimal(cell)
    except ArithmeticError:
        return cell


def test_formula_in_a_name_is_exported_inert(client, tree, app):
    evil = '=HYPERLINK("http://x","点我")'
    with app.app_context():
        make_user(org=db.session.get(db_org(), tree["branch_b2"]), name=evil)
    sign_in(client, "org-city")
    query = f"?org_id={tree['branch_b2']}"
    text = client.get("/reports/hours.csv" + query).data.decode("utf-8-sig")
    names = [r[0] for r in csv.reader(io.StringIO(text)) if r]
    assert "'" + evil in names and evil not in names
    book = openpyxl.load_workbook(io.BytesIO(client.get("/reports/hours.xlsx" + query).data))
    values = [row[0] for sheet in book.worksheets for row in sheet.values]
    assert "'" + evil in values and evil not in values
    assert all(sheet.cell(row=2, column=1).data_type == "s" for sheet in book.worksheets)


def db_org():
    from school.orgs.models import Org

    return Org


def test_weeks_without_any_study_say_so_instead_of_an_empty_chart(app, client):
    with app.app_context():
        t = make_tree()
        make_user(org=t["branch_a1"])
        make_organizer(t["city"], username="org-quiet")
    sign_in(client, "org-quiet")
    html = client.get("/reports/hours").get_data(as_text=True)
    assert "这几周还没有数据" in html and 'aria-labelledby="week-title"' not in html
