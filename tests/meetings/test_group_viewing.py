"""Group viewing (集体收看): a lesson on a big screen; those present are credited as for an offline lesson."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.media.models import MediaAsset, Rendition
from tests.factories import make_lesson, make_tree, make_user
from tests.meetings.meeting_data import (
    entry_count,
    form_tokens,
    meeting_count,
    only_meeting,
    organizer_client,
    post_meeting,
    total,
)


@pytest.fixture()
def tree():
    return make_tree()


def lesson_with_video(**kw):
    lesson = make_lesson(**kw)
    asset = db.session.get(MediaAsset, lesson.media_id)
    for name, mime in (("360p", "video/mp4"), ("high", "video/mp4"), ("poster", "image/jpeg")):
        db.session.add(Rendition(asset_id=asset.id, name=name, path=f"r/{name}", mime=mime))
    db.session.commit()
    return lesson


def viewing_url(org, lesson) -> str:
    return f"/meetings/group-viewing/new?org_id={org.id}&lesson_id={lesson.id}"


def test_the_page_plays_the_best_rendition_without_the_study_player(app, client, tree):
    lesson = lesson_with_video()
    make_user(tree["branch_a1"], name="老党员甲")
    organizer_client(client, tree["district_a"])
    page = client.get(viewing_url(tree["branch_a1"], lesson))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    high = db.session.scalars(
        sa.select(Rendition).where(Rendition.name == "high", Rendition.asset_id == lesson.media_id)
    ).one()
    assert "<video" in html and f"/r/{high.id}/high.mp4" in html
    assert "player.js" not in html and "data-beat-url" not in html  # no heartbeats for the organizer
    assert "老党员甲" in html and lesson.title in html
    assert 'value="1.5"' in html  # hours default to the lesson's credit


def test_saving_credits_those_present_with_the_lessons_hours(app, client, tree):
    lesson = lesson_with_video(credit="1.5")
    present = [make_user(tree["branch_a1"]) for _ in range(2)]
    absent = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    url = viewing_url(tree["branch_a1"], lesson)
    tokens = form_tokens(client, url)
    fields = {"kind": "", "topic": lesson.title, "hours": "1.5"}
    response = post_meeting(client, tree["branch_a1"].id, present, url=url, tokens=tokens, **fields)
    assert response.status_code == 302
    meeting = only_meeting()
    assert (meeting.kind, meeting.lesson_id, meeting.hours) == ("group_viewing", lesson.id, Decimal("1.50"))
    assert [total(p) for p in present] == [Decimal("1.50")] * 2 and total(absent) == 0
    # The same form again (a double tap on the big screen) credits nobody twice.
    post_meeting(client, tree["branch_a1"].id, present, url=url, tokens=tokens, topic=lesson.title)
    assert meeting_count() == 1 and entry_count() == 2
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "集体收看" in html and lesson.title in html


def test_a_lesson_without_ready_media_can_still_be_recorded(app, client, tree):
    lesson = make_lesson(duration=None, credit="0.5")
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    url = viewing_url(tree["branch_a1"], lesson)
    html = client.get(url).get_data(as_text=True)
    assert "<video" not in html and "暂无可播放" in html
    assert post_meeting(client, tree["branch_a1"].id, [person], url=url, hours="0.5").status_code == 302
    assert total(person) == Decimal("0.50")


def test_an_unpublished_lesson_cannot_be_shown(app, client, tree):
    lesson = make_lesson(state="draft")
    organizer_client(client, tree["district_a"])
    assert client.get(viewing_url(tree["branch_a1"], lesson)).status_code == 404
    assert client.get("/meetings/group-viewing/new?lesson_id=abc").status_code == 404
    assert meeting_count() == 0


def test_without_a_lesson_the_page_offers_published_lessons(app, client, tree):
    lesson = make_lesson()
    draft = make_lesson(state="draft")
    organizer_client(client, tree["district_a"])
    html = client.get("/meetings/group-viewing/new").get_data(as_text=True)
    assert lesson.title in html and draft.title not in html


def test_group_viewing_for_another_district_is_refused(app, client, tree):
    lesson = lesson_with_video()
    person = make_user(tree["branch_b1"])
    organizer_client(client, tree["district_a"])
    tokens = form_tokens(client, viewing_url(tree["branch_a1"], lesson))
    url = viewing_url(tree["branch_b1"], lesson)
    assert client.get(url).status_code == 403
    assert post_meeting(client, tree["branch_b1"].id, [person], url=url, tokens=tokens).status_code == 403
    # Nor can someone of district b be ticked at a district a viewing.
    url = viewing_url(tree["branch_a1"], lesson)
    assert post_meeting(client, tree["branch_a1"].id, [person], url=url, tokens=tokens).status_code == 400
    assert meeting_count() == 0 and entry_count() == 0


def test_bad_hours_for_a_group_viewing_save_nothing(app, client, tree):
    lesson = lesson_with_video()
    person = make_user(tree["branch_a1"])
    organizer_client(client, tree["district_a"])
    url = viewing_url(tree["branch_a1"], lesson)
    for hours in ("0", "99", "NaN"):
        response = post_meeting(client, tree["branch_a1"].id, [person], url=url, hours=hours)
        assert response.status_code == 400 and "<video" in response.get_data(as_text=True)
    assert meeting_count() == 0 and entry_count() == 0
