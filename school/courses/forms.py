"""Course authoring forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length


class CourseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120)])
    description = TextAreaField(_l("Description (Markdown)"), validators=[Length(max=20000)])
    tags = StringField(_l("Tags, separated by commas"), validators=[Length(max=400)])
    audience = RadioField(
        _l("Who may find and study it"),
        choices=[
            SelectChoice("all", _l("Every member")),
            SelectChoice("plan", _l("Only members a study plan assigns it to")),
        ],
        default="all",
    )


class LessonForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120)])
    body_md = TextAreaField(_l("Lesson text (Markdown)"), validators=[Length(max=200000)])
    credit_hours = StringField(_l("Study hours (学时)"), validators=[Length(max=10)])
    completion = RadioField(
        _l("Completed by"),
        choices=[
            SelectChoice("watch", _l("Watching the video or audio")),
            SelectChoice("read", _l("Reading the text and documents for a while")),
            SelectChoice("confirm", _l("The member confirming they have finished")),
        ],
    )


class NewCourseForm(FlaskForm):
    title = StringField(_l("Title of the new course"), validators=[DataRequired(), Length(max=120)])


class NewLessonForm(FlaskForm):
    """Shown beside the course form, so it uses prefix="lesson"; the app CSRF-checks every
    request itself, so this prefixed copy needs no token of its own."""

    title = StringField(_l("Title of the new lesson"), validators=[DataRequired(), Length(max=120)])


class LecturerForm(FlaskForm):
    login = StringField(
        _l("Phone number or username of the lecturer"), validators=[DataRequired(), Length(max=64)]
    )
