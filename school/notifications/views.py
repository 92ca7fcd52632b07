"""The signed-in user's notifications, and the unread count for the top bar."""

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from school import access, db
from school.notifications import service
from school.pagination import page_number, paginate

bp = Blueprint("notifications", __name__)


@bp.app_context_processor
def unread_badge():
    # A function, so the COUNT runs only where the top bar asks for it (signed-in pages).
    return {"unread_notifications": lambda: service.unread_count(current_user.id)}


@bp.get("/notifications")
@access.signed_in
def index():
    """My notifications, newest first; the ones shown are marked read."""
    page = paginate(
        service.notifications_stmt(current_user.id),
        page_number(request.args.get("page")),
        current_app.config["PER_PAGE"],
    )
    unread = [n.id for n in page.items if n.read_at is None]
    if unread:
        with db.writing():
            service.mark_read(current_user.id, unread, db.utcnow())
            db.session.commit()
    return render_template("notifications/index.html", page=page, fresh=set(unread))


@bp.post("/notifications/read")
@access.signed_in
def read_all():
    """Mark all my notifications read."""
    service.mark_read(current_user.id, [], db.utcnow())
    db.session.commit()
    return redirect(url_for("notifications.index"))
