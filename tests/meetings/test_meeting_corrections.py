"""Corrections are reversing ledger entries: removing, adding, changing hours, cancelling."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.errors import Forbidden, Invalid
from school.meetings import service
from school.meetings.models import Meeting
from tests.factories import make_organizer, make_tree, make_user
from tests.meetings.meeting_data import (
    YESTERDAY,
    entry_count,
    form_tokens,
    ledger,
    members,
    only_meeting,
    organizer_client,
    post_edit,
    post_meeting,
    total,
)


@pytest.fixture()
def tree():
    return make_tree()


@pytest.fixture()
def recorded(app, client, tree):
    """Three members of branch a1 credited 1.5 each, by a signed-in organizer of district a."""
    people = members(tree["branch_a1"], 3)
    organizer_client(client, tree["district_a"])
    assert post_meeting(client, tree["branch_a1"].id, people).status_code == 302
    return only_meeting(), people


def amounts(user) -> list[tuple[Decimal, str]]:
    return [(e.amount, e.source) for e in ledger(user)]


def test_removing_an_attendee_reverses_their_credit_and_keeps_the_others(client, recorded):
    meeting, (a, b, c) = recorded
    response = post_edit(client, meeting.id, [a, b], reason="c 当天请假")
    assert response.status_code == 302
    assert amounts(c) == [(Decimal("1.50"), "offline"), (Decimal("-1.50"), "reversal")]
    reversal = ledger(c)[1]
    assert reversal.reason == "c 当天请假" and reversal.reverses_id == ledger(c)[0].id
    assert reversal.created_by_id is not None
    assert total(c) == 0 and total(a) == total(b) == Decimal("1.50")
    assert entry_count() == 4  # three credits, one reversal: nothing edited or deleted
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "c 当天请假" in html and "参加人员（2 人）" in html and "-1.5" in html


def test_removing_without_a_reason_is_refused_and_changes_nothing(client, recorded):
    meeting, (a, b, c) = recorded
    response = post_edit(client, meeting.id, [a, b], reason=" ")
    assert response.status_code == 400
    assert "请填写更正原因。" in response.get_data(as_text=True)
    assert entry_count() == 3 and total(c) == Decimal("1.50")


def test_the_same_removal_sent_twice_reverses_once(client, recorded):
    meeting, (a, b, c) = recorded
    post_edit(client, meeting.id, [a, b], reason="请假")
    post_edit(client, meeting.id, [a, b], reason="请假")
    assert amounts(c) == [(Decimal("1.50"), "offline"), (Decimal("-1.50"), "reversal")]
    assert entry_count() == 4


def test_adding_an_attendee_later_credits_them(app, client, tree, recorded):
    meeting, (a, b, c) = recorded
    late = make_user(tree["branch_a1"])
    assert post_edit(client, meeting.id, [a, b, c, late]).status_code == 302
    assert amounts(late) == [(Decimal("1.50"), "offline")]
    assert entry_count() == 4
    assert post_edit(client, meeting.id, [a, b, c, late]).status_code == 302  # sent again: no change
    assert entry_count() == 4


def test_adding_back_someone_removed_credits_them_again(client, recorded):
    meeting, (a, b, c) = recorded
    post_edit(client, meeting.id, [a, b], reason="点错了")
    assert post_edit(client, meeting.id, [a, b, c]).status_code == 302
    assert amounts(c) == [
        (Decimal("1.50"), "offline"),
        (Decimal("-1.50"), "reversal"),
        (Decimal("1.50"), "offline"),
    ]
    assert total(c) == Decimal("1.50")
    keys = [e.ref_key for e in ledger(c) if e.source == "offline"]
    assert keys == [f"offline:{meeting.id}:{c.id}:0", f"offline:{meeting.id}:{c.id}:1"]


def test_changing_the_hours_reverses_and_credits_again(client, recorded):
    meeting, people = recorded
    assert post_edit(client, meeting.id, people, hours="2", reason="实际两小时").status_code == 302
    for person in people:
        assert amounts(person) == [
            (Decimal("1.50"), "offline"),
            (Decimal("-1.50"), "reversal"),
            (Decimal("2.00"), "offline"),
        ]
        assert total(person) == Decimal("2.00")
    db.session.remove()
    assert db.session.get(Meeting, meeting.id).hours == Decimal("2.00")


def test_changing_the_hours_needs_a_reason(client, recorded):
    meeting, people = recorded
    response = post_edit(client, meeting.id, people, hours="2", reason="")
    assert response.status_code == 400 and "请填写更正原因。" in response.get_data(as_text=True)
    assert entry_count() == 3
    db.session.remove()
    assert db.session.get(Meeting, meeting.id).hours == Decimal("1.50")


def test_editing_only_the_topic_touches_no_credit(client, recorded):
    meeting, people = recorded
    assert post_edit(client, meeting.id, people, topic="学习新党章").status_code == 302
    assert entry_count() == 3
    assert only_meeting().topic == "学习新党章"


def test_bad_hours_on_edit_changes_nothing(client, recorded):
    meeting, people = recorded
    assert post_edit(client, meeting.id, people[:1], hours="NaN", reason="x").status_code == 400
    assert entry_count() == 3
    assert [total(p) for p in people] == [Decimal("1.50")] * 3


def test_removing_everybody_is_refused(client, recorded):
    meeting, people = recorded
    response = post_edit(client, meeting.id, [], reason="x")
    assert response.status_code == 400 and "撤销" in response.get_data(as_text=True)
    assert entry_count() == 3


def test_cancelling_reverses_every_credit_with_the_reason(client, recorded):
    meeting, people = recorded
    token = form_tokens(client, f"/meetings/{meeting.id}/edit")["csrf_token"]
    response = client.post(f"/meetings/{meeting.id}/cancel", data={"csrf_token": token, "reason": "重复登记"})
    assert response.status_code == 302
    for person in people:
        assert amounts(person) == [(Decimal("1.50"), "offline"), (Decimal("-1.50"), "reversal")]
        assert ledger(person)[1].reason == "重复登记"
        assert total(person) == 0
    after = only_meeting()
    assert after.cancelled_at is not None and after.cancel_reason == "重复登记"
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "已撤销" in html and "重复登记" in html
    # Once cancelled: no second cancel, no edit.
    again = client.post(f"/meetings/{meeting.id}/cancel", data={"csrf_token": token, "reason": "再撤"})
    assert again.status_code == 400
    assert client.get(f"/meetings/{meeting.id}/edit").status_code == 302  # back to the meeting page
    edit = {"csrf_token": token, "kind": "lecture", "held_on": YESTERDAY, "topic": "改", "hours": "3"}
    edit.update(reason="x", attendees=[str(p.id) for p in people])
    response = client.post(f"/meetings/{meeting.id}/edit", data=edit)
    assert response.status_code == 400 and "已撤销，不能再修改" in response.get_data(as_text=True)
    assert entry_count() == 6
    assert only_meeting().hours == Decimal("1.50")


def test_cancelling_without_a_reason_is_refused(client, recorded):
    meeting, people = recorded
    token = form_tokens(client, f"/meetings/{meeting.id}")["csrf_token"]
    response = client.post(f"/meetings/{meeting.id}/cancel", data={"csrf_token": token, "reason": ""})
    assert response.status_code == 400
    assert only_meeting().cancelled_at is None and entry_count() == 3


def test_offline_total_for_the_year_follows_the_corrections(app, client, recorded):
    meeting, (a, b, c) = recorded
    post_edit(client, meeting.id, [a, b], hours="3", reason="改")
    with app.app_context():
        year = credits.study_year()
        assert credits.year_total(a.id, year, source="offline") == Decimal("3.00")
        assert credits.year_total(c.id, year, source="offline") == 0


# The service on its own (no HTTP): the same rules for any caller.


def test_service_refuses_an_organizer_outside_the_meetings_subtree(app, tree):
    with app.app_context():
        person = make_user(tree["branch_a1"])
        outsider = make_organizer(tree["district_b"])
        data = service.MeetingInput(
            kind="lecture", held_on=YESTERDAY, topic="党课", hours="1", attendee_ids=[str(person.id)]
        )
        with pytest.raises(Forbidden):
            service.record_meeting(
                outsider, tree["branch_a1"].id, data, token="t", on=service.today(), config=app.config
            )
        db.session.rollback()
        organizer = make_organizer(tree["district_a"])
        meeting = service.record_meeting(
            organizer, tree["branch_a1"].id, data, token="t", on=service.today(), config=app.config
        )
        db.session.commit()
        with pytest.raises(Forbidden):
            service.cancel_meeting(outsider, meeting, "x")
        with pytest.raises(Forbidden):
            service.update_meeting(outsider, meeting, data, on=service.today(), config=app.config)
        with pytest.raises(Invalid):
            service.cancel_meeting(organizer, meeting, "")
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(CreditEntry.id))) == 1


def test_history_lists_credits_and_reversals_in_order(app, client, recorded):
    meeting, (a, b, c) = recorded
    post_edit(client, meeting.id, [a, b], reason="请假")
    with app.app_context():
        lines = service.history(db.session.get(Meeting, meeting.id))
        assert [(line.member, line.entry.amount) for line in lines][-1] == (c.display_name, Decimal("-1.50"))
        assert len(lines) == 4


def test_a_roster_too_large_to_list_still_shows_those_present_for_correction(client, recorded, monkeypatch):
    meeting, (a, b, c) = recorded
    monkeypatch.setattr(service, "ROSTER_MAX", 2)
    html = client.get(f"/meetings/new?org_id={meeting.org_id}").get_data(as_text=True)
    assert "无法在此逐一列出" in html and 'name="attendees"' not in html
    html = client.get(f"/meetings/{meeting.id}/edit").get_data(as_text=True)
    assert "无法在此逐一列出" in html and html.count('name="attendees"') == 3
    assert post_edit(client, meeting.id, [a, b], reason="请假").status_code == 302
    assert total(c) == 0


def test_two_organizers_adding_the_same_member_at_once_credit_them_once(app, client, recorded, tree):
    import threading

    meeting, people = recorded
    newcomer = make_user(tree["branch_a1"])
    boss = make_organizer(tree["district_a"], phone="13800000009")
    ticked = [str(p.id) for p in [*people, newcomer]]
    errors = []

    def add():
        try:
            with app.test_request_context():
                fresh = db.session.get(Meeting, meeting.id)
                data = service.MeetingInput(
                    kind=fresh.kind,
                    held_on=fresh.held_on.isoformat(),
                    topic=fresh.topic,
                    lecturer=fresh.lecturer,
                    hours=str(fresh.hours),
                    attendee_ids=ticked,
                )
                service.update_meeting(
                    db.session.get(type(boss), boss.id), fresh, data, on=fresh.held_on, config=app.config
                )
                db.session.commit()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            db.session.remove()

    threads = [threading.Thread(target=add) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert amounts(newcomer) == [(Decimal("1.50"), "offline")]
