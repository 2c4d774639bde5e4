"""Console forms (CSRF on every one of them)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from surveys.accounts import MAX_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class LogoutForm(FlaskForm):
    """No fields: the CSRF token is the point (a link or an image cannot sign you out)."""
