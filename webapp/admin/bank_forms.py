"""Forms of the Question banks pages (CSRF on every one, like all console forms)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from surveys.bank_store import MAX_KEY_LENGTH
from webapp.admin.forms import stripped


class BankUploadForm(FlaskForm):
    """A new custom bank from a YAML file or pasted text (the file wins if both are given)."""

    file = FileField("YAML file")
    text = TextAreaField("…or paste the YAML")
    replace = BooleanField("Replace the custom bank that has the same key")


class BankEditForm(FlaskForm):
    """The whole YAML of a custom bank, validated as one document on save."""

    text = TextAreaField("Bank YAML", validators=[InputRequired("The bank cannot be empty.")])


class BankDuplicateForm(FlaskForm):
    """A new key for a copy of the bank; the copy is then edited like any custom bank."""

    new_key = StringField(
        "Key of the copy",
        filters=[stripped],
        validators=[DataRequired("Choose a key for the copy."), Length(max=MAX_KEY_LENGTH)],
    )
