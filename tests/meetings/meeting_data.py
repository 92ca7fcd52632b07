"""Helpers for the meeting tests: posting the real forms and reading the ledger."""

import re
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from school import db
from school.credits.models import CreditEntry
from school.meetings.models import Meeting
from tests.conftest import csrf_from, sign_in
from tests.factories import make_organizer, make_user

# Machine dates are never ahead of the site's (Asia/Shanghai) day, so yesterday is in range and
# three days on is in the future wherever the tests run.
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()
FUTURE = (date.today() + timedelta(days=3)).isoformat()
TOKEN = re.compile(r'name="token" type="hidden" value="([^"]*)"')


def organizer_client(client, org, phone="13800000001"):
    make_organizer(org, phone=phone, name="组织员")
    sign_in(client, phone)
    return client


def members(org, n: int) -> list:
    return [make_user(org) for _ in range(n)]


def form_tokens(client, url: str) -> dict:
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    match = TOKEN.search(html)
    return {"csrf_token": csrf_from(html), "token": match.group(1) if match else ""}


def post_meeting(client, org_id: int, people=(), url: str | None = None, tokens=None, **fields):
    """Fill in the record form of org_id (or url) and send it; returns the response."""
    url = url or f"/meetings/new?org_id={org_id}"
    data = dict(tokens or form_tokens(client, url))
    data.update(
        {"kind": "lecture", "held_on": YESTERDAY, "topic": "学习党章", "lecturer": "王书记", "hours": "1.5"}
    )
    data["attendees"] = [str(p.id) for p in people]
    data.update(fields)
    return client.post(url, data=data, content_type="multipart/form-data")


def post_edit(client, meeting_id: int, people, **fields):
    url = f"/meetings/{meeting_id}/edit"
    data = form_tokens(client, url)
    meeting = db.session.get(Meeting, meeting_id)
    data.update(
        {
            "kind": meeting.kind,
            "held_on": meeting.held_on.isoformat(),
            "topic": meeting.topic,
            "lecturer": meeting.lecturer,
            "hours": f"{meeting.hours.normalize():f}",
            "attendees": [str(p.id) for p in people],
        }
    )
    data.update(fields)
    db.session.remove()
    return client.post(url, data=data, content_type="multipart/form-data")


def meeting_count() -> int:
    db.session.remove()
    return db.session.scalar(sa.select(sa.func.count(Meeting.id)))


def only_meeting() -> Meeting:
    db.session.remove()
    return db.session.scalars(sa.select(Meeting)).one()


def ledger(user) -> list[CreditEntry]:
    db.session.remove()
    stmt = sa.select(CreditEntry).where(CreditEntry.user_id == user.id).order_by(CreditEntry.id)
    return list(db.session.scalars(stmt))


def total(user) -> Decimal:
    return sum((e.amount for e in ledger(user)), Decimal("0"))


def entry_count() -> int:
    db.session.remove()
    return db.session.scalar(sa.select(sa.func.count(CreditEntry.id)))
