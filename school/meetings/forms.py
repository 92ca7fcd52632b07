"""The meeting forms. Every rule is checked in meetings.service, so its messages are the same
wherever a meeting is saved; the forms only render and parse (attendee checkboxes and the
attendance file are read from the request by the view)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from school.meetings.service import OFFLINE_KINDS

KIND_LABELS = {
    "party_congress": _l("Branch general meeting"),
    "committee": _l("Branch committee meeting"),
    "group": _l("Party group meeting"),
    "lecture": _l("Party lesson"),
    "theme_day": _l("Theme party day"),
    "group_viewing": _l("Group viewing"),
}


class MeetingForm(FlaskForm):
    kind = SelectField(
        _l("Kind"), choices=[SelectChoice(k, KIND_LABELS[k]) for k in OFFLINE_KINDS], validate_choice=False
    )
    held_on = StringField(_l("Date held"))
    topic = StringField(_l("Topic"))
    lecturer = StringField(_l("Lecturer or speaker (optional)"))
    hours = StringField(_l("Study hours for each attendee"))
    # Only on the edit form: needed when attendees are taken off or the hours change.
    reason = StringField(_l("Reason for the correction"))
    # Names this filling-in of the form: sent twice, it records one meeting.
    token = HiddenField()


class CancelForm(FlaskForm):
    reason = StringField(_l("Reason for cancelling"))
