"""Organisation tree forms. The rules live in orgs.service; the forms only render and parse."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice

KIND_NAMES = {
    "city": _l("City"),
    "district": _l("District"),
    "street": _l("Street"),
    "park": _l("Park"),
    "branch": _l("Branch"),
}
# What may be added from the UI (a new city is a deployment matter), the usual one first.
KIND_CHOICES = [SelectChoice(k, KIND_NAMES[k]) for k in ("branch", "street", "park", "district")]


class NewOrgForm(FlaskForm):
    name = StringField(_l("Name"))
    kind = SelectField(_l("Kind"), choices=KIND_CHOICES, validate_choice=False)


class RenameForm(FlaskForm):
    name = StringField(_l("New name"))


class MoveForm(FlaskForm):
    parent_id = SelectField(_l("Move under"), coerce=int, validate_choice=False)
