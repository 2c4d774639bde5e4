"""Console views for accounts: users (admin only), your own password, API tokens, audit log.

Each action calls one service in :mod:`surveys.accounts`, writes its audit event in the
same transaction and commits once; refusals come back as :class:`AccountError` and are
shown next to the input they are about.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from surveys import accounts, audit
from surveys.accounts import AccountError
from surveys.errors import NotFound
from surveys.models import ApiToken, User, UserRole
from surveys.paging import page_count
from webapp.admin import bp
from webapp.admin.auth import role_required
from webapp.admin.forms import (
    ActionForm,
    ApiTokenForm,
    NewUserForm,
    PasswordForm,
    RoleForm,
)
from webapp.extensions import db

#: Audit events per page.
AUDIT_PAGE_SIZE = 50


def _me() -> User:
    """The signed-in account itself (not the proxy), for services and audit records."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _show_error(form: FlaskForm, error: AccountError) -> None:
    """Put a service's refusal next to its input, or above the form when it has none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


def _user_or_404(user_id: int) -> User:
    try:
        return accounts.get_user(db.session, user_id)
    except NotFound:
        abort(404)


# -- /admin/users ----------------------------------------------------------------------


def _users_page(form: NewUserForm, status: int = 200):
    return (
        render_template(
            "admin/users.html",
            users=accounts.list_users(db.session),
            form=form,
            roles=[role.value for role in UserRole],
        ),
        status,
    )


@bp.get("/users")
@role_required(UserRole.ADMIN)
def users():
    return _users_page(NewUserForm())


@bp.post("/users")
@role_required(UserRole.ADMIN)
def create_user():
    form = NewUserForm()
    if not form.validate_on_submit():
        return _users_page(form, 422)
    try:
        user = accounts.create_user(
            db.session, form.email.data, form.name.data, form.password.data, form.role.data
        )
    except AccountError as error:
        db.session.rollback()
        _show_error(form, error)
        return _users_page(form, 422)
    audit.record(db.session, _me(), "user.create", f"user:{user.email}", {"role": user.role.value})
    db.session.commit()
    flash(f"Account created for {user.email} ({user.role.value}).", "info")
    return redirect(url_for(".users"))


def _apply(user: User, change: Callable[[User], bool], action: str, detail: dict, done: str):
    """Shared shape of the per-row buttons: refusals flashed, changes audited, then back."""
    try:
        changed = change(user)
    except AccountError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for(".users"))
    if changed:
        audit.record(db.session, _me(), action, f"user:{user.email}", detail)
        db.session.commit()
        flash(done, "info")
    return redirect(url_for(".users"))


@bp.post("/users/<int:user_id>/role")
@role_required(UserRole.ADMIN)
def change_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose a role from the list.", "error")
        return redirect(url_for(".users"))
    user, role = _user_or_404(user_id), UserRole(form.role.data)
    return _apply(
        user,
        lambda u: accounts.change_role(db.session, u, role, _me()),
        "user.role",
        {"from": user.role.value, "to": role.value},
        f"{user.email} is now {role.value}.",
    )


@bp.post("/users/<int:user_id>/deactivate")
@role_required(UserRole.ADMIN)
def deactivate_user(user_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    user = _user_or_404(user_id)
    return _apply(
        user,
        lambda u: accounts.deactivate_user(db.session, u, _me()),
        "user.deactivate",
        {},
        f"{user.email} is deactivated: signed out, API tokens stopped, history kept.",
    )


@bp.post("/users/<int:user_id>/reactivate")
@role_required(UserRole.ADMIN)
def reactivate_user(user_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    user = _user_or_404(user_id)
    return _apply(
        user,
        lambda u: accounts.reactivate_user(db.session, u),
        "user.reactivate",
        {},
        f"{user.email} can sign in again.",
    )


# -- /admin/account --------------------------------------------------------------------


@bp.route("/account", methods=["GET", "POST"])
def account():
    form = PasswordForm()
    if form.validate_on_submit():
        me = _me()
        try:
            accounts.change_password(db.session, me, form.current_password.data, form.password.data)
        except AccountError as error:
            db.session.rollback()
            _show_error(form, error)
        else:
            audit.record(db.session, me, "account.password", f"user:{me.email}")
            db.session.commit()
            flash("Your password is changed.", "info")
            return redirect(url_for(".account"))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("admin/account.html", form=form), status


# -- /admin/api-tokens -----------------------------------------------------------------


def _visible_tokens() -> list[ApiToken]:
    """Admins see every token (to revoke a leaked one), hr only their own."""
    me = _me()
    return accounts.list_api_tokens(db.session, None if me.is_admin else me)


def _tokens_page(form: ApiTokenForm, status: int = 200):
    return (
        render_template(
            "admin/api_tokens.html",
            tokens=_visible_tokens(),
            form=form,
        ),
        status,
    )


@bp.get("/api-tokens")
def api_tokens():
    return _tokens_page(ApiTokenForm())


@bp.post("/api-tokens")
def create_api_token():
    """Shows the new token in this response only: it is never stored, flashed or logged.

    No redirect on success on purpose: a redirect would need the raw token in the
    session cookie (signed, not encrypted) to show it on the next page.
    """
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _tokens_page(form, 422)
    me = _me()
    try:
        token, raw = accounts.create_api_token(db.session, me, form.name.data)
    except AccountError as error:
        db.session.rollback()
        _show_error(form, error)
        return _tokens_page(form, 422)
    audit.record(db.session, me, "api_token.create", f"api_token:{token.id}", {"name": token.name})
    db.session.commit()
    return render_template("admin/api_tokens_created.html", token=token, raw=raw)


@bp.post("/api-tokens/<int:token_id>/revoke")
def revoke_api_token(token_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        token = accounts.get_api_token(db.session, token_id)
    except NotFound:
        abort(404)
    me = _me()
    if token.user_id != me.id and not me.is_admin:
        abort(403)
    if accounts.revoke_api_token(db.session, token):
        audit.record(
            db.session,
            me,
            "api_token.revoke",
            f"api_token:{token.id}",
            {"name": token.name, "owner": token.user.email},
        )
        db.session.commit()
        flash(f"Token “{token.name}” is revoked; calls with it are refused from now on.", "info")
    return redirect(url_for(".api_tokens"))


# -- /admin/audit ----------------------------------------------------------------------


def compact(detail: Mapping[str, Any]) -> str:
    """``detail`` as ``key=value`` pairs on one line; values with spaces or quotes in JSON."""

    def show(value: Any) -> str:
        if isinstance(value, str) and value and not any(c in value for c in ' ="'):
            return value
        return json.dumps(value, ensure_ascii=False)

    return " ".join(f"{key}={show(value)}" for key, value in detail.items())


@bp.get("/audit", endpoint="audit")
def audit_log():
    """Newest first, 50 a page; ``?action=cycle.`` keeps the actions starting with that."""
    action = request.args.get("action", "").strip()[:64]
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 10**6)  # no overflow
    events, total = audit.list_events(
        db.session,
        action=action or None,
        limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )
    pages = page_count(total, AUDIT_PAGE_SIZE)
    if page > pages:
        return redirect(url_for(".audit", action=action or None, page=pages))
    rows = [
        {
            "at": event.at.strftime("%Y-%m-%d %H:%M:%S"),
            "iso": event.at.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "target": event.target,
            "detail": compact(event.detail or {}),
        }
        for event in events
    ]
    return render_template(
        "admin/audit.html", rows=rows, total=total, page=page, pages=pages, action=action
    )
