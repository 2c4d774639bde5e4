"""Forms of the cycle pages: deadline, confirmations (CSRF on every one of them)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField
from wtforms.validators import DataRequired, InputRequired


class DeadlineForm(FlaskForm):
    close_date = DateField(
        "New close date",
        validators=[InputRequired("Enter the new close date.")],
        description="Later than today and than the current close date; raters keep their links.",
    )


class CloseForm(FlaskForm):
    confirm = BooleanField(
        "Yes, close the cycle now",
        validators=[DataRequired("Tick the box to confirm that the cycle should close.")],
        description="Survey links stop working at once and unsubmitted drafts are deleted.",
    )


class LaunchForm(FlaskForm):
    confirm = BooleanField(
        "Yes, open the surveys now",
        validators=[DataRequired("Tick the box to confirm that the surveys should open.")],
        description="Nominations end; every rater gets an email with their survey links.",
    )
    allow_short = BooleanField(
        "Open even where someone has fewer peers than the minimum",
        description="Otherwise the launch is refused and names who is short; HR can add"
        " raters while the cycle is open.",
    )


class ReleaseForm(FlaskForm):
    confirm = BooleanField(
        "Yes, release every report now",
        validators=[DataRequired("Tick the box to confirm the release.")],
        description="Each participant gets an email with a link to their report. "
        "Released reports cannot be withdrawn, and the link between responses and raters "
        "is destroyed for good.",
    )


class ActionForm(FlaskForm):
    """No fields: the CSRF token guards a one-button action (remind, approve, export)."""


def csrf_failed(form: FlaskForm) -> bool:
    """Whether the form failed on its CSRF token (a 400, not a message next to a field)."""
    field = getattr(form, "csrf_token", None)  # absent when CSRF is switched off (tests)
    return bool(field is not None and field.errors)
