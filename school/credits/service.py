"""Writing and reading the 学时 ledger."""

import uuid
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from school import db
from school.audit import service as audit
from school.credits.models import CreditEntry
from school.errors import Invalid

CENT = Decimal("0.01")


def local_now() -> datetime:
    """Now in the site's time zone (the study year and "today" follow local calendars)."""
    return datetime.now(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))


def study_year() -> int:
    return local_now().year


def credit_once(
    user_id: int, amount, source: str, ref_key: str, title: str = "", year: int | None = None
) -> bool:
    """Write a credit for `ref_key` unless the user already has one; True when written.

    `year`: the study year it counts for when that is not this year (a meeting held in December
    and recorded in January counts for December's year).

    Safe against two processes crediting the same thing at once: the unique (user, ref_key)
    constraint keeps one, the other insert is ignored.
    """
    amount = Decimal(str(amount)).quantize(CENT)
    if amount <= 0:
        return False
    before = db.session.execute(
        sa.select(sa.func.count()).where(CreditEntry.user_id == user_id, CreditEntry.ref_key == ref_key)
    ).scalar_one()
    if before:
        return False
    db.insert_ignoring_conflicts(
        CreditEntry.__table__,
        {
            "user_id": user_id,
            "year": year or study_year(),
            "amount": amount,
            "source": source,
            "ref_key": ref_key,
            "title": title[:200],
            "reason": "",
            "created_at": db.utcnow(),
        },
    )
    return True


def reverse(entry: CreditEntry, by_user, reason: str, logged: bool = True) -> CreditEntry:
    """Cancel an entry with a reversing entry of the opposite amount (same year); once only.

    `logged=False`: the caller writes one audit entry for many reversals (a meeting correction)."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Give a reason for the correction."))
    if entry.source == "reversal":
        raise Invalid(_("A correction cannot itself be reversed; make an adjustment instead."))
    key = f"reversal:{entry.id}"
    exists = db.session.execute(
        sa.select(CreditEntry.id).where(CreditEntry.user_id == entry.user_id, CreditEntry.ref_key == key)
    ).first()
    if exists:
        raise Invalid(_("This entry has already been reversed."))
    row = CreditEntry(
        user_id=entry.user_id,
        year=entry.year,
        amount=-entry.amount,
        source="reversal",
        ref_key=key,
        title=entry.title,
        reason=reason[:2000],
        created_by_id=by_user.id,
        reverses_id=entry.id,
    )
    db.session.add(row)
    db.session.flush()
    if logged:
        audit.record_for_member(
            "credit.reverse",
            entry.user_id,
            details={"entry": entry.id, "amount": row.amount, "title": entry.title, "reason": row.reason},
            actor=by_user,
        )
    return row


def adjust(user_id: int, amount, reason: str, by_user, year: int | None = None) -> CreditEntry:
    """A manual adjustment (positive or negative) with its reason and who made it."""
    try:
        value = Decimal(str(amount).strip()).quantize(CENT)
    except (ArithmeticError, ValueError):
        raise Invalid(_("The amount must be a number of study hours.")) from None
    if not value.is_finite():
        raise Invalid(_("The amount must be a number of study hours."))
    if value == 0 or abs(value) > 100:
        raise Invalid(_("The amount must be between -100 and 100 study hours, and not zero."))
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Give a reason for the adjustment."))
    row = CreditEntry(
        user_id=user_id,
        year=year or study_year(),
        amount=value,
        source="manual",
        ref_key=f"manual:{uuid.uuid4().hex}",
        title="",
        reason=reason[:2000],
        created_by_id=by_user.id,
    )
    db.session.add(row)
    db.session.flush()
    audit.record_for_member(
        "credit.adjust",
        user_id,
        details={"entry": row.id, "amount": value, "year": row.year, "reason": row.reason},
        actor=by_user,
    )
    return row


def year_total(user_id: int, year: int, source: str | None = None) -> Decimal:
    """Sum of a user's entries for a year (reversals included, so cancelled credit counts 0)."""
    stmt = sa.select(sa.func.coalesce(sa.func.sum(CreditEntry.amount), 0)).where(
        CreditEntry.user_id == user_id, CreditEntry.year == year
    )
    if source is not None:
        reversed_ids = sa.select(CreditEntry.id).where(CreditEntry.source == source)
        stmt = stmt.where(
            sa.or_(
                CreditEntry.source == source,
                sa.and_(CreditEntry.source == "reversal", CreditEntry.reverses_id.in_(reversed_ids)),
            )
        )
    return Decimal(db.session.execute(stmt).scalar_one()).quantize(CENT)


def entries(user_id: int, year: int) -> list[CreditEntry]:
    """A user's ledger for a year, newest first."""
    return list(
        db.session.scalars(
            sa.select(CreditEntry)
            .where(CreditEntry.user_id == user_id, CreditEntry.year == year)
            .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc())
        )
    )


def years(user_id: int) -> list[int]:
    """Years in which the user has ledger entries, newest first (this year always included)."""
    found = set(
        db.session.scalars(sa.select(CreditEntry.year).where(CreditEntry.user_id == user_id).distinct())
    )
    found.add(study_year())
    return sorted(found, reverse=True)


def quota_for(user) -> Decimal:
    """Yearly 学时 quota: branch secretaries and committee members (organizers) have the larger one."""
    config = current_app.config
    if user.has_role("organizer"):
        return Decimal(config["QUOTA_HOURS_ORGANIZER"])
    return Decimal(config["QUOTA_HOURS"])
