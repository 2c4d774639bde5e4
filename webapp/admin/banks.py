"""The Question banks pages: browse bundled and custom banks, upload, duplicate, edit.

Bundled banks are read-only; every change goes to a custom bank through
:mod:`surveys.bank_store`, which validates with the same parser as the bundled files. A
rejected text is shown again with every problem and its line, so nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from surveys import audit, bank_store
from surveys.bank_store import BankEntry, BankKeyError
from surveys.banks import BankError, UnknownBankError
from webapp.admin import bp
from webapp.admin.auth import role_required
from webapp.admin.bank_forms import BankDuplicateForm, BankEditForm, BankUploadForm
from webapp.extensions import db


def _actor() -> Any:
    return current_user._get_current_object()


def _entry(key: str) -> BankEntry:
    try:
        return bank_store.get_entry(db.session, key)
    except UnknownBankError:
        abort(404)


# -- list and upload --------------------------------------------------------------------------


@bp.get("/banks")
@role_required("hr")
def banks():
    return _banks_page(BankUploadForm())


def _banks_page(form: BankUploadForm, error: BankError | None = None, status: int = 200):
    return (
        render_template(
            "admin/banks.html",
            entries=bank_store.list_banks(db.session),
            form=form,
            problems=bank_store.describe_errors(error) if error else [],
            replaceable=isinstance(error, BankKeyError) and error.replaceable,
        ),
        status,
    )


@bp.post("/banks")
@role_required("hr")
def upload_bank():
    form = BankUploadForm()
    if not form.validate_on_submit():
        abort(400)
    text, source = _uploaded_text(form)
    if text is None:
        return _banks_page(form, status=400)
    form.text.data = text  # shown again on error, so nothing is lost
    replace = bool(form.replace.data)
    try:
        bank = bank_store.save_bank(
            db.session, text, created_by=current_user.id, replace=replace, source=source
        )
    except BankError as error:
        db.session.rollback()
        return _banks_page(form, error, 400)
    audit.record(
        db.session,
        _actor(),
        "bank.upload",
        f"bank:{bank.key}",
        {"version": bank.version, "replaced": replace},
    )
    db.session.commit()
    flash(f"Saved the custom bank {bank.key} ({bank.title}).", "info")
    return redirect(url_for(".bank", key=bank.key)), 303


def _uploaded_text(form: BankUploadForm) -> tuple[str | None, str]:
    """The YAML from the file (if one was chosen) or the textarea; errors go on the form."""
    upload = form.file.data
    if upload is not None and upload.filename:
        source = upload.filename[-120:]
        try:
            return upload.read().decode("utf-8-sig").replace("\r\n", "\n"), source
        except UnicodeDecodeError as error:
            form.file.errors = [
                f"{source} is not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8."
            ]
            return None, source
    text = (form.text.data or "").replace("\r\n", "\n")
    if not text.strip():
        form.text.errors = ["Choose a YAML file or paste the bank's YAML."]
        return None, "pasted text"
    return text, "pasted text"


# -- one bank ---------------------------------------------------------------------------------


@bp.get("/banks/<key>")
@role_required("hr")
def bank(key: str):
    form = BankDuplicateForm(new_key=f"{key}_copy")
    return _bank_page(_entry(key), form)


def _bank_page(entry: BankEntry, form: BankDuplicateForm, status: int = 200):
    languages = entry.bank.languages
    wanted = request.args.get("lang", entry.bank.language)
    language = wanted if wanted in languages else entry.bank.language
    return (
        render_template(
            "admin/banks_detail.html",
            entry=entry,
            shown=entry.bank.localized(language),
            language=language,
            languages=languages,
            form=form,
        ),
        status,
    )


@bp.get("/banks/<key>/yaml")
@role_required("hr")
def bank_yaml(key: str):
    """The bank's YAML as a download, to edit offline and upload again under a new key."""
    _entry(key)
    text = bank_store.bank_source(db.session, key)
    return Response(
        text,
        mimetype="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{key}.yaml"'},
    )


@bp.post("/banks/<key>/duplicate")
@role_required("hr")
def duplicate_bank(key: str):
    entry = _entry(key)
    form = BankDuplicateForm()
    if not form.validate_on_submit():
        return _bank_page(entry, form, 400)
    try:
        copy = bank_store.duplicate_bank(
            db.session, key, form.new_key.data, created_by=current_user.id
        )
    except BankError as error:
        db.session.rollback()
        form.new_key.errors = [problem for _, problem in error.errors]
        return _bank_page(entry, form, 400)
    audit.record(db.session, _actor(), "bank.duplicate", f"bank:{copy.key}", {"from": key})
    db.session.commit()
    flash(f"Copied {key} to {copy.key}. Edit the copy below.", "info")
    return redirect(url_for(".edit_bank", key=copy.key)), 303


@bp.route("/banks/<key>/edit", methods=["GET", "POST"])
@role_required("hr")
def edit_bank(key: str):
    entry = _entry(key)
    if not entry.custom:
        flash(f"{key} is a bundled bank and read-only. Duplicate it to edit a copy.", "error")
        return redirect(url_for(".bank", key=key)), 303
    form = BankEditForm()
    if request.method == "GET":
        form.text.data = bank_store.bank_source(db.session, key)
        return _edit_page(entry, form)
    if not form.validate_on_submit():
        return _edit_page(entry, form, status=400)
    text = form.text.data.replace("\r\n", "\n")
    try:
        saved = bank_store.update_bank(db.session, key, text)
    except BankError as error:
        db.session.rollback()
        return _edit_page(entry, form, error, 400)
    audit.record(db.session, _actor(), "bank.edit", f"bank:{key}", {"version": saved.version})
    db.session.commit()
    flash(f"Saved {key}.", "info")
    return redirect(url_for(".bank", key=key)), 303


def _edit_page(
    entry: BankEntry, form: BankEditForm, error: BankError | None = None, status: int = 200
):
    return (
        render_template(
            "admin/banks_edit.html",
            entry=entry,
            form=form,
            problems=bank_store.describe_errors(error) if error else [],
        ),
        status,
    )
