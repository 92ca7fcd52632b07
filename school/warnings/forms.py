"""Forms for warning rules and acknowledgements; every rule is checked in warnings.service."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from school.orgs.models import KINDS

ORG_KIND_NAMES = {
    "city": _l("City"),
    "district": _l("District"),
    "street": _l("Street"),
    "park": _l("Park"),
    "branch": _l("Branch"),
}


class RuleForm(FlaskForm):
    kind = SelectField(_l("Watches"), validate_choice=False)
    org_kind = SelectField(
        _l("Level of organisations"),
        choices=[SelectChoice(k, ORG_KIND_NAMES[k]) for k in KINDS],
        validate_choice=False,
    )
    days = StringField(_l("Days (no study in N days; grace days into a quarter)"))
    threshold = StringField(_l("Limit (percent of members, or points behind)"))
    min_members = StringField(_l("Only organisations with at least this many members"))
    orange_after_days = StringField(_l("Orange after (days the condition lasts)"))
    red_after_days = StringField(_l("Red after (days the condition lasts)"))
    enabled = BooleanField(_l("On"))


class AcknowledgeForm(FlaskForm):
    note = TextAreaField(_l("What is being done about it"))
