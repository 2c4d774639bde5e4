"""What every API blueprint shares: bearer-token auth, JSON errors, one commit per call.

Views stay thin: load (or 404) → call one service inside :func:`domain_errors` → record
the audit event and commit with :func:`done` → return plain values for the schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from flask import Flask, current_app, g, request
from flask_smorest import Blueprint, abort
from werkzeug.exceptions import HTTPException, default_exceptions

from surveys import accounts, audit
from surveys.errors import DomainError, NotFound
from surveys.models import Cycle, User, UserRole
from webapp import throttle
from webapp.extensions import db, limiter

PREFIX = "/api/v1"
#: Database ids are 32-bit integers on every backend; larger ones cannot exist (404).
MAX_CYCLE_ID = 2**31 - 1
#: Roles that may use the API: everything the API does is HR work (no user management).
API_ROLES = frozenset({UserRole.HR, UserRole.ADMIN})
#: RFC 6750: tell the client how to authenticate.
REALM = 'Bearer realm="feedback360 API"'


def blueprint(name: str, description: str) -> Blueprint:
    """A blueprint under /api/v1 that authenticates every request and answers in JSON."""
    bp = Blueprint(name, __name__, url_prefix=PREFIX, description=description)
    bp.before_request(_authenticate)
    bp.register_error_handler(HTTPException, json_error)
    # App-wide handlers for a code beat a blueprint's class handler in Flask's lookup,
    # so claim each code for the blueprint too (the console keeps its HTML pages).
    for code in default_exceptions:
        bp.register_error_handler(code, json_error)
    # One budget per token across the whole API, not one per blueprint.
    limiter.shared_limit(_rate_limit, scope="api-v1", key_func=_rate_key)(bp)
    return bp


# -- auth --------------------------------------------------------------------------------


def _bearer() -> str | None:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()
    return raw if scheme.lower() == "bearer" and raw else None


def _authenticate() -> None:
    raw = _bearer()
    if raw is None:
        _unauthorized("send an API token: Authorization: Bearer <token>", invalid=False)
    user = accounts.authenticate_api_token(db.session, raw)
    if user is None:
        db.session.rollback()
        _unauthorized("the API token is unknown, revoked or its account is deactivated")
    if user.role not in API_ROLES:
        db.session.rollback()
        abort(403, message="this account's role may not use the API")
    db.session.commit()  # keeps the token's last_used_at, whatever the request does next
    g.api_user = user


def _unauthorized(message: str, *, invalid: bool = True) -> NoReturn:
    if invalid and not throttle.spend("api-token", throttle.API_TOKEN_GUESS_LIMIT):
        abort(429, message="too many refused API tokens from this address; try again later")
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    abort(401, message=message, headers={"WWW-Authenticate": challenge})


def current_user() -> User:
    user: User = g.api_user
    return user


def _rate_limit() -> str:
    return str(current_app.config.get("API_RATELIMIT", "300 per minute"))


def _rate_key() -> str:
    """Per token (hashed: the key is stored), or per address without one."""
    raw = _bearer()
    if raw is None:
        return f"api-anon:{request.remote_addr or '?'}"
    return "api-token:" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]


# -- errors ------------------------------------------------------------------------------


def json_error(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """``{code, status, message, errors}``, flask-smorest's error shape, for any HTTP error."""
    code = error.code or 500
    payload: dict[str, Any] = {"code": code, "status": error.name}
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    data = getattr(error, "data", None) or {}
    payload["message"] = data.get("message") or _message(error)
    if "errors" in data:
        payload["errors"] = data["errors"]
    elif "messages" in data:  # webargs' validation errors
        payload["errors"] = data["messages"]
    headers.update(data.get("headers") or {})
    return payload, code, headers


def _message(error: HTTPException) -> str:
    if (error.code or 500) >= 500:  # never an exception's text
        return "something went wrong; the request changed nothing"
    return str(error.description or error.name)


def _is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def claim_api_errors(app: Flask) -> None:
    """JSON errors for any /api/v1 URL, even one that matches no route (404, 405).

    Wraps the app's own handler for each code: the console keeps its HTML error pages.
    """
    spec = app.error_handler_spec[None]
    for code, exc_class in default_exceptions.items():
        previous = spec.get(code, {}).get(exc_class)
        app.register_error_handler(code, _api_or(previous))


def _api_or(previous: Callable[[Any], Any] | None) -> Callable[[HTTPException], Any]:
    def handle(error: HTTPException) -> Any:
        if _is_api_request():
            return json_error(error)
        return previous(error) if previous is not None else error

    return handle


@contextmanager
def domain_errors(status: int = 409) -> Iterator[None]:
    """A refusal from a service rolls back and answers ``status`` (409: state conflict)."""
    try:
        yield
    except NotFound as error:
        db.session.rollback()
        abort(404, message=str(error))
    except DomainError as error:
        db.session.rollback()
        abort(status, message=str(error))


def done(action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
    """Record the audit event for a successful change and commit both together."""
    audit.record(db.session, current_user(), action, target, detail)
    db.session.commit()


def load_cycle(cycle_id: int) -> Cycle:
    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        abort(404, message=f"no cycle with id {cycle_id}")
    return cycle


def cycle_target(cycle: Cycle) -> str:
    return f"cycle {cycle.id} {cycle.name!r}"
