import csv
import io
import random
import re
import secrets
from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from school import db
from school.accounts.models import RoleGrant, User
from school.comparison import service
from school.credits.models import CreditEntry
from school.credits.service import local_now
from school.learning.models import LessonProgress, ViewingSession
from school.orgs.models import Org
from school.plans.models import PlanItem, StudyPlan
from tests.conftest import sign_in
from tests.factories import make_admin, make_lesson, make_org, make_organizer, make_tree, make_user

_refs = iter(range(1, 100_000))


def credit(user_id, amount, when, source="lesson", reverses=None):
    entry = CreditEntry(
        user_id=user_id,
        year=when.year,
        amount=Decimal(str(amount)),
        source=source,
        ref_key=f"t:{next(_refs)}",
        created_at=when,
        reverses_id=reverses.id if reverses else None,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def complete(user_id, lesson_id, when):
    db.session.add(
        LessonProgress(
            user_id=user_id, lesson_id=lesson_id, completed_at=when, updated_at=when, first_opened_at=when
        )
    )


def played(user_id, lesson_id, when, beats=3):
    db.session.add(
        ViewingSession(
            id=secrets.token_hex(16),
            user_id=user_id,
            lesson_id=lesson_id,
            started_at=when,
            last_beat_at=when if beats else None,
            beats=beats,
        )
    )


def now():
    return db.utcnow()


@pytest.fixture()
def tree(app):
    """Street a: branch 1 (6 members: 3 studied, one with 3 hours), branch 2 (5 members: 1 studied,
    2 completions), a small branch (2 members, both studied) and an empty branch; district b has its
    own branch and a plan. Activity 60 days ago lies outside every 30-day period."""
    with app.app_context():
        t = make_tree()
        small = make_org("小支部", "branch", t["street_a"])
        empty = make_org("空支部", "branch", t["street_a"])
        lessons = [make_lesson() for _ in range(3)]
        b1 = [make_user(org=t["branch_a1"], name=f"一支{n}") for n in range(6)]
        b2 = [make_user(org=t["branch_a2"], name=f"二支{n}") for n in range(5)]
        sm = [make_user(org=small, name=f"小{n}") for n in range(2)]
        other = make_user(org=t["branch_b1"], name="乙区党员")
        recent, old = now() - timedelta(days=2), now() - timedelta(days=60)
        credit(b1[0].id, 3, recent)
        credit(b1[0].id, 10, old)
        played(b1[1].id, lessons[0].id, recent)
        played(b1[2].id, lessons[0].id, recent, beats=0)  # opened, never played: not study
        complete(b1[3].id, lessons[0].id, recent)
        complete(b2[0].id, lessons[0].id, recent)
        complete(b2[0].id, lessons[1].id, recent)
        complete(b2[1].id, lessons[1].id, old)
        mistake = credit(b2[2].id, 5, recent, source="manual")
        credit(b2[2].id, -5, recent, source="reversal", reverses=mistake)
        for u in sm:
            credit(u.id, 1, recent)
        credit(other.id, 40, recent)
        db.session.commit()
        plan_b = StudyPlan(
            org_id=t["district_b"].id, title="乙区计划", starts_on=date(2020, 1, 1), due_on=date(2030, 1, 1)
        )
        plan_b.items = [PlanItem(course_id=lessons[0].course_id)]
        plan_city = StudyPlan(
            org_id=t["city"].id, title="全市计划", starts_on=date(2020, 1, 1), due_on=date(2030, 1, 1)
        )
        plan_city.items = [PlanItem(lesson_id=lessons[0].id), PlanItem(lesson_id=lessons[1].id)]
        db.session.add_all([plan_b, plan_city])
        db.session.commit()
        make_organizer(t["district_a"], username="org-a")
        make_organizer(t["branch_a1"], username="org-branch")
        ids = {k: v.id for k, v in t.items()}
        ids.update(small=small.id, empty=empty.id, plan_b=plan_b.id, plan_city=plan_city.id)
        ids["lessons"] = [lesson.id for lesson in lessons]
        return ids


def last_30(app):
    today = local_now().date()
    return service.Period("30d", today - timedelta(days=29), today)


def run(app, org_key, tree, plan_key=None, sort="studied", personal=False, viewer="org-a"):
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.username == viewer)).one()
        plan = db.session.get(StudyPlan, tree[plan_key]) if plan_key else None
        return service.compare(tree[org_key], last_30(app), user, plan, sort, personal)


def by_name(result):
    return {row.name: row for row in result.rows}


# Figures


def test_rates_are_per_member_not_raw_totals(app, tree):
    rows = by_name(run(app, "street_a", tree))
    b1, b2 = rows["a街道第1支部"], rows["a街道第2支部"]
    assert (b1.members, b1.studied, b1.hours, b1.completions) == (6, 3, Decimal("3.00"), 1)
    assert b1.value("studied") == Decimal("50.0")
    assert b1.value("hours") == Decimal("0.50")
    assert b1.value("completions") == Decimal("0.17")
    assert (b2.members, b2.studied, b2.hours, b2.completions) == (5, 1, Decimal("0.00"), 2)
    assert b2.value("studied") == Decimal("20.0")  # a reversed manual credit is no study
    assert b2.value("completions") == Decimal("0.40")


def test_met_quota_uses_the_quota_pro_rated_to_the_period(app, tree):
    with app.app_context():
        period = last_30(app)
        quota = service.period_quotas(period)[0]
    assert quota == service.prorated(Decimal(32), period)
    assert Decimal("2.62") <= quota <= Decimal("2.63")  # 32 × 30 / 365 (or 366)
    rows = by_name(run(app, "street_a", tree))
    assert rows["a街道第1支部"].met_quota == 1  # 3 hours reach it; the others have none
    assert rows["a街道第1支部"].value("quota") == Decimal("16.7")
    assert rows["小支部"].met_quota == 0  # 1 hour each does not


def test_prorated_quota_is_the_yearly_quota_over_a_whole_year():
    whole = service.Period("custom", date(2024, 1, 1), date(2024, 12, 31))
    assert service.prorated(Decimal(32), whole) == Decimal("32.00")
    two = service.Period("custom", date(2024, 1, 1), date(2025, 12, 31))
    assert service.prorated(Decimal(32), two) == Decimal("64.00")
    january = service.Period("custom", date(2025, 1, 1), date(2025, 1, 31))
    assert service.prorated(Decimal(32), january) == Decimal("2.72")


def test_small_organisations_are_shown_but_not_ranked(app, tree):
    result = run(app, "street_a", tree)
    names = [row.name for row in result.rows]
    assert names == ["a街道第1支部", "a街道第2支部", "小支部", "空支部"]
    rows = by_name(result)
    assert (rows["a街道第1支部"].rank, rows["a街道第2支部"].rank) == (1, 2)
    assert rows["小支部"].too_few and rows["小支部"].rank is None
    assert rows["小支部"].value("studied") == Decimal("100.0")  # higher, still after the ranked ones


def test_empty_organisation_has_no_figures_and_no_division_by_zero(app, tree):
    rows = by_name(run(app, "street_a", tree, plan_key="plan_city"))
    empty = rows["空支部"]
    assert empty.members == 0
    assert all(empty.value(m) is None for m in service.MEASURES)
    alone = run(app, "empty", tree)
    assert alone.rows == [] and alone.total.members == 0
    table = service_tables(app, alone)
    assert table[0].rows == [["", "Total", 0, "—", "—", "—", "—"]]


def service_tables(app, result):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        return service.tables(result)


def test_plan_completion_counts_members_who_finished_every_lesson(app, tree):
    rows = by_name(run(app, "street_a", tree, plan_key="plan_city"))
    b2 = rows["a街道第2支部"]
    assert (b2.plan_reached, b2.plan_done) == (5, 1)  # b2[0] did both lessons; b2[1] only one
    assert b2.value("plan") == Decimal("20.0")
    assert rows["a街道第1支部"].value("plan") == Decimal("0.0")


def test_sorting_by_a_column_orders_the_rows(app, tree):
    names = [r.name for r in run(app, "street_a", tree, sort="completions").rows]
    assert names[:2] == ["a街道第2支部", "a街道第1支部"]
    result = run(app, "street_a", tree, sort="completions")
    assert by_name(result)["a街道第2支部"].rank == 1  # ranks follow the sorted measure
    assert [r.name for r in run(app, "street_a", tree, sort="name").rows][:2] == [
        "a街道第1支部",
        "a街道第2支部",
    ]


def test_figures_take_a_fixed_number_of_queries_whatever_the_number_of_orgs(app, tree):
    def count_queries(node):
        seen = []

        def listen(*_args):
            seen.append(1)

        with app.app_context():
            plan = db.session.get(StudyPlan, tree["plan_city"])
            assert plan.items and not plan.targets  # loaded before counting
            event.listen(db.engine, "before_cursor_execute", listen)
            try:
                service.figures(node, last_30(app), (Decimal(1), Decimal(2)), plan)
            finally:
                event.remove(db.engine, "before_cursor_execute", listen)
        return len(seen)

    few = count_queries(tree["street_b"])
    with app.app_context():
        street = db.session.get(Org, tree["street_b"])
        for n in range(8):
            branch = make_org(f"新支部{n}", "branch", street)
            make_user(org=branch)
    assert count_queries(tree["street_b"]) == few <= 3  # plan lessons, figures, names


def test_figures_equal_a_recomputation_over_raw_rows(app):
    """Random activity on a small tree; every count recomputed in Python from the raw rows."""
    rng = random.Random(7)
    with app.app_context():
        t = make_tree()
        extra = make_org("深层支部", "branch", make_org("社区", "street", t["street_a"]))
        branches = [t["branch_a1"], t["branch_a2"], extra, t["street_a"], t["branch_b1"]]
        lessons = [make_lesson().id for _ in range(4)]
        recent = now()
        for n in range(40):
            user = make_user(org=rng.choice(branches), active=rng.random() > 0.15)
            if n % 9 == 0:
                db.session.add(RoleGrant(user_id=user.id, role="organizer", org_id=t["branch_b2"].id))
            entries = []
            for _ in range(rng.randrange(4)):
                when = recent - timedelta(days=rng.randrange(70), hours=rng.randrange(24))
                entries.append(credit(user.id, rng.choice(["0.25", "0.5", "1", "2.5", "3"]), when))
            if entries and rng.random() < 0.3:
                wrong = entries[0]
                when = recent - timedelta(days=rng.randrange(40))
                credit(user.id, -wrong.amount, when, source="reversal", reverses=wrong)
            for lesson in rng.sample(lessons, rng.randrange(3)):
                when = recent - timedelta(days=rng.randrange(70))
                complete(user.id, lesson, when if rng.random() < 0.8 else None)
            if rng.random() < 0.3:
                played(
                    user.id, rng.choice(lessons), recent - timedelta(days=rng.randrange(60)), rng.randrange(2)
                )
        plan = StudyPlan(org_id=t["city"].id, title="p", starts_on=date(2020, 1, 1), due_on=date(2030, 1, 1))
        plan.items = [PlanItem(lesson_id=lessons[0]), PlanItem(lesson_id=lessons[1])]
        db.session.add(plan)
        db.session.commit()

        period = last_30(app)
        quotas = (Decimal("2.50"), Decimal("4.00"))
        for node in (t["city"], t["district_a"], t["street_a"]):
            got = {r.org_id: r for r in service.figures(node.id, period, quotas, plan)}
            assert got == expected_figures(node.id, period, quotas, plan.id, lessons[:2])
        assert sum(r.studied for r in got.values()) > 0 and sum(r.met_quota for r in got.values()) > 0


def expected_figures(node_id, period, quotas, plan_id, plan_lessons):
    start, end = period.bounds(ZoneInfo("Asia/Shanghai"))
    orgs = {o.id: o for o in db.session.scalars(sa.select(Org))}

    def under(org_id, top):
        while org_id is not None:
            if org_id == top:
                return True
            org_id = orgs[org_id].parent_id
        return False

    inside = lambda t: t is not None and start <= t < end  # noqa: E731
    users = [u for u in db.session.scalars(sa.select(User)) if u.active and u.home_org_id]
    credits = list(db.session.scalars(sa.select(CreditEntry)))
    progress = list(db.session.scalars(sa.select(LessonProgress)))
    sessions = list(db.session.scalars(sa.select(ViewingSession)))
    organizers = set(db.session.scalars(sa.select(RoleGrant.user_id).where(RoleGrant.role == "organizer")))
    groups = {o.id: (o, False) for o in orgs.values() if o.parent_id == node_id}
    result = {}
    for group_id, (org, _direct) in [*groups.items(), (node_id, (orgs[node_id], True))]:
        if group_id == node_id:
            people = [u for u in users if u.home_org_id == node_id]
            if not people:
                continue
        else:
            people = [u for u in users if under(u.home_org_id, group_id)]
        row = service.OrgFigures(
            group_id, "" if group_id == node_id else org.name, direct=group_id == node_id
        )
        for u in people:
            mine = [c for c in credits if c.user_id == u.id and inside(c.created_at)]
            hours = sum((c.amount for c in mine), Decimal(0))
            reversed_ids = {c.reverses_id for c in credits if c.reverses_id}
            studied = (
                any(c.amount > 0 and c.source != "reversal" and c.id not in reversed_ids for c in mine)
                or any(p.user_id == u.id and inside(p.completed_at) for p in progress)
                or any(s.user_id == u.id and s.beats > 0 and inside(s.last_beat_at) for s in sessions)
            )
            done = [
                p
                for p in progress
                if p.user_id == u.id and p.completed_at is not None and p.completed_at < end
            ]
            row.members += 1
            row.studied += studied
            row.hours += hours
            row.met_quota += hours >= quotas[u.id in organizers]
            row.completions += sum(1 for p in progress if p.user_id == u.id and inside(p.completed_at))
            row.plan_reached += 1  # the plan has no targets: it reaches every active member
            row.plan_done += {p.lesson_id for p in done} >= set(plan_lessons)
        result[group_id] = row
    return result


# Pages and scope


def test_organizer_sees_the_children_of_their_top_node(client, tree):
    sign_in(client, "org-a")
    page = client.get("/compare")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a街道" in html and "b街道" not in html and "示范市委" not in html


def test_organizer_of_one_district_cannot_compare_another(client, tree):
    sign_in(client, "org-a")
    for path in ("/compare", "/compare.csv", "/compare.xlsx"):
        for org in (tree["district_b"], tree["city"], tree["branch_b1"]):
            response = client.get(f"{path}?org_id={org}")
            assert response.status_code == 403
            body = response.get_data(as_text=True)
            assert "b街道" not in body and "乙区" not in body
        assert client.get(f"{path}?org_id=abc").status_code == 403


def test_admin_may_compare_anywhere(client, tree):
    with client.application.app_context():
        make_admin(username="root")
    sign_in(client, "root")
    html = client.get(f"/compare?org_id={tree['city']}").get_data(as_text=True)
    assert "a区委" in html and "b区委" in html


def test_member_cannot_open_the_comparison(client, tree):
    with client.application.app_context():
        make_user(org=None, username="plain")
    sign_in(client, "plain")
    assert client.get("/compare").status_code == 403


def test_plan_outside_scope_is_refused(client, tree):
    sign_in(client, "org-a")
    response = client.get(f"/compare?org_id={tree['street_a']}&plan_id={tree['plan_b']}")
    assert response.status_code == 403
    assert "乙区计划" not in response.get_data(as_text=True)
    assert client.get(f"/compare?org_id={tree['street_a']}&plan_id=99999").status_code == 404
    assert client.get(f"/compare?org_id={tree['street_a']}&plan_id=x").status_code == 400


def test_plan_pushed_from_above_may_be_compared_by(client, tree):
    sign_in(client, "org-a")
    response = client.get(f"/compare?org_id={tree['street_a']}&plan_id={tree['plan_city']}&sort=plan")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "全市计划" in html and "乙区计划" not in html  # the other district's plan is not offered
    assert "20.0" in html


@pytest.mark.parametrize(
    "query, message",
    [
        ("period=custom&from=2025-03-10&to=2025-03-01", "开始日期不能晚于结束日期"),
        ("period=custom&from=2025-13-01&to=2025-12-31", "请按 YYYY-MM-DD 填写日期"),
        ("period=custom&from=garbage&to=2025-12-31", "请按 YYYY-MM-DD 填写日期"),
        ("period=custom&from=2005-01-01&to=2025-01-01", "期间最长"),
        ("period=custom&from=2025-01-01", "请同时填写开始日期和结束日期"),
        ("period=custom&from=2999-01-01&to=2999-02-01", "请按 YYYY-MM-DD 填写日期"),
        ("period=decade", "未知的期间"),
        ("sort=secret", "未知的排序列"),
    ],
)
def test_bad_input_is_refused_with_a_chinese_message(client, tree, query, message):
    sign_in(client, "org-a")
    response = client.get(f"/compare?org_id={tree['street_a']}&{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_a_period_starting_in_the_future_is_refused(client, tree):
    sign_in(client, "org-a")
    with client.application.app_context():
        later = (local_now().date() + timedelta(days=3)).isoformat()
    response = client.get(f"/compare?period=custom&from={later}&to={later}")
    assert response.status_code == 400
    assert "不能从将来开始" in response.get_data(as_text=True)


def test_custom_period_is_applied(client, tree):
    sign_in(client, "org-a")
    with client.application.app_context():
        today = local_now().date()
    first = (today - timedelta(days=90)).isoformat()
    last = (today - timedelta(days=30)).isoformat()
    html = client.get(f"/compare?org_id={tree['street_a']}&period=custom&from={first}&to={last}").get_data(
        as_text=True
    )
    assert f"{first} 至 {last}" in html
    rows = page_rows(html)
    b1 = next(r for r in rows if r[1] == "a街道第1支部")
    assert b1[3] == "16.7"  # only the 10 hours of 60 days ago fall in this period


def test_a_name_with_markup_is_shown_inert(client, tree):
    with client.application.app_context():
        street = db.session.get(Org, tree["street_a"])
        make_org("<script>alert(1)</script>", "branch", street)
    sign_in(client, "org-a")
    html = client.get(f"/compare?org_id={tree['street_a']}").get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html


def test_links_from_home_and_org_page(client, tree):
    sign_in(client, "org-a")
    assert "/compare" in client.get("/").get_data(as_text=True)
    assert f"/compare?org_id={tree['district_a']}" in client.get(f"/orgs/{tree['district_a']}").get_data(
        as_text=True
    )


# Personal rankings


@pytest.mark.parametrize("extra", ["", "&view=members"])
def test_personal_ranking_is_off_by_default(client, tree, extra):
    assert client.application.config["PERSONAL_RANKINGS"] is False
    sign_in(client, "org-a")
    query = f"?org_id={tree['branch_a1']}{extra}"
    html = client.get("/compare" + query).get_data(as_text=True)
    assert "一支0" not in html and "党员学时排序" not in html
    assert "一支0" not in client.get("/compare.csv" + query).data.decode("utf-8-sig")


def test_personal_ranking_when_turned_on_lists_a_branch_by_hours(client, tree, monkeypatch):
    monkeypatch.setitem(client.application.config, "PERSONAL_RANKINGS", True)
    sign_in(client, "org-a")
    html = client.get(f"/compare?org_id={tree['branch_a1']}").get_data(as_text=True)
    assert "党员学时排序" in html
    rows = [r for r in page_rows(html) if len(r) == 2]
    assert rows[1] == ["一支0", "3.00"]  # most hours first, no rank number
    assert sorted(r[0] for r in rows[1:]) == [f"一支{n}" for n in range(6)]
    assert "一支0" in client.get(f"/compare.csv?org_id={tree['branch_a1']}").data.decode("utf-8-sig")
    # never for a node with organisations below it
    assert "一支0" not in client.get(f"/compare?org_id={tree['street_a']}").get_data(as_text=True)


# Exports


def page_rows(html: str) -> list[list[str]]:
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    return [r for r in rows if len(r) > 1]


def xlsx_rows(body: bytes) -> list[list[str]]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    return [["" if v is None else str(v) for v in row] for sheet in book.worksheets for row in sheet.values]


def _num(cell: str):
    try:
        return Decimal(cell)
    except ArithmeticError:
        return cell


@pytest.mark.parametrize(
    "org_key, extra",
    [("street_a", ""), ("street_a", "&sort=hours"), ("branch_a1", ""), ("empty", "")],
)
def test_exports_hold_the_figures_on_the_page(client, tree, monkeypatch, org_key, extra):
    monkeypatch.setitem(client.application.config, "PERSONAL_RANKINGS", True)
    sign_in(client, "org-a")
    query = f"?org_id={tree[org_key]}&plan_id={tree['plan_city']}{extra}"
    shown = page_rows(client.get("/compare" + query).get_data(as_text=True))
    assert len(shown) > 1
    response = client.get("/compare.csv" + query)
    assert csv_rows(response.data) == shown
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    xlsx = client.get("/compare.xlsx" + query)
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert [[_num(c) for c in r] for r in xlsx_rows(xlsx.data)] == [[_num(c) for c in r] for r in shown]


def test_formula_in_an_org_name_is_exported_inert(client, tree):
    evil = '=HYPERLINK("http://x","点我")'
    with client.application.app_context():
        make_org(evil, "branch", db.session.get(Org, tree["street_a"]))
    sign_in(client, "org-a")
    query = f"?org_id={tree['street_a']}"
    names = [r[1] for r in csv_rows(client.get("/compare.csv" + query).data)]
    assert "'" + evil in names and evil not in names
    book = openpyxl.load_workbook(io.BytesIO(client.get("/compare.xlsx" + query).data))
    values = [row[1] for sheet in book.worksheets for row in sheet.values]
    assert "'" + evil in values and evil not in values
