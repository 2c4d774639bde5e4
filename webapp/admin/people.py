"""The People page: browse and search the org chart, import a CSV in two steps, deactivate.

An import is previewed first (nothing written), then applied. The previewed file travels
back to the apply step in a hidden field signed with the app's secret key, so it cannot be
swapped or edited on the way; the apply step plans the same file again and refuses if the
result differs from what HR saw (someone imported or edited people in between).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from surveys import audit, employees
from surveys.employees import EmployeeImportError, ImportPlan
from surveys.models import Employee
from webapp.admin import bp
from webapp.admin.auth import role_required, safe_next
from webapp.admin.people_forms import EmployeeActionForm, ImportApplyForm, ImportUploadForm
from webapp.extensions import db

PER_PAGE = 50
#: A preview older than this must be made again (the org chart may have moved on).
PREVIEW_MAX_AGE = 60 * 60
#: Rows of each kind listed in a preview; the counts are always complete.
PREVIEW_ROWS = 500
STATUSES = {"all": None, "active": True, "inactive": False}
_SALT = "admin.people.import"


@dataclass(frozen=True)
class CarriedFile:
    """The previewed CSV as it comes back from the browser, verified."""

    data: bytes
    source: str
    fingerprint: str


class PreviewExpired(Exception):
    """The carried file is not ours (changed, another account's) or too old."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def sign_file(data: bytes, source: str, plan: ImportPlan) -> str:
    """The hidden-field value carrying ``data`` to the apply step (compressed, signed)."""
    return _serializer().dumps(
        {
            "csv": base64.b64encode(data).decode("ascii"),
            "source": source,
            "plan": employees.plan_fingerprint(plan),
            "user": current_user.id,
        }
    )


def open_file(payload: str) -> CarriedFile:
    """The file signed by ``sign_file`` for this account; ``PreviewExpired`` otherwise."""
    try:
        carried = _serializer().loads(payload, max_age=PREVIEW_MAX_AGE)
    except BadSignature as error:  # includes SignatureExpired
        raise PreviewExpired from error
    if not isinstance(carried, dict) or carried.get("user") != current_user.id:
        raise PreviewExpired
    return CarriedFile(base64.b64decode(carried["csv"]), carried["source"], carried["plan"])


def _actor() -> Any:
    return current_user._get_current_object()


# -- browse and search ------------------------------------------------------------------------


@bp.get("/people")
@role_required("hr")
def people():
    return _people_page(ImportUploadForm())


def _people_page(upload: ImportUploadForm, status_code: int = 200):
    query = request.args.get("q", "").strip()[:200]
    status = request.args.get("status", "all")
    if status not in STATUSES:
        status = "all"
    page = employees.search_employees(
        db.session,
        query,
        active=STATUSES[status],
        page=request.args.get("page", 1, type=int),
        per_page=PER_PAGE,
    )
    return (
        render_template(
            "admin/people.html",
            result=page,
            query=query,
            status=status,
            upload=upload,
            action=EmployeeActionForm(),
        ),
        status_code,
    )


# -- import: preview, then apply --------------------------------------------------------------


@bp.post("/people/import")
@role_required("hr")
def import_preview():
    form = ImportUploadForm()
    if not form.validate_on_submit():
        return _people_page(form, 400)
    upload = form.file.data
    data = upload.read()
    source = (upload.filename or "employees.csv")[-120:]
    plan = employees.plan_csv_import(db.session, data, source)
    db.session.rollback()  # a preview writes nothing
    return _preview(plan, data, source)


def _preview(plan: ImportPlan, data: bytes, source: str, warning: str | None = None, code=200):
    apply = (
        ImportApplyForm(formdata=None, payload=sign_file(data, source, plan)) if plan.ok else None
    )
    return (
        render_template(
            "admin/people_preview.html",
            plan=plan,
            source=source,
            apply=apply,
            upload=ImportUploadForm(formdata=None),
            warning=warning,
            limit=PREVIEW_ROWS,
        ),
        code,
    )


@bp.post("/people/import/apply")
@role_required("hr")
def import_apply():
    form = ImportApplyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        carried = open_file(form.payload.data)
    except PreviewExpired:
        flash(
            "That preview could not be verified: it is more than an hour old or was "
            "changed on the way. Nothing was imported; upload the file again.",
            "error",
        )
        return redirect(url_for(".people")), 303
    plan = employees.plan_csv_import(db.session, carried.data, carried.source)
    if employees.plan_fingerprint(plan) != carried.fingerprint:
        db.session.rollback()
        return _preview(
            plan,
            carried.data,
            carried.source,
            warning="The employees changed since your preview (someone else imported or "
            "edited people), so nothing was imported. This is the preview against the "
            "org chart as it is now; check it and apply again.",
            code=409,
        )
    try:
        result = employees.apply_import(db.session, plan)
    except EmployeeImportError as error:
        db.session.rollback()
        flash(f"Nothing was imported: {error}", "error")
        return redirect(url_for(".people")), 303
    counts = {
        "added": len(result.added),
        "changed": len(result.changed),
        "unchanged": len(result.unchanged),
    }
    audit.record(db.session, _actor(), "employees.import", "employees", counts)
    db.session.commit()
    flash(
        f"Imported {carried.source}: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['unchanged']} unchanged.",
        "info",
    )
    return redirect(url_for(".people")), 303


# -- deactivate / reactivate ------------------------------------------------------------------


@bp.post("/people/<int:employee_id>/deactivate")
@role_required("hr")
def deactivate_employee(employee_id: int):
    person = _load(employee_id)
    employees.deactivate_employee(db.session, person)
    audit.record(db.session, _actor(), "employee.deactivate", f"employee:{person.external_id}")
    db.session.commit()
    flash(
        f"{person.name} is deactivated: not offered for new cycles; their history stays.",
        "info",
    )
    return _back()


@bp.post("/people/<int:employee_id>/reactivate")
@role_required("hr")
def reactivate_employee(employee_id: int):
    person = _load(employee_id)
    employees.reactivate_employee(db.session, person)
    audit.record(db.session, _actor(), "employee.reactivate", f"employee:{person.external_id}")
    db.session.commit()
    flash(f"{person.name} is active again.", "info")
    return _back()


def _load(employee_id: int) -> Employee:
    if not EmployeeActionForm().validate_on_submit():
        abort(400)
    person = db.session.get(Employee, employee_id)
    if person is None:
        abort(404)
    return person


def _back():
    """Back to the list the button was on (same search and page)."""
    return redirect(safe_next(request.form.get("next")) or url_for(".people")), 303
