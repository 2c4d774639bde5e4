"""Console forms (CSRF on every one of them)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, ValidationError

from surveys.accounts import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    AccountError,
    check_password_policy,
)
from surveys.models import UserRole


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class LogoutForm(FlaskForm):
    """No fields: the CSRF token is the point (a link or an image cannot sign you out)."""


# -- accounts (users.py) ----------------------------------------------------------------


class PasswordPolicy:
    """The service's own password rules, run in the form so all problems show at once."""

    def __call__(self, form: FlaskForm, field: Field) -> None:
        try:
            check_password_policy(field.data or "")
        except AccountError as error:
            raise ValidationError(str(error)) from None


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[InputRequired(), PasswordPolicy()],
        description=f"At least {MIN_PASSWORD_LENGTH} characters; a few unrelated words work well.",
    )


def _confirm() -> PasswordField:
    return PasswordField(
        "Repeat the password",
        validators=[InputRequired(), EqualTo("password", "The two passwords are not the same.")],
    )


#: Plain values (label = value): tuples are deprecated in WTForms 3.3, ``SelectChoice``
#: does not exist before it.
ROLE_CHOICES = [role.value for role in UserRole]


def stripped(value: str | None) -> str | None:
    """A text field's filter: a name of only spaces is no name (DataRequired then says so)."""
    return value.strip() if isinstance(value, str) else value


ROLE_HINT = "hr: cycles, people, banks and reports. admin: all of that, and these accounts."


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    name = StringField("Name", filters=[stripped], validators=[DataRequired(), Length(max=200)])
    role = SelectField(
        "Role", choices=ROLE_CHOICES, default=UserRole.HR.value, description=ROLE_HINT
    )
    password = _new_password("Password")
    confirm = _confirm()


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """No fields: the CSRF token guards a one-button action (deactivate, revoke …)."""


class PasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    password = _new_password("New password")
    confirm = _confirm()


class ApiTokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[InputRequired(), Length(max=100)],
        description="What will use it, e.g. “HRIS sync”; shown in this list and the audit log.",
    )
