import io
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from school import db
from school.accounts.models import User
from school.roster import importer, service
from tests.conftest import csrf_from, sign_in
from tests.factories import make_org, make_organizer, make_tree, make_user

HEAD = ["姓名", "手机号", "所在支部", "党员类别", "在职情况", "流动党员"]
ORGANIZER = "13800000001"


def xlsx(rows, head=HEAD) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [head, *rows]:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows, encoding="utf-8", head=HEAD) -> bytes:
    lines = [",".join(head)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.fixture(autouse=True)
def no_uploads():
    """Kept uploads live in the shared instance folder: each test starts without any."""
    shutil.rmtree(import_dir(), ignore_errors=True)


@pytest.fixture()
def zh(app):
    """An app context, so that service messages come out in the site's language (Chinese)."""
    with app.app_context():
        yield


@pytest.fixture()
def tree():
    tree = make_tree()
    make_organizer(tree["district_a"], phone=ORGANIZER)
    return tree


def upload(client, org, data: bytes, filename="members.xlsx"):
    page = client.get(f"/orgs/{org.id}/import")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        f"/orgs/{org.id}/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def apply(client, org, dry_run_html: str, skip=False):
    token = dry_run_html.split("/import/")[1].split("/apply")[0]
    form = {"csrf_token": csrf_from(dry_run_html)}
    if skip:
        form["skip_rejected"] = "1"
    return client.post(f"/orgs/{org.id}/import/{token}/apply", data=form)


def users_by_phone() -> dict[str, User]:
    db.session.remove()
    return {u.phone: u for u in db.session.scalars(sa.select(User)) if u.phone}


def import_dir() -> Path:
    return Path(os.environ["INSTANCE_DIR"]) / "imports"


# --- the happy path ---------------------------------------------------------------------------


def test_dry_run_shows_new_members_and_writes_nothing(client, tree):
    sign_in(client, ORGANIZER)
    data = xlsx([["张三", "138 0000 1111", tree["branch_a1"].name, "预备党员", "离退休", "是"]])
    response = upload(client, tree["district_a"], data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "张三" in html and "13800001111" in html
    assert "13800001111" not in users_by_phone()


def test_apply_creates_members_with_mapped_categories_and_a_forced_password_change(client, tree):
    sign_in(client, ORGANIZER)
    data = xlsx([["张三", "+86 138-0000-1111", "a街道第1支部", "预备党员", "离退休", "是"]])
    html = upload(client, tree["district_a"], data).get_data(as_text=True)
    assert apply(client, tree["district_a"], html).status_code == 200
    user = users_by_phone()["13800001111"]
    assert user.display_name == "张三"
    assert user.home_org_id == tree["branch_a1"].id
    assert (user.member_status, user.employment, user.floating) == ("probationary", "retired", True)
    assert user.must_change_password and user.roles == {"member"}
    assert list(import_dir().glob("*")) == []


def test_branch_can_be_given_by_code(client):
    tree = make_tree()
    coded = make_org("第九支部", "branch", tree["street_a"], code="A-09")
    make_organizer(tree["district_a"], phone=ORGANIZER)
    sign_in(client, ORGANIZER)
    html = upload(
        client, tree["district_a"], csv_bytes([["李四", "13800002222", "A-09", "", "", ""]]), "m.csv"
    )
    apply(client, tree["district_a"], html.get_data(as_text=True))
    assert users_by_phone()["13800002222"].home_org_id == coded.id


def test_existing_member_in_subtree_is_updated_and_the_change_is_listed(client, tree):
    make_user(tree["branch_a1"], name="王五", phone="13800003333", member_status="probationary")
    sign_in(client, ORGANIZER)
    data = xlsx([["王五", "13800003333", "a街道第2支部", "正式党员", "", ""]])
    html = upload(client, tree["district_a"], data).get_data(as_text=True)
    assert "a街道第1支部 → a街道第2支部" in html
    assert "预备党员 → 正式党员" in html
    apply(client, tree["district_a"], html)
    user = users_by_phone()["13800003333"]
    assert (user.home_org_id, user.member_status) == (tree["branch_a2"].id, "full")


def test_importing_the_same_file_twice_changes_nothing(client, tree):
    sign_in(client, ORGANIZER)
    data = xlsx(
        [
            ["张三", "13800001111", "a街道第1支部", "正式党员", "在职", "否"],
            ["李四", "13800002222", "a街道第2支部", "", "", ""],
        ]
    )
    apply(client, tree["district_a"], upload(client, tree["district_a"], data).get_data(as_text=True))
    before = {
        p: (u.id, u.display_name, u.home_org_id, u.session_version) for p, u in users_by_phone().items()
    }
    plan = service.make_plan(_organizer(), tree["district_a"], data, "m.xlsx", _config())
    assert plan.counts == {"create": 0, "update": 0, "unchanged": 2, "reject": 0}
    html = upload(client, tree["district_a"], data).get_data(as_text=True)
    assert "/apply" not in html  # nothing to apply
    after = {p: (u.id, u.display_name, u.home_org_id, u.session_version) for p, u in users_by_phone().items()}
    assert before == after


def _organizer():
    db.session.remove()
    return db.session.scalar(sa.select(User).where(User.phone == ORGANIZER))


def _config():
    return {"IMPORT_MAX_BYTES": 5 * 1024 * 1024, "IMPORT_MAX_ROWS": 20000}


def test_template_downloads_parse_as_headers(client, tree):
    sign_in(client, ORGANIZER)
    org = tree["district_a"]
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/orgs/{org.id}/import/template.xlsx").data))
    assert [c.value for c in book.active[1]] == HEAD
    text = client.get(f"/orgs/{org.id}/import/template.csv").data.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(HEAD)


def test_org_page_links_to_import(client, tree):
    sign_in(client, ORGANIZER)
    html = client.get(f"/orgs/{tree['district_a'].id}").get_data(as_text=True)
    assert f"/orgs/{tree['district_a'].id}/import" in html


# --- whole-file problems: a Chinese message, no plan, nothing saved -----------------------------


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "m.csv", "文件是空的"),
        (b"   \r\n", "m.csv", "文件是空的"),
        (csv_bytes([], head=HEAD), "m.csv", "没有党员数据"),
        (csv_bytes([["张三", "13800001111"]], head=["名字", "电话"]), "m.csv", "缺少：姓名、手机号"),
        (xlsx([["张三", "13800001111"]], head=["name", "phone"]), "m.xlsx", "缺少"),
        (b"PK\x03\x04not really a zip", "m.xlsx", "不是有效的 XLSX"),
        (b"\xd0\xcf\x11\xe0" + b"\0" * 100, "m.xls", ".xls"),
        (
            ",".join(HEAD).encode()
            + "\n张三,13800001111,a街道第1支部\n".encode()
            + "李四,13800002222,a街道第2支部\n".encode("gbk"),
            "m.csv",
            "混用",
        ),
    ],
)
def test_bad_files_are_refused_with_a_message_and_no_plan(client, tree, data, filename, message):
    sign_in(client, ORGANIZER)
    response = upload(client, tree["district_a"], data, filename)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert not import_dir().exists() or list(import_dir().glob("*.dat")) == []


def test_file_over_the_size_limit_is_refused(client, tree):
    sign_in(client, ORGANIZER)
    big = csv_bytes([["张三", "13800001111", "x" * (10 * 1024 * 1024), "", "", ""]])
    response = upload(client, tree["district_a"], big, "m.csv")
    assert response.status_code == 400
    assert "5 MB" in response.get_data(as_text=True)


def test_a_10_mb_cell_in_a_small_xlsx_is_a_rejected_row_not_a_crash(client, tree):
    sign_in(client, ORGANIZER)
    data = xlsx([["张" * (10 * 1024 * 1024), "13800001111", "a街道第1支部", "", "", ""]])
    assert len(data) < 5 * 1024 * 1024  # compresses well
    response = upload(client, tree["district_a"], data)
    html = response.get_data(as_text=True)
    assert response.status_code in (200, 400)
    assert "过长" in html or "解压" in html
    assert len(html) < 200_000  # the cell is not echoed back


def test_more_rows_than_allowed_is_refused():
    rows = [importer.SourceRow(n, {}) for n in range(3)]
    assert len(rows) == 3
    data = csv_bytes([["张三", f"1380000{n:04d}", "x", "", "", ""] for n in range(5)])
    with pytest.raises(importer.Invalid):
        importer.read_table(data, "m.csv", max_rows=4)


def test_gbk_and_utf8_bom_csv_both_read(client, tree):
    sign_in(client, ORGANIZER)
    row = [["张三", "13800001111", "a街道第1支部", "正式党员", "在职", "否"]]
    for data in (csv_bytes(row, "gbk"), b"\xef\xbb\xbf" + csv_bytes(row, "utf-8")):
        html = upload(client, tree["district_a"], data, "m.csv").get_data(as_text=True)
        assert "张三" in html and "正式党员" not in html.split("张三")[0][-5:]
        plan = service.make_plan(_organizer(), tree["district_a"], data, "m.csv", _config())
        assert plan.counts["create"] == 1


# --- rows that are rejected, with the reason ----------------------------------------------------


def _plan(tree, data, filename="m.xlsx"):
    return service.make_plan(_organizer(), tree["district_a"], data, filename, _config())


def test_row_problems_are_rejected_row_by_row(client, tree):
    outsider = make_user(tree["branch_b1"], name="外区某人", phone="13800009999")
    data = xlsx(
        [
            ["缺电话", "", "a街道第1支部", "", "", ""],
            ["坏电话", "12345", "a街道第1支部", "", "", ""],
            ["未知支部", "13800000011", "不存在的支部", "", "", ""],
            ["外区支部", "13800000012", "b街道第1支部", "", "", ""],
            ["不是支部", "13800000013", "a街道", "", "", ""],
            ["坏类别", "13800000014", "a街道第1支部", "党员", "", ""],
            ["外区党员", "13800009999", "a街道第1支部", "", "", ""],
            ["名" * 65, "13800000015", "a街道第1支部", "", "", ""],
            ["", "13800000016", "a街道第1支部", "", "", ""],
        ]
    )
    sign_in(client, ORGANIZER)
    html = upload(client, tree["district_a"], data).get_data(as_text=True)
    for reason in (
        "缺少手机号",
        "手机号不是有效的11位",
        "找不到该编码或名称的支部",
        "不在您正在导入的组织范围内",
        "只能属于党支部",
        "党员类别",
        "该手机号已属于您管辖范围外的党员",
        "超过64个字",
        "缺少姓名",
    ):
        assert reason in html, reason
    assert outsider.display_name not in html
    assert "b街道第1支部" not in html.split("外区党员")[1].split("</li>")[0]
    assert _plan(tree, data).counts["reject"] == 9


def test_moving_a_member_to_a_branch_outside_my_subtree_is_rejected(zh, tree):
    make_user(tree["branch_a1"], name="王五", phone="13800003333")
    plan = _plan(tree, xlsx([["王五", "13800003333", "b街道第1支部", "", "", ""]]))
    assert [r.action for r in plan.rows] == ["reject"]
    assert "范围内" in plan.rows[0].reason


def test_two_rows_with_the_same_phone_are_both_rejected_naming_the_rows(tree):
    plan = _plan(
        tree,
        xlsx(
            [
                ["甲", "13800001111", "a街道第1支部", "", "", ""],
                ["乙", "138-0000-1111", "a街道第2支部", "", "", ""],
            ]
        ),
    )
    assert [r.action for r in plan.rows] == ["reject", "reject"]
    assert all("2、3" in r.reason for r in plan.rows)


def test_formula_cells_are_rejected_in_xlsx_and_csv(zh, tree):
    data = xlsx([['=HYPERLINK("http://x","点我")', "13800001111", "a街道第1支部", "", "", ""]])
    assert _plan(tree, data).rows[0].action == "reject"
    assert "公式" in _plan(tree, data).rows[0].reason
    csv_data = csv_bytes([["=1+2", "13800001111", "a街道第1支部", "", "", ""]])
    assert _plan(tree, csv_data, "m.csv").rows[0].action == "reject"


def test_member_elsewhere_in_my_scope_is_rejected_without_details(zh):
    tree = make_tree()
    make_organizer(tree["city"], phone=ORGANIZER)
    make_user(tree["branch_b1"], name="乙", phone="13800003333")
    plan = service.make_plan(
        _organizer(),
        tree["district_a"],
        xlsx([["乙", "13800003333", "a街道第1支部", "", "", ""]]),
        "m",
        _config(),
    )
    assert plan.rows[0].action == "reject" and "本组织范围外" in plan.rows[0].reason


# --- apply: all or nothing ------------------------------------------------------------------------


def test_rejected_rows_block_the_whole_import_unless_skipped(client, tree):
    sign_in(client, ORGANIZER)
    data = xlsx(
        [["张三", "13800001111", "a街道第1支部", "", "", ""], ["坏", "1", "a街道第1支部", "", "", ""]]
    )
    html = upload(client, tree["district_a"], data).get_data(as_text=True)
    refused = apply(client, tree["district_a"], html)
    assert refused.status_code == 400 and "什么都没有导入" in refused.get_data(as_text=True)
    assert "13800001111" not in users_by_phone()
    assert apply(client, tree["district_a"], html, skip=True).status_code == 200
    assert "13800001111" in users_by_phone()


def test_a_failure_in_the_middle_leaves_nothing(tree):
    rows = [[f"党员{n}", f"1380001{n:04d}", "a街道第1支部", "", "", ""] for n in range(1200)]
    plan = _plan(tree, xlsx(rows))
    # Someone takes a phone of row 900 after the plan was made: the insert fails mid-way.
    make_user(tree["branch_b1"], phone="13800010900")
    with pytest.raises(service.Conflict):
        service.apply_plan(plan, skip_rejected=False)
    db.session.rollback()
    phones = set(users_by_phone())
    assert not any(p.startswith("1380001") and p != "13800010900" for p in phones)


def test_data_changed_since_the_preview_shows_a_new_preview_instead_of_applying(client, tree):
    sign_in(client, ORGANIZER)
    html = upload(client, tree["district_a"], xlsx([["张三", "13800001111", "a街道第1支部", "", "", ""]]))
    make_user(tree["branch_b1"], phone="13800001111")
    response = apply(client, tree["district_a"], html.get_data(as_text=True))
    assert "该手机号已属于您管辖范围外的党员" in response.get_data(as_text=True)
    assert users_by_phone()["13800001111"].home_org_id == tree["branch_b1"].id


# --- who may import -------------------------------------------------------------------------------


def test_upload_is_bound_to_its_organizer(client, app, tree):
    sign_in(client, ORGANIZER)
    html = upload(client, tree["district_a"], xlsx([["张三", "13800001111", "a街道第1支部", "", "", ""]]))
    html = html.get_data(as_text=True)
    make_organizer(tree["district_a"], phone="13800000002")
    other = app.test_client()
    sign_in(other, "13800000002")
    token = html.split("/import/")[1].split("/apply")[0]
    csrf = csrf_from(other.get(f"/orgs/{tree['district_a'].id}/import").get_data(as_text=True))
    response = other.post(f"/orgs/{tree['district_a'].id}/import/{token}/apply", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert "13800001111" not in users_by_phone()


def test_upload_is_bound_to_its_org(client, tree):
    sign_in(client, ORGANIZER)
    html = upload(client, tree["district_a"], xlsx([["张三", "13800001111", "a街道第1支部", "", "", ""]]))
    html = html.get_data(as_text=True)
    token = html.split("/import/")[1].split("/apply")[0]
    other_org = tree["street_a"].id
    response = client.post(f"/orgs/{other_org}/import/{token}/apply", data={"csrf_token": csrf_from(html)})
    assert response.status_code == 403


def test_organizer_cannot_import_into_an_org_outside_their_subtree(client, tree):
    sign_in(client, ORGANIZER)
    other = tree["district_b"]
    assert client.get(f"/orgs/{other.id}/import").status_code == 403
    assert client.get(f"/orgs/{other.id}/import/template.xlsx").status_code == 403
    response = upload_raw(client, other, tree["district_a"])
    assert response.status_code == 403


def upload_raw(client, target, own):
    token = csrf_from(client.get(f"/orgs/{own.id}/import").get_data(as_text=True))
    data = xlsx([["张三", "13800001111", "b街道第1支部", "", "", ""]])
    return client.post(
        f"/orgs/{target.id}/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), "m.xlsx")},
        content_type="multipart/form-data",
    )


def test_members_cannot_open_the_import(client, tree):
    make_user(tree["branch_a1"], phone="13800000005")
    sign_in(client, "13800000005")
    assert client.get(f"/orgs/{tree['branch_a1'].id}/import").status_code == 403


def test_a_row_placing_a_member_in_a_closed_branch_is_rejected(zh, tree):
    tree["branch_a2"].closed_at = db.utcnow()
    db.session.commit()
    plan = _plan(tree, xlsx([["赵六", "13800004444", "a街道第2支部", "", "", ""]]))
    assert [r.action for r in plan.rows] == ["reject"]
    assert "撤销" in plan.rows[0].reason or "关闭" in plan.rows[0].reason
