"""Member forms. The rules live in roster.members, so the forms only render and parse."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

STATUS_CHOICES = [
    SelectChoice("", _l("Not recorded")),
    SelectChoice("full", _l("Full member")),
    SelectChoice("probationary", _l("Probationary")),
]
EMPLOYMENT_CHOICES = [
    SelectChoice("", _l("Not recorded")),
    SelectChoice("working", _l("Working")),
    SelectChoice("retired", _l("Retired")),
]


class MemberForm(FlaskForm):
    name = StringField(_l("Name"))
    phone = StringField(_l("Mobile number"))
    org_id = SelectField(_l("Branch"), coerce=int, validate_choice=False)
    member_status = SelectField(_l("Membership"), choices=STATUS_CHOICES, validate_choice=False)
    employment = SelectField(_l("Employment"), choices=EMPLOYMENT_CHOICES, validate_choice=False)
    floating = BooleanField(_l("Floating member (studies away from the home branch)"))


class TransferForm(FlaskForm):
    org_id = SelectField(_l("New branch"), coerce=int, validate_choice=False)
    reason = StringField(_l("Reason (optional)"))
