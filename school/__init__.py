"""手机党校: the application factory."""

import hashlib
from datetime import date, timedelta
from pathlib import Path

from flask import Flask, current_app, has_request_context, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import get_translations
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from school import access, db, errors, settings
from school.extensions import babel, csrf, login_manager
from school.models import load_all
from school.system import logs

ROOT = Path(__file__).resolve().parent.parent

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class IdConverter(IntegerConverter):
    """`<int:…>` in URLs, bounded to the 32-bit ids the tables can hold.

    Why: an unbounded int from the path (/orgs/99999999999999999999) reached the database and made
    SQLite raise OverflowError, a 500; such an id cannot exist, so the route does not match (404).
    """

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


class SessionInterface(SecureCookieSessionInterface):
    """Session cookie marked Secure whenever the request came over HTTPS (or always, by setting)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def create_app(overrides: dict | None = None) -> Flask:
    """Build the site: settings, database, extensions, blueprints, errors, commands."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(settings.instance_dir()),
    )
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(settings.load())
    app.config.update(
        SESSION_COOKIE_NAME="dx_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # Tokens live as long as the session: a long lesson video must not expire them.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_CHECK_DEFAULT=False,
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "school" / "translations"),
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(days=365),
        # Re-signing the cookie on every response costs a tenth of a page; it is renewed once a
        # day instead (see renew_session_daily), which keeps the expiry sliding.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.config.update(overrides or {})
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=app.config["SESSION_DAYS"])
    app.session_interface = SessionInterface()
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)

    logs.init_app(app)  # first: every later before_request and error page has the request id
    load_all()
    db.init_app(app)
    configure_login(app)
    configure_babel(app)
    csrf.init_app(app)
    configure_requests(app)
    configure_templates(app)
    register_blueprints(app)
    errors.register(app)
    register_commands(app)
    return app


def configure_login(app: Flask) -> None:
    from school.accounts import service

    login_manager.init_app(app)
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str):
        return service.user_for_session(session_id)

    @login_manager.request_loader
    def load_user_from_token(req):
        header = req.headers.get("Authorization", "")
        if req.path.startswith("/api/") and header.startswith("Bearer "):
            user = service.user_for_token(header[7:].strip(), db.utcnow())
            if user is not None:
                req.environ["school.token_auth"] = True
            return user
        return None


def select_locale() -> str:
    """The user's chosen language, else the browser's best match, else Chinese."""
    if not has_request_context():  # worker and CLI: the site's default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.language:
        return current_user.language
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"], default="zh_CN")
    return "en" if best == "en" else "zh_CN"


def configure_babel(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def bound_gettext():
        # Flask-Babel's template gettext looks the request's catalogue up again for every string;
        # binding it once per page does the same work once (same newstyle semantics: escaped,
        # %-formatted with keyword arguments).
        translations = get_translations()

        @pass_context
        def gettext(context, string, **variables):
            text = translations.ugettext(string)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704 # nosec B704 # our own catalogue; % escapes the values
            return text % variables

        @pass_context
        def ngettext(context, singular, plural, num, **variables):
            variables.setdefault("num", num)
            text = translations.ungettext(singular, plural, num)
            if context.eval_ctx.autoescape:
                text = Markup(text)  # noqa: S704 # nosec B704 # our own catalogue; % escapes the values
            return text % variables

        return {"gettext": gettext, "ngettext": ngettext}


def configure_requests(app: Flask) -> None:
    @app.before_request
    def declare_read_only():
        db.set_read_only(request.method in ("GET", "HEAD", "OPTIONS"))

    @app.before_request
    def renew_session_daily():
        today = date.today().isoformat()
        if session.permanent and session.get("day") != today:
            session["day"] = today  # a modified session is sent again with a fresh expiry

    @app.before_request
    def check_access():
        try:
            access.enforce()
        except errors.Unauthorized:
            if errors.wants_json():
                raise
            return redirect(url_for("accounts.sign_in", next=request.full_path.rstrip("?")))
        return None

    @app.before_request
    def check_csrf():
        # Bearer-token calls carry no cookie, so they cannot be forged cross-site.
        if request.routing_exception is not None:
            return  # no view will run: answer the 404/405, not a misleading csrf_failed
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "csrf_by_session_secret", False):
            return  # its body carries a secret only the member's page has (api/learning.py)
        if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and not request.environ.get(
            "school.token_auth"
        ):
            csrf.protect()

    @app.before_request
    def force_password_change():
        allowed = {"accounts.change_password", "accounts.sign_out", "static", "system.manifest"}
        if (
            current_user.is_authenticated
            and current_user.must_change_password
            and not request.environ.get("school.token_auth")
            and request.endpoint not in allowed
        ):
            if errors.wants_json():
                raise errors.Forbidden(code="password_change_required")
            return redirect(url_for("accounts.change_password"))
        return None

    @app.before_request
    def force_two_factor_setup():
        # Roles in MFA_REQUIRED_ROLES set up two-factor before anything else. Bearer tokens are
        # left alone: they are made on a signed-in page (so after this step) or by the CLI.
        from school.accounts import two_factor

        allowed = {
            "accounts.two_factor_settings",
            "accounts.two_factor_setup",
            "accounts.two_factor_confirm",
            "accounts.change_password",
            "accounts.sign_out",
            "static",
            "system.manifest",
        }
        if (
            current_user.is_authenticated
            and not request.environ.get("school.token_auth")
            and request.endpoint not in allowed
            and two_factor.must_enrol(current_user, app.config)
        ):
            if errors.wants_json():
                raise errors.Forbidden(code="two_factor_setup_required")
            return redirect(url_for("accounts.two_factor_settings"))
        return None

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure:
            # Only over HTTPS (directly, or via a trusted proxy's X-Forwarded-Proto): on plain HTTP
            # browsers ignore it, and a dev site on http:// must not be pinned to HTTPS.
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static" and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"  # pages may show personal data on shared phones
        return response


def configure_templates(app: Flask) -> None:
    versions: dict[str, str] = {}

    def asset(path: str) -> str:
        """URL of a static file with a content hash, so it can be cached for a year."""
        if path not in versions:
            data = (Path(app.static_folder) / path).read_bytes()
            versions[path] = hashlib.sha256(data).hexdigest()[:10]
        return url_for("static", filename=path, v=versions[path])

    from flask_babel import get_locale
    from flask_babel import lazy_gettext as _l

    from school.access import has_role, may_administer_org
    from school.courses.markdown import render as render_markdown
    from school.formatting import clock, hours, human_size, local_time
    from school.media.service import size_limit

    app.jinja_env.globals.update(
        asset=asset,
        has_role=has_role,
        may_administer_org=may_administer_org,
        role_names={
            "member": _l("Member"),
            "lecturer": _l("Lecturer"),
            "organizer": _l("Organizer"),
            "admin": _l("Administrator"),
        },
        status_names={"full": _l("Full member"), "probationary": _l("Probationary")},
        state_names={"draft": _l("Draft"), "published": _l("Published")},
        rendition_names={
            "360p": _l("Data saver 360p"),
            "high": _l("HD"),
            "audio": _l("Audio only"),
            "poster": _l("Poster"),
        },
        render_markdown=render_markdown,
        employment_names={"working": _l("Working"), "retired": _l("Retired")},
    )

    app.jinja_env.filters.update(filesize=human_size, duration=clock, hours=hours, localtime=local_time)

    @app.context_processor
    def upload_limits():
        return {"upload_limits": {p: size_limit(p) for p in ("video", "attachment", "subtitle", "cover")}}

    @app.context_processor
    def page_globals():
        # The real user object, not Flask-Login's proxy: templates read it dozens of times.
        return {
            "locale_code": str(get_locale() or "zh_CN"),
            "current_user": current_user._get_current_object(),
        }


def register_blueprints(app: Flask) -> None:
    from school.accounts.views import bp as accounts_bp
    from school.api import bp as api_bp
    from school.audit.views import bp as audit_bp
    from school.comparison.views import bp as comparison_bp
    from school.courses.views import bp as courses_bp
    from school.learning.views import bp as learning_bp
    from school.media.views import bp as media_bp
    from school.meetings.views import bp as meetings_bp
    from school.notifications.views import bp as notifications_bp
    from school.orgs.views import bp as orgs_bp
    from school.plans.views import bp as plans_bp
    from school.quizzes.views import bp as quizzes_bp
    from school.reports.views import bp as reports_bp
    from school.roster.views import bp as roster_bp
    from school.search.views import bp as search_bp
    from school.system.views import bp as system_bp
    from school.warnings.views import bp as warnings_bp
    from school.worker import load_tasks

    load_tasks()  # job kinds must be known where jobs are queued, not only in the worker
    blueprints = (
        system_bp,
        accounts_bp,
        orgs_bp,
        courses_bp,
        learning_bp,
        quizzes_bp,
        media_bp,
        search_bp,
        reports_bp,
        comparison_bp,
        roster_bp,
        plans_bp,
        notifications_bp,
        meetings_bp,
        warnings_bp,
        audit_bp,
        api_bp,
    )
    for bp in blueprints:
        app.register_blueprint(bp)


def register_commands(app: Flask) -> None:
    from school.accounts.cli import accounts_cli
    from school.content.cli import content_cli
    from school.jobs.cli import jobs_cli
    from school.media.cli import media_cli
    from school.plans.cli import plans_cli
    from school.search.cli import search_cli
    from school.system.cli import backup_command, db_cli, doctor, restore_command
    from school.warnings.cli import warnings_cli

    commands = (accounts_cli, content_cli, jobs_cli, media_cli, plans_cli, search_cli, warnings_cli)
    for command in (*commands, db_cli, doctor, backup_command, restore_command):
        app.cli.add_command(command)
