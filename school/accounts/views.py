"""Sign in (with the two-factor step) and out, and the signed-in user's own account pages."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from school import access, db
from school.accounts import service, two_factor
from school.accounts.forms import CodeForm, EmptyForm, PasswordForm, PreferencesForm, SignInForm, TokenForm
from school.errors import Forbidden, Invalid, SchoolError, Throttled

bp = Blueprint("accounts", __name__)
# Session key of a sign-in whose password was right and whose code is still to come. Nobody is
# signed in meanwhile: the session only remembers who, since when and where to go afterwards.
PENDING = "two_factor_sign_in"


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("system.home")


@bp.route("/sign-in", methods=["GET", "POST"])
@access.public
def sign_in():
    """Sign in with phone number or username."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        try:
            user = service.authenticate(
                form.login.data,
                form.password.data,
                request.remote_addr or "",
                db.utcnow(),
                current_app.config,
            )
        except service.SecondFactorNeeded as needed:
            session[PENDING] = two_factor.pending_sign_in(needed.user, request.args.get("next"), db.utcnow())
            return redirect(url_for("accounts.sign_in_code"))
        except SchoolError as error:
            flash(error.message, "error")
            status = error.status
            if isinstance(error, Throttled):
                headers["Retry-After"] = str(error.retry_after)
        else:
            db.session.commit()
            login_user(user)
            session.permanent = True
            return redirect(safe_next(request.args.get("next")))
    elif request.method == "POST":
        flash(_("Please enter your phone number or username and your password."), "error")
        status = 400
    return render_template("accounts/sign_in.html", form=form), status, headers


@bp.route("/sign-in/code", methods=["GET", "POST"])
@access.public
def sign_in_code():
    """Second step of signing in: the authenticator-app code, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("system.home"))
    now = db.utcnow()
    pending = session.get(PENDING)
    if not two_factor.pending_is_fresh(pending, now):
        session.pop(PENDING, None)
        flash(_("Your sign-in has expired. Please sign in again."), "error")
        return redirect(url_for("accounts.sign_in"))
    form = CodeForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        try:
            user = two_factor.complete_sign_in(
                pending["user"],
                pending["version"],
                form.code.data,
                request.remote_addr or "",
                now,
                current_app.config,
            )
        except SchoolError as error:
            flash(error.message, "error")
            if error.code == "sign_in_expired":
                session.pop(PENDING, None)
                return redirect(url_for("accounts.sign_in"))
            status = error.status
            if isinstance(error, Throttled):
                headers["Retry-After"] = str(error.retry_after)
        else:
            db.session.commit()
            session.pop(PENDING, None)
            login_user(user)
            session.permanent = True
            return redirect(safe_next(pending.get("next")))
    elif request.method == "POST":
        flash(_("Please enter the code."), "error")
        status = 400
    recovery = request.args.get("recovery") == "1"
    return render_template("accounts/sign_in_code.html", form=form, recovery=recovery), status, headers


@bp.post("/sign-out")
@access.signed_in
def sign_out():
    """Sign out on this device."""
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("accounts.sign_in"))


@bp.get("/me")
@access.signed_in
def profile():
    """My account: preferences, password, sessions, tokens."""
    prefs = PreferencesForm(language=current_user.language or "", large_text=current_user.large_text)
    return render_template(
        "accounts/profile.html",
        prefs=prefs,
        token_form=TokenForm(),
        empty=EmptyForm(),
        tokens=service.tokens_of(current_user),
        two_factor_on=(
            two_factor.is_enabled(current_user)
            if two_factor.may_enrol(current_user, current_app.config)
            else None
        ),
    )


@bp.post("/me/preferences")
@access.signed_in
def preferences():
    """Save language and large-text mode."""
    form = PreferencesForm()
    if not form.validate():
        raise Invalid(_("Unknown language."))
    service.set_preferences(current_user, form.language.data, form.large_text.data)
    db.session.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("accounts.profile"))


@bp.route("/me/password", methods=["GET", "POST"])
@access.signed_in
def change_password():
    """Change my password (also the forced first change)."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current.data, form.new.data, form.confirm.data)
        except Invalid as error:
            flash(error.message, "error")
            status = 400
        else:
            db.session.commit()
            login_user(current_user._get_current_object())  # new session version for this device
            flash(_("Your password has been changed. Other devices have been signed out."), "info")
            return redirect(url_for("system.home"))
    elif request.method == "POST":
        flash(_("Please fill in all three fields."), "error")
        status = 400
    return render_template("accounts/password.html", form=form), status


@bp.post("/me/sign-out-everywhere")
@access.signed_in
def sign_out_everywhere():
    """End every session of mine, this one included."""
    EmptyForm().validate_on_submit()
    service.sign_out_everywhere(current_user)
    db.session.commit()
    logout_user()
    flash(_("You have been signed out on every device."), "info")
    return redirect(url_for("accounts.sign_in"))


@bp.post("/me/tokens")
@access.signed_in
def create_token():
    """Create a personal access token; its value is shown once."""
    form = TokenForm()
    if not form.validate():
        raise Invalid(_("Give the token a name of 1 to 64 characters."))
    _token, raw = service.create_token(current_user, form.name.data)
    db.session.commit()
    flash(_("New token (copy it now, it will not be shown again): %(token)s", token=raw), "token")
    return redirect(url_for("accounts.profile"))


@bp.post("/me/tokens/<int:token_id>/revoke")
@access.signed_in
def revoke_token(token_id: int):
    """Revoke one of my tokens."""
    service.revoke_token(current_user, token_id, db.utcnow())
    db.session.commit()
    flash(_("The token has been revoked."), "info")
    return redirect(url_for("accounts.profile"))


# --- two-factor sign-in -------------------------------------------------------------------------


def _two_factor_user():
    user = current_user._get_current_object()
    if not two_factor.may_enrol(user, current_app.config):
        raise Forbidden()
    return user


def _two_factor_page(user, status: int = 200):
    row = two_factor.get(user)
    setup = None
    if row is not None and row.enabled_at is None:
        setup = {
            "qr": two_factor.qr_data_uri(two_factor.provisioning_uri(user, row.secret)),
            "secret": two_factor.grouped(row.secret),
        }
    page = render_template(
        "accounts/two_factor.html",
        row=row,
        setup=setup,
        required=two_factor.is_required(user, current_app.config),
        codes_left=two_factor.recovery_codes_left(user) if row and row.enabled_at else 0,
        form=CodeForm(formdata=None),
    )
    return page, status


def _code_refused(error: SchoolError, user):
    """Show the two-factor page again with the reason a code was refused."""
    db.session.rollback()
    flash(error.message, "error")
    page, _status = _two_factor_page(user)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Throttled) else {}
    return page, 400 if error.status == 401 else error.status, headers  # signed in: a wrong code is 400


@bp.get("/me/two-factor")
@access.signed_in
def two_factor_settings():
    """Two-factor sign-in: set it up, renew recovery codes, turn it off."""
    return _two_factor_page(_two_factor_user())


@bp.post("/me/two-factor/setup")
@access.signed_in
def two_factor_setup():
    """Start (or start over) setting up an authenticator app: a new secret and QR code."""
    two_factor.start_enrolment(_two_factor_user(), current_app.config)
    db.session.commit()
    return redirect(url_for("accounts.two_factor_settings"))


@bp.post("/me/two-factor/confirm")
@access.signed_in
def two_factor_confirm():
    """Turn two-factor on with the app's first code; the recovery codes are shown this once."""
    user = _two_factor_user()
    form = CodeForm()
    try:
        if not form.validate():
            raise Invalid(_("Please enter the code."))
        codes = two_factor.confirm_enrolment(user, form.code.data, db.utcnow())
    except SchoolError as error:
        return _code_refused(error, user)
    db.session.commit()
    flash(_("Two-factor sign-in is on."), "info")
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.post("/me/two-factor/recovery-codes")
@access.signed_in
def two_factor_codes():
    """New recovery codes after a current code; the old ones stop working."""
    user = _two_factor_user()
    form = CodeForm()
    try:
        if not form.validate():
            raise Invalid(_("Please enter the code."))
        codes = two_factor.regenerate_recovery_codes(
            user, form.code.data, request.remote_addr or "", db.utcnow(), current_app.config
        )
    except SchoolError as error:
        return _code_refused(error, user)
    db.session.commit()
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.post("/me/two-factor/disable")
@access.signed_in
def two_factor_disable():
    """Turn two-factor off after a current code (not while my role requires it)."""
    user = _two_factor_user()
    form = CodeForm()
    try:
        if not form.validate():
            raise Invalid(_("Please enter the code."))
        two_factor.disable(user, form.code.data, request.remote_addr or "", db.utcnow(), current_app.config)
    except SchoolError as error:
        return _code_refused(error, user)
    db.session.commit()
    flash(_("Two-factor sign-in is off."), "info")
    return redirect(url_for("accounts.profile"))
