"""Forms of the People page (CSRF on every one, like all console forms)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField
from wtforms.validators import InputRequired


class ImportUploadForm(FlaskForm):
    """Step 1 of an import: the CSV file, previewed before anything is written."""

    file = FileField("Employees CSV file", validators=[FileRequired("Choose a CSV file.")])


class ImportApplyForm(FlaskForm):
    """Step 2: the previewed file, carried back signed so it cannot change on the way."""

    payload = HiddenField(validators=[InputRequired()])


class EmployeeActionForm(FlaskForm):
    """Deactivate or reactivate someone: no fields, the CSRF token is the point."""
