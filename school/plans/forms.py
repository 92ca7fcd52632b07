"""The study plan form. Every rule is checked in plans.service.save_plan, so its messages are the
same wherever a plan is saved; the form only renders and parses."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.fields.choices import SelectChoice

CATEGORY_CHOICES = [
    SelectChoice("full", _l("Full member")),
    SelectChoice("probationary", _l("Probationary")),
    SelectChoice("working", _l("Working")),
    SelectChoice("retired", _l("Retired")),
    SelectChoice("floating", _l("Floating")),
]


class MultiCheckbox(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class PlanForm(FlaskForm):
    title = StringField(_l("Title"))
    description = TextAreaField(_l("Description"))
    starts_on = StringField(_l("Start date"))
    due_on = StringField(_l("Deadline"))
    required_hours = StringField(_l("Required study hours (学时, optional)"))
    courses = SelectMultipleField(_l("Courses"), coerce=int, validate_choice=False)
    lessons = SelectMultipleField(_l("Single lessons"), coerce=int, validate_choice=False)
    orgs = SelectMultipleField(
        _l("Only these organisations (none: the whole organisation)"), coerce=int, validate_choice=False
    )
    categories = MultiCheckbox(
        _l("Only these member categories (none: all)"), choices=CATEGORY_CHOICES, validate_choice=False
    )
    members = TextAreaField(_l("Also these members (phone numbers or usernames, one per line)"))
