"""Sign in and out, and the signed-in user's own account page."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from school import access, db
from school.accounts import service
from school.accounts.forms import EmptyForm, PasswordForm, PreferencesForm, SignInForm, TokenForm
from school.errors import Invalid, SchoolError, Throttled

bp = Blueprint("accounts", __name__)


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
