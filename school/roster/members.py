"""Member operations for organizers: add, edit, deactivate, transfer, reset a password.

Every function takes the acting user (`by`) and checks scope itself, so the same rules hold for
pages, the API and scripts. Study records and the 学时 ledger are keyed by user id: nothing here
copies or touches them.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts.models import EMPLOYMENTS, STATUSES, User
from school.accounts.service import create_user, hash_password, normalize_phone, set_active
from school.audit import service as audit
from school.errors import Conflict, Forbidden, Invalid, NotFound
from school.orgs.models import Org
from school.orgs.service import in_scope
from school.roster.models import MemberTransfer

NAME_MAX = 64
REASON_MAX = 200
# Temporary passwords are read out or typed on a phone: no look-alike characters (0/O, 1/l/I).
TEMP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMP_LENGTH = 10
MEMBER_FIELDS = ("display_name", "phone", "member_status", "employment", "floating")  # audited edits


@dataclass
class MemberInput:
    name: str = ""
    phone: str = ""
    org_id: int | None = None  # only when adding; moving a member is a transfer
    member_status: str | None = None
    employment: str | None = None
    floating: bool = False


def get_member(by: User, user_id: int) -> User:
    """A member of by's subtree (admins: anyone with a branch); NotFound otherwise, so that ids
    outside the subtree look like ids that do not exist."""
    member = db.session.get(User, user_id)
    if member is None or member.home_org_id is None or not in_scope(by, member.home_org_id):
        raise NotFound()
    return member


def check_may_manage(by: User, member: User) -> None:
    """Refuse changes to oneself, to admins (unless by is one) and to organizers not below by."""
    if member.id == by.id:
        raise Forbidden(_("You cannot do this to your own account here; use your profile instead."))
    if by.has_role("admin"):
        return
    if member.has_role("admin"):
        raise Forbidden(_("Only an administrator may change an administrator's account."))
    for org_id in member.organizer_org_ids:
        # Their grant must lie strictly below one of mine: never a peer or someone above me.
        if org_id in by.organizer_org_ids or not in_scope(by, org_id):
            raise Forbidden(_("You may not change the account of an organizer at or above your level."))


def _branch(by: User, org_id: int | None) -> Org:
    """An open branch in by's subtree, for a member to belong to."""
    org = db.session.get(Org, org_id) if org_id is not None else None
    if org is None:
        raise Invalid(_("Choose a branch."))
    if not in_scope(by, org.id):
        raise Forbidden()
    if not org.is_branch:
        raise Invalid(_("Members belong to a branch; %(name)s is not one.", name=org.name))
    if org.closed_at is not None:
        raise Invalid(_("%(name)s is closed; choose an open branch.", name=org.name))
    return org


def _categories(data: MemberInput) -> dict:
    status = data.member_status or None
    employment = data.employment or None
    if status not in (None, *STATUSES) or employment not in (None, *EMPLOYMENTS):
        raise Invalid(_("Unknown member category."))
    return {"member_status": status, "employment": employment, "floating": bool(data.floating)}


def _name(raw: str) -> str:
    name = (raw or "").strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid(_("A name of 1 to 64 characters is needed."))
    return name


def _phone(raw: str, except_id: int | None = None) -> str:
    phone = normalize_phone(raw)
    if not phone:
        raise Invalid(_("%(phone)s is not a valid mobile number.", phone=(raw or "").strip()[:20]))
    stmt = sa.select(User.id).where(User.phone == phone)
    if except_id is not None:
        stmt = stmt.where(User.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise Invalid(_("%(login)s is already used by another account.", login=phone))
    return phone


def add_member(by: User, data: MemberInput) -> User:
    """A new member of an open branch in by's subtree; they are given a password by reset_password.

    Nobody knows the initial password (as with imports): the organizer resets it to hand it over.
    """
    name = _name(data.name)
    phone = _phone(data.phone)
    branch = _branch(by, data.org_id)
    try:
        member = create_user(
            name,
            secrets.token_urlsafe(32),
            phone=phone,
            roles=[("member", None)],
            home_org_id=branch.id,
            must_change_password=True,
            **_categories(data),
        )
    except sa.exc.IntegrityError as error:  # the phone was taken between the check and the insert
        db.session.rollback()
        raise Conflict(_("%(login)s is already used by another account.", login=phone)) from error
    audit.record("member.create", org_id=branch.id, target=member, details={"phone": phone}, actor=by)
    return member


def update_member(by: User, member: User, data: MemberInput) -> None:
    """Change a member's name, phone and categories (their branch changes only by transfer)."""
    check_may_manage(by, member)
    name = _name(data.name)
    phone = _phone(data.phone, except_id=member.id)
    categories = _categories(data)
    member.display_name = name
    member.phone = phone
    for key, value in categories.items():
        setattr(member, key, value)
    audit.record(
        "member.update",
        org_id=member.home_org_id,
        target=member,
        details=audit.changes(member, MEMBER_FIELDS),
        actor=by,
    )
    try:
        db.session.flush()
    except sa.exc.IntegrityError as error:
        db.session.rollback()
        raise Conflict(_("%(login)s is already used by another account.", login=phone)) from error


def set_member_active(by: User, member: User, active: bool) -> None:
    """Deactivate (signed out at their next request) or reactivate a member."""
    check_may_manage(by, member)
    if member.active == active:
        return
    if active and (member.home_org is None or member.home_org.closed_at is not None):
        raise Invalid(_("Their branch is closed. Transfer them to an open branch first."))
    set_active(member, active)
    audit.record(
        "member.reactivate" if active else "member.deactivate",
        org_id=member.home_org_id,
        target=member,
        actor=by,
    )


def transfer_member(
    by: User, member: User, to_org_id: int | None, reason: str, now: datetime
) -> MemberTransfer:
    """Move a member to another open branch in by's subtree, keeping a history row.

    Their progress and 学时 stay with them (keyed by user); plans follow the new branch from the
    next query on, since plan reach is read from the member's home org at query time.
    """
    check_may_manage(by, member)
    target = _branch(by, to_org_id)
    if target.id == member.home_org_id:
        raise Invalid(_("%(name)s is already in %(org)s.", name=member.display_name, org=target.name))
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise Invalid(_("The reason may have at most 200 characters."))
    source = member.home_org
    row = MemberTransfer(
        user_id=member.id,
        from_org_id=source.id if source else None,
        to_org_id=target.id,
        from_name=source.name if source else "",
        to_name=target.name,
        reason=reason,
        by_user_id=by.id,
        at=now,
    )
    db.session.add(row)
    audit.record(
        "member.transfer",
        org_id=row.from_org_id,
        target=member,
        details={"from": row.from_name, "to": row.to_name, "to_org_id": target.id, "reason": reason},
        actor=by,
    )
    member.home_org_id = target.id
    db.session.flush()
    db.session.refresh(member, ["home_org"])
    return row


def transfers_of(member: User) -> list[MemberTransfer]:
    """A member's transfers, newest first."""
    stmt = (
        sa.select(MemberTransfer)
        .where(MemberTransfer.user_id == member.id)
        .order_by(MemberTransfer.at.desc(), MemberTransfer.id.desc())
    )
    return list(db.session.scalars(stmt))


def reset_password(by: User, member: User) -> str:
    """Give the member a random temporary password, returned once and stored only as a hash.

    They must choose their own at next sign-in, and every session they had ends.
    """
    check_may_manage(by, member)
    password = "".join(secrets.choice(TEMP_ALPHABET) for _i in range(TEMP_LENGTH))
    member.password_hash = hash_password(password)
    member.must_change_password = True
    member.session_version += 1
    audit.record("member.password_reset", org_id=member.home_org_id, target=member, actor=by)
    return password


def may_manage(by: User, member: User) -> bool:
    """Whether check_may_manage lets by change this member (for showing the actions)."""
    try:
        check_may_manage(by, member)
    except Forbidden:
        return False
    return True
