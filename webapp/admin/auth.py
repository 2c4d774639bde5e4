"""Who may see the console: Flask-Login wiring, the blueprint-wide guard, role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, request
from flask_login import current_user

from surveys.accounts import load_active_user
from surveys.models import User, UserRole
from webapp.admin import bp
from webapp.extensions import db, login_manager

#: Views reachable without signing in (everything else under /admin/ redirects to login).
PUBLIC_ENDPOINTS = frozenset({"admin.login"})

login_manager.login_view = "admin.login"
login_manager.login_message = "Please sign in to open that page."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user; ``None`` (signed out) once the account is deactivated."""
    try:
        return load_active_user(db.session, int(user_id))
    except ValueError:
        return None


@bp.before_request
def require_login() -> Any:
    """One guard for the whole blueprint, so a new view cannot forget ``login_required``."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def role_required(role: UserRole | str) -> Callable:
    """Allow the view to ``admin`` accounts only (``hr`` gets 403), e.g. user management.

    ``admin`` passes every role check; ``role_required("hr")`` admits both roles.
    """
    wanted = UserRole(role)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role != wanted and current_user.role != UserRole.ADMIN:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else ``None`` (no open redirects).

    Browsers treat ``//host``, ``/\\host`` and paths with tabs or newlines inside as
    other sites, so only a plain absolute path without backslashes or control
    characters is accepted.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
