"""The REST API under ``/api/v1`` (issue #5 §10), with its OpenAPI document.

A flask-smorest :class:`~flask_smorest.Api` per app: the document is served at
``/api/v1/openapi.json`` (no UI: the bundled UIs load their scripts from a CDN, which
the security headers forbid). Clients authenticate with ``Authorization: Bearer
<token>``, tokens created in the console; the API is exempt from CSRF (no cookies are
read) and rate-limited per token (``API_RATELIMIT``, default 300 per minute).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api

from webapp.api import banks, cycles, employees, nominations, scores
from webapp.api.core import PREFIX, claim_api_errors
from webapp.extensions import csrf

BLUEPRINTS = (employees.bp, banks.bp, cycles.bp, nominations.bp, scores.bp)

SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token created in the HR console (shown once when created).",
}


class _ErrorResponses(BasePlugin):
    """Documents the errors every operation can answer, in the common error shape."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            codes = [HTTPStatus.UNAUTHORIZED, HTTPStatus.TOO_MANY_REQUESTS]
            if path and "{" in path:
                codes.append(HTTPStatus.NOT_FOUND)
            if method in ("post", "put"):
                codes.append(HTTPStatus.CONFLICT)
            responses = operation.setdefault("responses", {})
            for code in codes:
                # flask-smorest registers a response per status name (lazily, on use).
                responses.setdefault(str(code.value), code.name)


class _Api(Api):
    """flask-smorest's Api without its app-wide error handler: the console keeps its
    HTML error pages, and :func:`claim_api_errors` answers JSON under /api/v1."""

    def _register_error_handlers(self) -> None:
        pass


def init_app(app: Flask) -> Api:
    """Mount the API on ``app``; returns the Api (its ``spec`` is the OpenAPI document)."""
    app.config.setdefault("API_TITLE", "feedback360")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_RATELIMIT", "300 per minute")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": "Employees, question banks, review cycles, nominations and "
                "aggregated scores. Never individual answers or who gave them."
            },
            "security": [{"bearerAuth": []}],
        },
    )
    api = _Api(app, spec_kwargs={"extra_plugins": [_ErrorResponses()]})
    api.spec.components.security_scheme("bearerAuth", SECURITY_SCHEME)
    for bp in BLUEPRINTS:
        csrf.exempt(bp)
        api.register_blueprint(bp)
    claim_api_errors(app)
    return api
