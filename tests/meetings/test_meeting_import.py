"""Attendance from a list of phone numbers (CSV in UTF-8 or GBK, XLSX): all rows usable or nothing saved."""

import io
from decimal import Decimal

import openpyxl
import pytest

from tests.factories import make_tree, make_user
from tests.meetings.meeting_data import entry_count, meeting_count, organizer_client, post_meeting, total


@pytest.fixture()
def tree():
    return make_tree()


def csv_file(lines: list[str], encoding: str = "utf-8", name: str = "名单.csv"):
    return (io.BytesIO("\r\n".join(lines).encode(encoding)), name)


def xlsx_file(rows: list[list]) -> tuple:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return (out, "名单.xlsx")


def test_a_utf8_csv_of_phones_credits_those_members(app, client, tree):
    a = make_user(tree["branch_a1"], phone="13911110001", name="张三")
    b = make_user(tree["branch_a1"], phone="13911110002", name="李四")
    ticked = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    upload = csv_file(["姓名,手机号", "张三,139 1111 0001", "李四,+8613911110002", "李四,13911110002", ""])
    response = post_meeting(client, tree["branch_a1"].id, [ticked], file=upload)
    assert response.status_code == 302
    assert [total(p) for p in (a, b, ticked)] == [Decimal("1.50")] * 3
    assert entry_count() == 3


def test_a_gbk_csv_is_read(app, client, tree):
    a = make_user(tree["branch_a1"], phone="13911110001")
    organizer_client(client, tree["district_a"])
    upload = csv_file(["姓名,手机号,备注", "张三,13911110001,老党员"], encoding="gbk")
    response = post_meeting(client, tree["branch_a1"].id, [], file=upload)
    assert response.status_code == 302
    assert total(a) == Decimal("1.50")


def test_an_xlsx_with_numeric_phones_is_read(app, client, tree):
    a = make_user(tree["branch_a1"], phone="13911110001")
    organizer_client(client, tree["district_a"])
    upload = xlsx_file([["序号", "姓名", "手机号"], [1, "张三", 13911110001]])
    assert post_meeting(client, tree["branch_a1"].id, [], file=upload).status_code == 302
    assert total(a) == Decimal("1.50")


def test_unknown_and_outside_phones_are_refused_row_by_row_and_nothing_is_saved(app, client, tree):
    a = make_user(tree["branch_a1"], phone="13911110001")
    make_user(tree["branch_b1"], phone="13911110009", name="外区党员")
    make_user(tree["branch_a1"], phone="13911110008", active=False)
    organizer_client(client, tree["district_a"])
    rows = ["张三,13911110001", "无名,13900009999", "外区,13911110009", "停用,13911110008", "错,12345"]
    upload = csv_file(["姓名,手机号", *rows])
    response = post_meeting(client, tree["branch_a1"].id, [a], file=upload)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "参会名单中有 4 行无法使用，未保存任何内容" in html
    assert "第 3 行：没有手机号为 13900009999 的党员。" in html
    assert "第 4 行：13911110009 不是" in html and "第 5 行：13911110008 不是" in html
    assert "第 6 行：“12345”不是手机号码。" in html
    assert "外区党员" not in html  # an outsider's name is not revealed
    assert meeting_count() == 0 and entry_count() == 0


@pytest.mark.parametrize(
    "upload, message",
    [
        (csv_file([]), "文件是空的"),
        (csv_file(["", "  "]), "文件是空的"),
        (csv_file(["姓名,电话", "张三,13911110001"]), "第一行须包含列标题“手机号”"),
        (csv_file(["手机号"]), "文件只有表头，没有手机号"),
        ((io.BytesIO(b"PK\x03\x04not a zip"), "名单.xlsx"), "XLSX"),
        ((io.BytesIO(b"\xd0\xcf\x11\xe0old"), "名单.xls"), ".xls"),
    ],
)
def test_bad_files_are_refused_with_a_message(app, client, tree, upload, message):
    a = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    response = post_meeting(client, tree["branch_a1"].id, [a], file=upload)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert meeting_count() == 0 and entry_count() == 0


def test_a_formula_cell_is_not_used_as_a_phone(app, client, tree):
    make_user(tree["branch_a1"], phone="13911110001")
    organizer_client(client, tree["district_a"])
    upload = csv_file(["手机号", "=13911110001"])
    assert post_meeting(client, tree["branch_a1"].id, [], file=upload).status_code == 400
    assert meeting_count() == 0
