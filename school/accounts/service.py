"""Accounts: creating users, signing in with throttling, passwords, preferences, API tokens."""

import functools
import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import orm
from werkzeug.security import check_password_hash, generate_password_hash

from school import db
from school.accounts.models import ApiToken, LoginThrottle, RoleGrant, User
from school.errors import Invalid, Throttled, Unauthorized

PHONE = re.compile(r"^1[3-9]\d{9}$")
USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
LANGUAGES = ("zh_CN", "en")
# Checked against when no account matches, so an unknown login costs the same time as a real one.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


def normalize_phone(text: str | None) -> str | None:
    """A mainland mobile number from what people type (spaces, dashes, +86), or None."""
    digits = re.sub(r"[\s\-()]", "", text or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits if PHONE.match(digits) else None


def normalize_username(text: str | None) -> str | None:
    """A lower-case username, or None when it is not a valid one."""
    name = (text or "").strip().lower()
    return name if USERNAME.match(name) else None


def find_by_login(login: str) -> User | None:
    """The user whose phone or username is login."""
    phone = normalize_phone(login)
    if phone:
        user = db.session.scalar(sa.select(User).where(User.phone == phone))
        if user:
            return user
    name = (login or "").strip().lower()
    if not name:
        return None
    return db.session.scalar(sa.select(User).where(User.username == name))


def check_password_rules(password: str, user: User | None = None) -> None:
    """Refuse passwords that are short or equal to the account's own phone or username."""
    if len(password) < 8:
        raise Invalid(_("The password must have at least 8 characters."))
    if len(password) > 128:
        raise Invalid(_("The password may have at most 128 characters."))
    if password.isdigit() and len(set(password)) <= 2:
        raise Invalid(_("This password is too easy to guess."))
    if user is not None and password.lower() in {(user.phone or ""), (user.username or "")}:
        raise Invalid(_("The password must not be your phone number or username."))


def hash_password(password: str) -> str:
    """scrypt hash (Werkzeug's default)."""
    return generate_password_hash(password, method="scrypt")


def create_user(
    display_name: str,
    password: str,
    *,
    phone: str | None = None,
    username: str | None = None,
    roles: list[tuple[str, int | None]] = (),
    home_org_id: int | None = None,
    must_change_password: bool = True,
    **fields,
) -> User:
    """Add a user with roles [(role, org_id)]; validates logins and uniqueness."""
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 64:
        raise Invalid(_("A name of 1 to 64 characters is needed."))
    norm_phone = normalize_phone(phone) if phone else None
    if phone and not norm_phone:
        raise Invalid(_("%(phone)s is not a valid mobile number.", phone=phone))
    norm_name = normalize_username(username) if username else None
    if username and not norm_name:
        raise Invalid(_("A username has 3 to 32 letters, digits, dots, dashes or underscores."))
    if not (norm_phone or norm_name):
        raise Invalid(_("A phone number or a username is needed to sign in."))
    for column, value in ((User.phone, norm_phone), (User.username, norm_name)):
        if value and db.session.scalar(sa.select(User.id).where(column == value)):
            raise Invalid(_("%(login)s is already used by another account.", login=value))
    user = User(
        display_name=display_name,
        phone=norm_phone,
        username=norm_name,
        password_hash=hash_password(password),
        home_org_id=home_org_id,
        must_change_password=must_change_password,
        **fields,
    )
    user.grants = [RoleGrant(role=role, org_id=org_id) for role, org_id in roles]
    db.session.add(user)
    db.session.flush()
    return user


# --- signing in -------------------------------------------------------------------------


def _throttle_keys(login: str, address: str) -> list[tuple[str, str]]:
    account = normalize_phone(login) or (login or "").strip().lower()[:100]
    return [("account:" + account, "ACCOUNT"), ("address:" + (address or "?"), "ADDRESS")]


def _check_not_locked(keys: list[tuple[str, str]], now: datetime) -> None:
    rows = db.session.scalars(sa.select(LoginThrottle).where(LoginThrottle.key.in_([k for k, _ in keys])))
    until = max((r.locked_until for r in rows if r.locked_until and r.locked_until > now), default=None)
    if until is not None:
        wait = max(1, math.ceil((until - now).total_seconds() / 60))
        raise Throttled(
            _(
                "Too many failed sign-ins. Please try again after %(time)s (in about %(minutes)d minutes).",
                time=format_datetime(until, "HH:mm"),
                minutes=wait,
            ),
            retry_after=int((until - now).total_seconds()) + 1,
        )


def _record_failure(keys: list[tuple[str, str]], now: datetime, config: dict) -> None:
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    lockout = timedelta(seconds=config["LOGIN_LOCKOUT_SECONDS"])
    for key, kind in keys:
        db.insert_ignoring_conflicts(
            LoginThrottle.__table__, {"key": key, "failures": 0, "window_start": now}
        )
        row = db.session.scalar(sa.select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
        if row.window_start + window < now:
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= config[f"LOGIN_MAX_FAILURES_{kind}"]:
            row.locked_until = now + lockout
            row.failures, row.window_start = 0, now


class SecondFactorNeeded(Unauthorized):
    """The password was right, but the account also needs its authenticator-app code."""

    code = "two_factor_required"

    def __init__(self, user: User):
        super().__init__(_("Enter the 6-digit code from your authenticator app."))
        self.user = user


def _user_throttle_keys(user: User, address: str) -> list[tuple[str, str]]:
    # Every login of the account, so that phone and username share one count of code failures.
    logins = [login for login in (user.phone, user.username) if login]
    keys = [("account:" + login, "ACCOUNT") for login in logins]
    return [*keys, ("address:" + (address or "?"), "ADDRESS")]


def finish_sign_in(user: User, address: str, now: datetime) -> None:
    """Record a complete sign-in: the account's failure count starts again."""
    accounts = [key for key, kind in _user_throttle_keys(user, address) if kind == "ACCOUNT"]
    db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key.in_(accounts)))
    user.last_sign_in_at = now


def authenticate(
    login: str, password: str, address: str, now: datetime, config: dict, code: str | None = None
) -> User:
    """The user for login/password, or Unauthorized (one message for every failure) / Throttled.

    Accounts with two-factor sign-in also need `code` (authenticator or recovery code); without it
    SecondFactorNeeded is raised, and nothing is cleared until the code has been checked.
    """
    keys = _throttle_keys(login, address)
    _check_not_locked(keys, now)
    user = find_by_login(login)
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not (ok and user and user.active):
        _record_failure(keys, now, config)
        db.session.commit()  # the failure must count even though the request fails
        raise Unauthorized(_("The phone number, username or password is not correct."))
    from school.accounts import two_factor  # built on this module's throttling

    if two_factor.is_enabled(user):
        if code is None:
            raise SecondFactorNeeded(user)
        two_factor.check_code(user, code, address, now, config)
    finish_sign_in(user, address, now)
    return user


def purge_throttle(now: datetime, config: dict) -> int:
    """Forget throttle rows whose window and lock-out are over."""
    stale = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"] + config["LOGIN_LOCKOUT_SECONDS"])
    result = db.session.execute(
        sa.delete(LoginThrottle).where(
            LoginThrottle.window_start < stale,
            sa.or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        )
    )
    return result.rowcount or 0


@functools.cache
def _session_user_stmt() -> sa.Select:
    # Built once (on first use, when all models are mapped): this runs on every signed-in
    # request, and building the statement costs as much as running it. One round trip brings
    # the user, home branch and roles.
    return (
        sa.select(User)
        .options(orm.joinedload(User.grants))
        .where(
            User.id == sa.bindparam("user_id"),
            User.session_version == sa.bindparam("version"),
            User.active.is_(True),
        )
    )


def user_for_session(session_id: str) -> User | None:
    """The user a Flask-Login id "user:version" stands for, while that session is still valid."""
    user_id, _sep, version = (session_id or "").partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    params = {"user_id": int(user_id), "version": int(version)}
    return db.session.scalars(_session_user_stmt(), params).unique().one_or_none()


# --- the signed-in user's own account ---------------------------------------------------


def change_password(user: User, current: str, new: str, confirm: str) -> None:
    """Set a new password after checking the current one; ends all other sessions."""
    if not check_password_hash(user.password_hash, current or ""):
        raise Invalid(_("The current password is not correct."))
    if new != confirm:
        raise Invalid(_("The two new passwords differ."))
    if new == current:
        raise Invalid(_("The new password must differ from the current one."))
    check_password_rules(new, user)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.session_version += 1


def sign_out_everywhere(user: User) -> None:
    """End every session of this user, on every device, at its next request."""
    user.session_version += 1


def set_preferences(user: User, language: str | None, large_text: bool) -> None:
    """Save language (None: follow the browser) and large-text mode."""
    if language not in (None, "", *LANGUAGES):
        raise Invalid(_("Unknown language."))
    user.language = language or None
    user.large_text = bool(large_text)


def set_active(user: User, active: bool) -> None:
    """Activate or deactivate; deactivation ends the user's sessions and tokens' use at once."""
    user.active = active
    if not active:
        user.session_version += 1


# --- personal access tokens ---------------------------------------------------------------


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for scripts; the raw value is returned once and never stored."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise Invalid(_("Give the token a name of 1 to 64 characters."))
    raw = "dx_" + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(raw), prefix=raw[:10])
    db.session.add(token)
    db.session.flush()
    return token, raw


def user_for_token(raw: str, now: datetime) -> User | None:
    """The active user a bearer token belongs to, or None."""
    if not raw or len(raw) > 200:
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _token_hash(raw)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # coarse, so that reads do not write on every call
    return token.user


def revoke_token(user: User, token_id: int, now: datetime) -> None:
    """Revoke one of the user's own tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise Invalid(_("No such token."))
    token.revoked_at = now


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens that are not revoked, newest first."""
    stmt = (
        sa.select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id.desc())
    )
    return list(db.session.scalars(stmt))
