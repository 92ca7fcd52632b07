"""Home page per role, the PWA manifest, a health check, and the tabs still to come."""

from flask import Blueprint, current_app, jsonify, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from school import access, db
from school.orgs import service as orgs

bp = Blueprint("system", __name__)


@bp.get("/")
@access.signed_in
def home():
    """The home page: one section per role the user holds."""
    top = orgs.top_orgs(current_user) if access.has_role(current_user, "organizer") else []
    study = member_home(current_user) if current_user.has_role("member") else None
    return render_template(
        "home.html",
        top=[(org, orgs.member_count(org)) for org in top],
        alerts=organizer_alerts(current_user) if top else None,
        study=study,
    )


def organizer_alerts(user) -> dict | None:
    """防瘫预警 on the organizer's home: counts per level and the worst few, or None when calm."""
    from school.warnings import service as warnings

    counts = warnings.counts_by_level(user)
    if not any(counts.values()):
        return None
    worst = db.session.scalars(warnings.warnings_stmt(user).limit(3)).all()
    return {
        "counts": counts,
        "worst": worst,
        "level_names": warnings.LEVEL_NAMES,
        "rule_names": warnings.RULE_NAMES,
    }


def member_home(user) -> dict:
    """What a member's home shows: tasks, lessons to continue, this year's 学时 against the quota."""
    from school.credits import service as credits
    from school.learning.service import continue_where_stopped
    from school.plans.service import plans_for_member

    year = credits.study_year()
    total, quota = credits.year_total(user.id, year), credits.quota_for(user)
    return {
        "plans": plans_for_member(user),
        "resume": continue_where_stopped(user.id, hidden=access.hidden_course_ids(user)),
        "year": year,
        "total": total,
        "quota": quota,
        "share": min(1.0, float(total / quota)) if quota > 0 else 1.0,
    }


@bp.get("/manifest.webmanifest")
@access.public
def manifest():
    """PWA manifest, so members can add the site to their home screen."""
    data = {
        "name": _("Mobile Party School"),
        "short_name": _("Party School"),
        "lang": "zh-CN",
        "start_url": url_for("system.home"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#b71c1c",
        "icons": [
            {
                "src": url_for("static", filename="icons/icon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            },
            {
                "src": url_for("static", filename="icons/icon-maskable.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "maskable",
            },
        ],
    }
    response = jsonify(data)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/healthz")
@access.public
def healthz():
    """Liveness: the process answers (no database, so a database outage restarts nothing)."""
    return jsonify(status="ok")


@bp.get("/readyz")
@access.public
def readyz():
    """Readiness for load balancers: database and job queue (503 naming what fails); the search
    index is reported, and a missing one only makes the status "degraded"."""
    from school.system.health import readiness

    ready, checks = readiness(current_app.config["QUEUE_URL"])
    if not ready:
        return jsonify(status="unavailable", checks=checks), 503
    degraded = not all(check["ok"] for check in checks.values())  # search only
    return jsonify(status="degraded" if degraded else "ok", checks=checks), 200
