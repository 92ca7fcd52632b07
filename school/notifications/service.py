"""Sending notifications: stored in the app once per (user, key), then handed to the sender.

The sender is chosen by the NOTIFY_SENDER setting: "log" (the default) writes a log line; a dotted
"package.module:ClassName" names any class with `deliver(user, notification)`, so SMS or WeChat
delivery can be added without touching the callers.
"""

import importlib
import logging
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from school import db
from school.notifications.models import Notification

log = logging.getLogger(__name__)


class Sender:
    """Delivers a stored notification outside the app (SMS, WeChat, …)."""

    def deliver(self, user, notification: Notification) -> None:
        raise NotImplementedError


class LogSender(Sender):
    """Default: a log line per notification (the in-app list is the real delivery)."""

    def deliver(self, user, notification: Notification) -> None:
        log.info(
            "notify user=%s kind=%s key=%s: %s",
            user.id,
            notification.kind,
            notification.key,
            notification.title,
        )


SENDERS = {"log": LogSender}


def get_sender(name: str | None = None) -> Sender:
    """The configured sender: a name in SENDERS or "module:Class"."""
    name = name or current_app.config.get("NOTIFY_SENDER") or "log"
    if name in SENDERS:
        return SENDERS[name]()
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)()


def send(
    user, kind: str, title: str, body: str = "", url: str = "", key: str | None = None
) -> Notification | None:
    """Store a notification for user and deliver it, unless one with this key was sent already.

    Returns the new notification, or None when it had been sent before.
    """
    key = key or f"{kind}:{db.utcnow().isoformat()}"
    exists = db.session.scalar(
        sa.select(Notification.id).where(Notification.user_id == user.id, Notification.key == key)
    )
    if exists is not None:
        return None
    # Links stay inside the site: the list renders `href="{{ n.url }}"`, and escaping does not make a
    # "javascript:" (or an off-site "//host") href safe, whatever a future caller passes in.
    if url and (not url.startswith("/") or url.startswith(("//", "/\\"))):
        url = ""
    notification = Notification(user_id=user.id, kind=kind, title=title[:200], body=body, url=url, key=key)
    try:
        with db.session.begin_nested():  # a concurrent run may have sent it meanwhile
            db.session.add(notification)
    except IntegrityError:
        return None
    try:
        get_sender().deliver(user, notification)
    except Exception:  # an SMS gateway being down must not lose the in-app copy or stop the batch
        log.exception("notification %s to user %s not delivered", key, user.id)
    return notification


def unread_count(user_id: int) -> int:
    """Unread notifications of a user (the top-bar badge)."""
    stmt = sa.select(sa.func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return db.session.scalar(stmt) or 0


def notifications_stmt(user_id: int) -> sa.Select:
    """A user's notifications, newest first."""
    return (
        sa.select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )


def mark_read(user_id: int, ids: list[int], now: datetime) -> int:
    """Mark these (or, with ids empty, all) unread notifications of the user read; returns how many."""
    stmt = sa.update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids:
        stmt = stmt.where(Notification.id.in_(ids))
    result = db.session.execute(stmt.values(read_at=now), execution_options={"synchronize_session": False})
    return result.rowcount or 0
