"""Forms of the cycle set-up wizard, one per step (CSRF on every one of them).

They check what a browser can get wrong (missing, not a number, not one of the
choices). The settings themselves are checked once, by
:class:`surveys.cycles.CycleSettingsSchema`, whose messages the views put next to the
field they are about.
"""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from surveys.cycles import EMAIL_MESSAGE_MAX
from surveys.db import utcnow
from surveys.models import NominationMode
from webapp.admin.forms import stripped

#: Names for the language codes the bundled banks use (others show as the code).
LANGUAGE_NAMES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
    "pt": "Português",
    "pl": "Polski",
    "sv": "Svenska",
}

#: Anonymity groups in the order HR reads them, with their labels.
THRESHOLD_GROUPS = {
    "self": "Self",
    "manager": "Manager",
    "peer": "Peers",
    "direct_report": "Direct reports",
    "other": "Others",
    "others": "All others (everyone but self, combined)",
}


def language_label(code: str) -> str:
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code


def _number(label: str, low: int, high: int, why: str = "") -> IntegerField:
    message = f"Enter a whole number from {low} to {high}{why}."
    return IntegerField(
        label,
        validators=[InputRequired(message), NumberRange(low, high, message)],
    )


class BasicsForm(FlaskForm):
    name = StringField(
        "Cycle name",
        filters=[stripped],
        validators=[DataRequired("Give the cycle a name."), Length(max=200)],
    )
    bank = SelectField("Question bank", validators=[InputRequired("Choose a question bank.")])
    language = SelectField("Language of the survey", validators=[InputRequired()])


class ParticipantsForm(FlaskForm):
    scope = RadioField(
        "Who receives feedback",
        choices=[
            SelectChoice("all", "Everyone active"),
            SelectChoice("department", "One department"),
            SelectChoice("list", "People I pick"),
        ],
        default="all",
        validators=[InputRequired("Choose who receives feedback.")],
    )
    # No Optional(): it would end the checks before validate_department on an empty choice.
    department = SelectField("Department", validate_choice=False)
    employees = SelectMultipleField("People", coerce=int, validate_choice=False)
    q = StringField("Filter people", validators=[Optional(), Length(max=100)])

    def validate_department(self, field: SelectField) -> None:
        if self.scope.data != "department":
            return
        if not field.data or field.data not in {choice.value for choice in field.choices or []}:
            raise ValidationError("Choose a department from the list.")

    def validate_employees(self, field: SelectMultipleField) -> None:
        if self.scope.data == "list" and not field.data:
            raise ValidationError("Pick at least one person.")


class NominationsForm(FlaskForm):
    nomination_mode = RadioField(
        "Who chooses the peers",
        choices=[
            SelectChoice(NominationMode.AUTO.value, "Suggested from the org chart"),
            SelectChoice(
                NominationMode.PARTICIPANT.value, "Each participant nominates their peers"
            ),
        ],
        validators=[InputRequired("Choose who picks the peers.")],
    )
    approval_required = BooleanField("The manager approves the nominations")
    peer_min = _number("Fewest peers per participant", 0, 20)
    peer_max = _number("Most peers per participant", 0, 30)
    include_self = BooleanField("Participants rate themselves")
    include_manager = BooleanField("Their manager rates them")
    include_direct_reports = BooleanField("Their direct reports rate them")
    show_manager = BooleanField("Show the manager's answers as their own group in reports")


class AnonymityForm(FlaskForm):
    """One number per group (fields ``threshold_<group>``, added below); a group of
    several raters needs at least 2, as the schema says too (the form says it for every
    field at once)."""

    def thresholds(self) -> dict[str, int]:
        return {group: self[f"threshold_{group}"].data for group in THRESHOLD_GROUPS}


for _group, _label in THRESHOLD_GROUPS.items():
    _field = (
        _number(_label, 1, 50)
        if _group in ("self", "manager")
        else _number(_label, 2, 50, ": 1 would show single raters' answers")
    )
    setattr(AnonymityForm, f"threshold_{_group}", _field)


def _in_future(form: FlaskForm, field: DateField) -> None:
    if field.data is not None and field.data <= today():
        raise ValidationError("Choose a date in the future.")


def today() -> date:
    """Today in UTC, the calendar the cycle's dates are kept in."""
    return utcnow().date()


class DatesForm(FlaskForm):
    nomination_deadline = DateField(
        "Nomination deadline",
        validators=[Optional(), _in_future],
    )
    close_date = DateField(
        "Close date",
        validators=[InputRequired("Choose the day the cycle closes."), _in_future],
    )
    reminder_interval_days = _number("Days between reminders", 1, 60)
    max_reminders = _number("Most reminders per rater", 0, 20)


class EmailForm(FlaskForm):
    email_message = TextAreaField(
        "Your message",
        validators=[
            Length(
                max=EMAIL_MESSAGE_MAX,
                message=f"Keep the message under {EMAIL_MESSAGE_MAX:,} characters.",
            )
        ],
        render_kw={"rows": 8, "maxlength": EMAIL_MESSAGE_MAX},
    )


class LaunchForm(FlaskForm):
    confirm = BooleanField(
        "I have checked the summary: send the emails now",
        validators=[InputRequired("Tick the box to confirm; nothing has been sent.")],
    )
    allow_short = BooleanField(
        "Launch although some participants have fewer peers than the minimum"
    )
