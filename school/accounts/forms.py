"""Account forms (Flask-WTF: CSRF token included)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):
    login = StringField(_l("Phone number or username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    new = PasswordField(
        _l("New password (at least 8 characters)"), validators=[DataRequired(), Length(max=128)]
    )
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=128)])


class PreferencesForm(FlaskForm):
    language = SelectField(
        _l("Language"),
        choices=[
            SelectChoice("", _l("Follow my phone")),
            SelectChoice("zh_CN", "简体中文"),
            SelectChoice("en", "English"),
        ],
        validate_choice=True,
    )
    large_text = BooleanField(_l("Large text"))


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=64)])


class CodeForm(FlaskForm):
    # Spaces and dashes are allowed (apps show "123 456"); recovery codes are longer.
    code = StringField(_l("6-digit code"), validators=[DataRequired(), Length(max=32)])


class EmptyForm(FlaskForm):
    """A form with only its CSRF token (sign out, revoke, …)."""
