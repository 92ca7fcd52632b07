"""Two-factor sign-in: an authenticator-app code (TOTP, RFC 6238) after the password, with
single-use recovery codes for a lost phone, and a setting that requires it per role."""

import calendar
import hashlib
import hmac
import re
import secrets
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa
from flask_babel import gettext as _

from school import db
from school.accounts import service
from school.accounts.models import RecoveryCode, TwoFactor, User
from school.audit import service as audit
from school.errors import Conflict, Forbidden, Invalid, Unauthorized

# Roles that may turn two-factor on for themselves (besides any role the setting requires).
ENROL_ROLES = frozenset({"organizer", "admin"})
RECOVERY_CODE_COUNT = 10
# 31 letters and digits without look-alikes (0/o, 1/l/i); 10 of them are about 50 bits.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
# A password-checked sign-in waits this long for its code.
PENDING_SECONDS = 5 * 60
TOTP_DIGITS = re.compile(r"^\d{6}$")


# --- who needs it ---------------------------------------------------------------------------


def required_roles(config: dict) -> frozenset[str]:
    """The roles MFA_REQUIRED_ROLES lists ("admin,organizer")."""
    return frozenset(r.strip() for r in (config.get("MFA_REQUIRED_ROLES") or "").split(",") if r.strip())


def is_required(user: User, config: dict) -> bool:
    """Whether one of the user's roles must sign in with two factors."""
    return bool(user.roles & required_roles(config))


def may_enrol(user: User, config: dict) -> bool:
    """Organizers and admins may turn two-factor on, and anyone whose role requires it."""
    return bool(user.roles & ENROL_ROLES) or is_required(user, config)


def get(user: User) -> TwoFactor | None:
    """The user's two-factor row (enabled or waiting for its first code), if any."""
    return db.session.get(TwoFactor, user.id)


def is_enabled(user: User) -> bool:
    """Whether signing in as the user needs a code."""
    row = get(user)
    return row is not None and row.enabled_at is not None


def must_enrol(user: User, config: dict) -> bool:
    """Whether the user has to set two-factor up before using the site."""
    return is_required(user, config) and not is_enabled(user)


def recovery_codes_left(user: User) -> int:
    """How many unused recovery codes the user has."""
    stmt = sa.select(sa.func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    return db.session.scalar(stmt) or 0


# --- enrolment ----------------------------------------------------------------------------


def start_enrolment(user: User, config: dict) -> TwoFactor:
    """A fresh secret waiting for its first code (replacing one not yet confirmed)."""
    if not may_enrol(user, config):
        raise Forbidden()
    row = get(user)
    if row is not None and row.enabled_at is not None:
        raise Conflict(_("Two-factor sign-in is already on."))
    if row is None:
        row = TwoFactor(user_id=user.id)
        db.session.add(row)
    row.secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
    row.last_step = None
    db.session.flush()
    return row


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(
        name=user.username or user.phone or str(user.id), issuer_name=_("Mobile Party School")
    )


def qr_data_uri(text: str) -> str:
    """An SVG QR code as a data: URI (the CSP allows data: images, no script needed)."""
    return segno.make(text, error="m").svg_data_uri(scale=5, border=2)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm_enrolment(user: User, code: str, now: datetime) -> list[str]:
    """Turn two-factor on once the app's first code matches; returns the new recovery codes."""
    row = get(user)
    if row is None or row.enabled_at is not None:
        raise Invalid(_("Start the set-up again."))
    if not _use_totp(row, normalize(code), now):
        raise Invalid(_("The code is not correct. Check the time on your phone and try the newest code."))
    row.enabled_at = now
    audit.record("two_factor.enable", org_id=user.home_org_id, target=user, actor=user)
    return _new_recovery_codes(user)


# --- checking codes -----------------------------------------------------------------------


def normalize(code: str | None) -> str:
    """What people type, without spaces or dashes, lower case."""
    return re.sub(r"[\s\-]", "", code or "").lower()[:64]


def _seconds(now: datetime) -> int:
    return calendar.timegm(now.utctimetuple())  # now is naive UTC (db.utcnow)


def _step(now: datetime) -> int:
    return _seconds(now) // 30


def _use_totp(row: TwoFactor, code: str, now: datetime) -> bool:
    """Accept a code of the current 30-second step or one either side (valid_window=1), once."""
    if not TOTP_DIGITS.match(code):
        return False
    totp = pyotp.TOTP(row.secret)
    current = _step(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            # One conditional UPDATE: of two requests racing with the same code only one wins.
            result = db.session.execute(
                sa.update(TwoFactor)
                .where(
                    TwoFactor.user_id == row.user_id,
                    sa.or_(TwoFactor.last_step.is_(None), TwoFactor.last_step < step),
                )
                .values(last_step=step)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                row.last_step = step
                return True
            return False
    return False


def _hash_recovery(code: str, salt: str) -> str:
    return salt + "$" + hashlib.sha256((salt + code).encode()).hexdigest()


def _use_recovery_code(user: User, code: str, now: datetime) -> bool:
    if len(code) != RECOVERY_LENGTH:
        return False
    unused = db.session.scalars(
        sa.select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    for row in unused:
        salt = row.code_hash.partition("$")[0]
        if hmac.compare_digest(_hash_recovery(code, salt), row.code_hash):
            result = db.session.execute(
                sa.update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            row.used_at = now
            return result.rowcount == 1
    return False


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _i in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _j in range(RECOVERY_LENGTH))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_recovery(raw, secrets.token_hex(8))))
        codes.append(raw[:5] + "-" + raw[5:])
    db.session.flush()
    return codes


def verify(user: User, code: str, now: datetime) -> bool:
    """Whether code is a fresh authenticator code or an unused recovery code (then used up)."""
    row = get(user)
    if row is None or row.enabled_at is None:
        return False
    code = normalize(code)
    if TOTP_DIGITS.match(code):
        return _use_totp(row, code, now)
    return _use_recovery_code(user, code, now)


def check_code(user: User, code: str, address: str, now: datetime, config: dict) -> None:
    """Accept a code or raise Unauthorized/Throttled; wrong codes count as failed sign-ins."""
    keys = service._user_throttle_keys(user, address)
    service._check_not_locked(keys, now)
    if not verify(user, code, now):
        service._record_failure(keys, now, config)
        db.session.commit()  # the failure must count even though the request fails
        raise Unauthorized(_("The code is not correct."))


def pending_sign_in(user: User, next_url: str | None, now: datetime) -> dict:
    """What the session keeps between the password and the code (no one is signed in yet)."""
    return {"user": user.id, "version": user.session_version, "at": _seconds(now), "next": next_url}


def pending_is_fresh(pending, now: datetime) -> bool:
    """Whether a pending sign-in is well-formed and younger than PENDING_SECONDS."""
    if not isinstance(pending, dict) or not all(
        isinstance(pending.get(k), int) for k in ("user", "version", "at")
    ):
        return False
    return 0 <= _seconds(now) - pending["at"] <= PENDING_SECONDS


def complete_sign_in(
    user_id: int, session_version: int, code: str, address: str, now: datetime, config: dict
) -> User:
    """The second step of a sign-in whose password was right: check the code, record the sign-in."""
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != session_version or not is_enabled(user):
        raise Unauthorized(_("Your sign-in has expired. Please sign in again."), code="sign_in_expired")
    check_code(user, code, address, now, config)
    service.finish_sign_in(user, address, now)
    return user


# --- managing it --------------------------------------------------------------------------


def regenerate_recovery_codes(user: User, code: str, address: str, now: datetime, config: dict) -> list[str]:
    """New recovery codes (the old ones stop working), after a current code."""
    if not is_enabled(user):
        raise Invalid(_("Two-factor sign-in is off."))
    check_code(user, code, address, now, config)
    return _new_recovery_codes(user)


def disable(user: User, code: str, address: str, now: datetime, config: dict) -> None:
    """Turn two-factor off after a current code; refused while the user's role requires it."""
    if is_required(user, config):
        raise Forbidden(_("Your role requires two-factor sign-in; it cannot be turned off."))
    if not is_enabled(user):
        raise Invalid(_("Two-factor sign-in is off."))
    check_code(user, code, address, now, config)
    _remove(user)
    audit.record("two_factor.disable", org_id=user.home_org_id, target=user, actor=user)


def reset(member: User, by: User | None) -> bool:
    """Remove someone's two-factor (a lost phone) and end their sessions; False if it was off.

    Who may do it is the caller's check (roster.members.check_may_manage; by is None from the
    CLI). When their role requires two-factor, they set it up again after their next sign-in.
    """
    if get(member) is None:
        return False
    _remove(member)
    member.session_version += 1
    audit.record("two_factor.reset", org_id=member.home_org_id, target=member, actor=by)
    return True


def _remove(user: User) -> None:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(sa.delete(TwoFactor).where(TwoFactor.user_id == user.id))
