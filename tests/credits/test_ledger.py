"""The 学时 ledger: credit written once, corrections as reversing entries, never edits."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from school import db
from school.credits import service as credits
from school.credits.models import CreditEntry
from school.errors import Invalid
from tests.factories import make_admin, make_org, make_organizer, make_user


@pytest.fixture()
def ctx(app):
    with app.app_context():
        yield


def rows(user_id):
    return db.session.scalars(sa.select(CreditEntry).where(CreditEntry.user_id == user_id)).all()


def test_credit_is_written_once_per_thing_studied(ctx):
    member = make_user()
    assert credits.credit_once(member.id, "1.5", "lesson", "lesson:7", "第一课") is True
    assert credits.credit_once(member.id, "1.5", "lesson", "lesson:7", "第一课") is False
    db.session.commit()
    assert [(e.amount, e.source, e.title) for e in rows(member.id)] == [(Decimal("1.50"), "lesson", "第一课")]
    assert credits.year_total(member.id, credits.study_year()) == Decimal("1.50")


def test_the_database_refuses_a_second_entry_for_the_same_thing(ctx):
    # What keeps two processes from crediting twice: the unique (user, ref_key) constraint.
    member = make_user()
    credits.credit_once(member.id, 1, "lesson", "lesson:1")
    db.session.commit()
    db.session.add(CreditEntry(user_id=member.id, year=2026, amount=1, source="lesson", ref_key="lesson:1"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_zero_credit_writes_nothing(ctx):
    member = make_user()
    assert credits.credit_once(member.id, 0, "lesson", "lesson:2") is False
    assert rows(member.id) == []


def test_a_correction_is_a_reversing_entry_and_only_once(ctx):
    member, admin = make_user(), make_admin()
    credits.credit_once(member.id, "2", "lesson", "lesson:3", "第三课")
    db.session.commit()
    (entry,) = rows(member.id)
    with pytest.raises(Invalid):
        credits.reverse(entry, admin, "  ")
    reversal = credits.reverse(entry, admin, "重复计入")
    db.session.commit()
    assert reversal.amount == Decimal("-2.00") and reversal.reverses_id == entry.id
    assert reversal.created_by_id == admin.id and reversal.reason == "重复计入"
    assert credits.year_total(member.id, entry.year) == 0
    assert len(rows(member.id)) == 2  # nothing deleted
    with pytest.raises(Invalid):
        credits.reverse(entry, admin, "再来一次")
    with pytest.raises(Invalid):
        credits.reverse(reversal, admin, "冲销冲销")


@pytest.mark.parametrize("amount", ["abc", "0", "101", "-100.5", "NaN", ""])
def test_adjustments_need_a_sensible_amount(ctx, amount):
    member, admin = make_user(), make_admin()
    with pytest.raises(Invalid):
        credits.adjust(member.id, amount, "线下补录", admin)
    assert rows(member.id) == []


def test_adjustments_need_a_reason_and_record_who_made_them(ctx):
    member, admin = make_user(), make_admin()
    with pytest.raises(Invalid):
        credits.adjust(member.id, "3", "", admin)
    entry = credits.adjust(member.id, "-1.25", "补录有误", admin)
    db.session.commit()
    assert (entry.source, entry.amount, entry.created_by_id) == ("manual", Decimal("-1.25"), admin.id)


def test_year_total_by_source_counts_its_reversals(ctx):
    member, admin = make_user(), make_admin()
    credits.credit_once(member.id, "0.1", "daily_quiz", "daily:2026-11-01")
    credits.credit_once(member.id, "0.1", "daily_quiz", "daily:2026-11-02")
    credits.credit_once(member.id, "1", "lesson", "lesson:9")
    db.session.commit()
    daily = next(e for e in rows(member.id) if e.ref_key == "daily:2026-11-01")
    credits.reverse(daily, admin, "答题异常")
    db.session.commit()
    year = credits.study_year()
    assert credits.year_total(member.id, year, source="daily_quiz") == Decimal("0.10")
    assert credits.year_total(member.id, year) == Decimal("1.10")


def test_quota_is_larger_for_organizers(app, ctx):
    branch = make_org()
    assert credits.quota_for(make_user(org=branch)) == Decimal("32")
    assert credits.quota_for(make_organizer(branch)) == Decimal("56")
    app.config["QUOTA_HOURS"] = "40"
    try:
        assert credits.quota_for(make_user(org=branch)) == Decimal("40")
    finally:
        app.config["QUOTA_HOURS"] = "32"
