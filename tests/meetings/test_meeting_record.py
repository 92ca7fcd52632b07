"""Recording an offline lesson or meeting: credits once per attendee, scope, bad input, pages."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.meetings.models import Meeting, MeetingAttendance
from tests.conftest import sign_in
from tests.factories import make_org, make_tree, make_user
from tests.meetings.meeting_data import (
    FUTURE,
    YESTERDAY,
    entry_count,
    form_tokens,
    ledger,
    meeting_count,
    members,
    only_meeting,
    organizer_client,
    post_meeting,
    total,
)


@pytest.fixture()
def tree():
    return make_tree()


def test_recording_credits_each_attendee_once_through_the_ledger(app, client, tree):
    people = members(tree["branch_a1"], 3)
    absent = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    response = post_meeting(client, tree["branch_a1"].id, people)
    assert response.status_code == 302
    meeting = only_meeting()
    assert (meeting.kind, meeting.topic, meeting.lecturer, meeting.hours) == (
        "lecture",
        "学习党章",
        "王书记",
        Decimal("1.50"),
    )
    assert meeting.held_on.isoformat() == YESTERDAY and meeting.org_id == tree["branch_a1"].id
    for person in people:
        entries = ledger(person)
        assert [(e.amount, e.source, e.title) for e in entries] == [(Decimal("1.50"), "offline", "学习党章")]
    assert ledger(absent) == []
    rows = db.session.query(MeetingAttendance).all()
    assert sorted(r.user_id for r in rows) == sorted(p.id for p in people)
    assert all(r.entry_id is not None for r in rows)


def test_the_same_form_sent_twice_records_one_meeting_and_credits_once(app, client, tree):
    people = members(tree["branch_a1"], 2)
    organizer_client(client, tree["district_a"])
    tokens = form_tokens(client, f"/meetings/new?org_id={tree['branch_a1'].id}")
    first = post_meeting(client, tree["branch_a1"].id, people, tokens=tokens)
    second = post_meeting(client, tree["branch_a1"].id, people, tokens=tokens)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert meeting_count() == 1
    assert [total(p) for p in people] == [Decimal("1.50"), Decimal("1.50")]


def test_two_meetings_credit_separately(app, client, tree):
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    post_meeting(client, tree["branch_a1"].id, [person], topic="第一次")
    post_meeting(client, tree["branch_a1"].id, [person], topic="第二次", hours="0.5")
    assert meeting_count() == 2
    assert total(person) == Decimal("2.00")


def test_roster_lists_the_members_of_the_orgs_subtree_only(app, client, tree):
    make_user(tree["branch_a1"], name="甲支部党员")
    make_user(tree["branch_a2"], name="乙支部党员")
    make_user(tree["branch_b1"], name="外区党员")
    make_user(tree["branch_a1"], name="停用党员", active=False)
    organizer_client(client, tree["district_a"])
    html = client.get(f"/meetings/new?org_id={tree['street_a'].id}").get_data(as_text=True)
    assert "甲支部党员" in html and "乙支部党员" in html
    assert "外区党员" not in html and "停用党员" not in html
    html = client.get(f"/meetings/new?org_id={tree['branch_a1'].id}").get_data(as_text=True)
    assert "甲支部党员" in html and "乙支部党员" not in html
    assert "data-select-all" in html and "js/meetings.js" in html


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"held_on": FUTURE}, "会议日期不能晚于今天"),
        ({"held_on": (date.today() - timedelta(days=800)).isoformat()}, "已超过 366 天"),
        ({"held_on": "昨天"}, "日期格式应为"),
        ({"held_on": ""}, "请填写会议召开日期"),
        ({"hours": "0"}, "学时须为大于 0"),
        ({"hours": "-1"}, "学时须为大于 0"),
        ({"hours": "NaN"}, "学时须为大于 0"),
        ({"hours": "inf"}, "学时须为大于 0"),
        ({"hours": "99"}, "学时须为大于 0"),
        ({"hours": "8.01"}, "学时须为大于 0"),
        ({"hours": "1.234"}, "学时须为大于 0"),
        ({"hours": "一"}, "学时须为大于 0"),
        ({"hours": ""}, "学时须为大于 0"),
        ({"topic": ""}, "请填写会议主题"),
        ({"topic": "   "}, "请填写会议主题"),
        ({"topic": "长" * 201}, "会议主题最多 200 个字"),
        ({"lecturer": "名" * 65}, "授课人姓名最多 64 个字"),
        ({"kind": "party"}, "请选择会议类型"),
        ({"kind": "group_viewing"}, "请选择会议类型"),
        ({"attendees": []}, "请至少勾选一名参加者"),
        ({"attendees": ["abc"]}, "无法识别参会人员名单"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_saves_nothing(app, client, tree, fields, message):
    people = members(tree["branch_a1"], 2)
    organizer_client(client, tree["district_a"])
    response = post_meeting(client, tree["branch_a1"].id, people, **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert meeting_count() == 0 and entry_count() == 0
    # What was typed and ticked is kept for the next try.
    if fields.get("attendees") is None:
        assert f'value="{people[0].id}" checked' in html


def test_the_largest_hours_are_accepted(app, client, tree):
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    assert post_meeting(client, tree["branch_a1"].id, [person], hours="8").status_code == 302
    assert total(person) == Decimal("8.00")


def test_an_attendee_outside_the_orgs_subtree_is_refused(app, client, tree):
    inside = make_user(tree["branch_a1"])
    other_district = make_user(tree["branch_b1"])
    sibling_branch = make_user(tree["branch_a2"])
    organizer_client(client, tree["district_a"])
    for outsider in (other_district, sibling_branch):
        response = post_meeting(client, tree["branch_a1"].id, [inside, outsider])
        assert response.status_code == 400
        assert "不是" in response.get_data(as_text=True)
    assert meeting_count() == 0 and entry_count() == 0


def test_an_inactive_member_cannot_be_credited(app, client, tree):
    gone = make_user(tree["branch_a1"], active=False)
    organizer_client(client, tree["district_a"])
    assert post_meeting(client, tree["branch_a1"].id, [gone]).status_code == 400
    assert meeting_count() == 0 and entry_count() == 0


def test_organizer_of_another_district_is_refused_everywhere(app, client, tree):
    person_b = make_user(tree["branch_b1"])
    person_a = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"], phone="13800000002")
    # A meeting of district b, recorded by its own organizer.
    with app.test_client() as other:
        organizer_client(other, tree["district_b"], phone="13800000003")
        assert post_meeting(other, tree["branch_b1"].id, [person_b]).status_code == 302
    meeting = only_meeting()
    b1 = tree["branch_b1"].id
    tokens = form_tokens(client, f"/meetings/new?org_id={tree['branch_a1'].id}")
    assert client.get(f"/meetings?org_id={b1}").status_code == 403
    assert client.get(f"/meetings/new?org_id={b1}").status_code == 403
    assert post_meeting(client, b1, [person_b], tokens=tokens).status_code == 403
    assert client.get(f"/meetings/group-viewing/new?org_id={b1}").status_code == 403
    assert client.get(f"/meetings/{meeting.id}").status_code == 403
    assert client.get(f"/meetings/{meeting.id}/edit").status_code == 403
    edit = dict(
        tokens, topic="改", hours="2", held_on=YESTERDAY, kind="lecture", attendees=[str(person_a.id)]
    )
    assert client.post(f"/meetings/{meeting.id}/edit", data=edit).status_code == 403
    cancel = {"csrf_token": tokens["csrf_token"], "reason": "错了"}
    assert client.post(f"/meetings/{meeting.id}/cancel", data=cancel).status_code == 403
    # The form's attendee ids cannot reach into district b either.
    assert post_meeting(client, tree["branch_a1"].id, [person_b], tokens=tokens).status_code == 400
    db.session.remove()
    after = db.session.get(Meeting, meeting.id)
    assert after.topic == "学习党章" and after.cancelled_at is None and after.hours == Decimal("1.50")
    assert meeting_count() == 1
    assert total(person_b) == Decimal("1.50") and total(person_a) == 0


def test_a_member_cannot_record_or_see_meetings(app, client, tree):
    person = make_user(tree["branch_a1"], phone="13700000001")
    sign_in(client, "13700000001")
    assert client.get("/meetings").status_code == 403
    assert client.get(f"/meetings/new?org_id={tree['branch_a1'].id}").status_code == 403
    token = form_tokens(client, "/me/record")["csrf_token"]
    data = {"csrf_token": token, "kind": "lecture", "held_on": YESTERDAY, "topic": "x", "hours": "1"}
    data["attendees"] = [str(person.id)]
    assert client.post(f"/meetings/new?org_id={tree['branch_a1'].id}", data=data).status_code == 403
    assert meeting_count() == 0 and entry_count() == 0


def test_topic_with_markup_is_shown_as_text(app, client, tree):
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    post_meeting(client, tree["branch_a1"].id, [person], topic=evil, lecturer="<b>讲</b>")
    meeting = only_meeting()
    for url in (f"/meetings/{meeting.id}", "/meetings", f"/meetings/{meeting.id}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>讲" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_list_filters_by_kind_year_and_quarter(app, client, tree):
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    post_meeting(client, tree["branch_a1"].id, [person], topic="党课会议", kind="lecture")
    post_meeting(client, tree["branch_a1"].id, [person], topic="支委会议", kind="committee")
    held = date.fromisoformat(YESTERDAY)
    quarter = (held.month - 1) // 3 + 1
    other_quarter = quarter % 4 + 1
    html = client.get("/meetings").get_data(as_text=True)
    assert "党课会议" in html and "支委会议" in html
    html = client.get("/meetings?kind=committee").get_data(as_text=True)
    assert "支委会议" in html and "党课会议" not in html
    html = client.get(f"/meetings?year={held.year}&quarter={quarter}").get_data(as_text=True)
    assert "党课会议" in html and "支委会议" in html
    html = client.get(f"/meetings?year={held.year}&quarter={other_quarter}").get_data(as_text=True)
    assert "党课会议" not in html
    html = client.get(f"/meetings?year={held.year - 1}").get_data(as_text=True)
    assert "党课会议" not in html
    # Odd filter values are ignored, not errors.
    assert client.get("/meetings?kind=x&year=abc&quarter=9").status_code == 200


def test_list_shows_only_the_organizers_subtree(app, client, tree):
    a, b = make_user(tree["branch_a1"]), make_user(tree["branch_b1"])
    with app.test_client() as other:
        organizer_client(other, tree["district_b"], phone="13800000003")
        post_meeting(other, tree["branch_b1"].id, [b], topic="乙区会议")
    organizer_client(client, tree["district_a"])
    post_meeting(client, tree["branch_a1"].id, [a], topic="甲区会议")
    html = client.get("/meetings").get_data(as_text=True)
    assert "甲区会议" in html and "乙区会议" not in html
    html = client.get(f"/meetings?org_id={tree['branch_a2'].id}").get_data(as_text=True)
    assert "甲区会议" not in html


def test_member_sees_the_offline_credit_in_their_study_record(app, client, tree):
    person = make_user(tree["branch_a1"], phone="13700000001")
    with app.test_client() as organizer:
        organizer_client(organizer, tree["district_a"])
        post_meeting(organizer, tree["branch_a1"].id, [person], topic="学习二十大精神")
    sign_in(client, "13700000001")
    html = client.get("/me/record").get_data(as_text=True)
    assert "线下党课" in html and "学习二十大精神" in html and "+1.5" in html


def test_home_and_org_pages_link_to_meetings(app, client, tree):
    organizer_client(client, tree["district_a"])
    assert "/meetings" in client.get("/").get_data(as_text=True)
    html = client.get(f"/orgs/{tree['branch_a1'].id}").get_data(as_text=True)
    assert f"/meetings?org_id={tree['branch_a1'].id}" in html


def test_a_meeting_recorded_in_january_counts_for_the_year_it_was_held(app):
    from decimal import Decimal

    from school.credits.models import CreditEntry
    from school.credits.service import credit_once

    member = make_user(make_org())
    with app.app_context():
        credit_once(member.id, Decimal("1"), "offline", "offline:99:1:0", "支部党员大会", year=2025)
        db.session.commit()
    entry = db.session.scalar(sa.select(CreditEntry).where(CreditEntry.user_id == member.id))
    assert entry.year == 2025
