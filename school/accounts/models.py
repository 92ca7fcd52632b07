"""People and how they sign in: users, their roles, API tokens and sign-in throttling."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from school.db import Base, utcnow
from school.orgs.models import Org

ROLES = ("member", "lecturer", "organizer", "admin")
# Member categories: three independent axes organizers filter by.
STATUSES = ("full", "probationary")  # 正式 / 预备
EMPLOYMENTS = ("working", "retired")  # 在职 / 离退休


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(64))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Accounts created by someone else must choose their own password at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=True)
    # Bumped to end every open session of this user (sign out everywhere, password change).
    session_version: Mapped[int] = mapped_column(default=1)
    home_org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id"), index=True)
    member_status: Mapped[str | None] = mapped_column(sa.String(16))
    employment: Mapped[str | None] = mapped_column(sa.String(16))
    floating: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    large_text: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    home_org: Mapped[Org | None] = orm.relationship(Org, lazy="joined")
    grants: Mapped[list["RoleGrant"]] = orm.relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint("username IS NOT NULL OR phone IS NOT NULL", name="has_login"),
        sa.CheckConstraint(f"member_status IS NULL OR member_status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(f"employment IS NULL OR employment IN {EMPLOYMENTS!r}", name="employment"),
    )

    # Flask-Login protocol. The id carries the session version, so bumping the version (or
    # deactivating) makes every cookie issued before it stop working on its next request.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(grant.role for grant in self.grants)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def organizer_org_ids(self) -> list[int]:
        return [g.org_id for g in self.grants if g.role == "organizer" and g.org_id is not None]


class RoleGrant(Base):
    """A role held by a user; organizer grants are scoped to one org node and its subtree."""

    __tablename__ = "role_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(16))
    org_id: Mapped[int | None] = mapped_column(sa.ForeignKey("org.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = orm.relationship(back_populates="grants")
    org: Mapped[Org | None] = orm.relationship(Org, lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("user_id", "role", "org_id", name="uq_role_grant_user_role_org"),
        sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),
        sa.CheckConstraint("role <> 'organizer' OR org_id IS NOT NULL", name="organizer_scoped"),
    )


class ApiToken(Base):
    """A personal access token for scripts; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = orm.relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed sign-ins per key ("account:…" or "address:…"), shared by all workers and machines."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]


class TwoFactor(Base):
    """A user's authenticator-app (TOTP, RFC 6238) secret; enabled once a first code confirmed it.

    The secret is kept in the database in the clear (base32), but no page shows it again once
    two-factor is enabled. Encrypting it with a key derived from SECRET_KEY would tie every enrolment
    to that key (rotating it would lock out everyone) while the key lives on the same web machines
    as the database credentials; so database dumps and backups are to be guarded like the secret key.
    """

    __tablename__ = "two_factor"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(sa.String(64))
    # NULL while enrolment waits for the first code.
    enabled_at: Mapped[datetime | None]
    # The 30-second time step of the last code accepted: a code is good once (no replay).
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A single-use code for signing in without the phone; only a salted SHA-256 is stored."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(128))
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
