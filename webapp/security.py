"""Security headers on every response.

Views may set their own stricter or different value first (the participant report sets
its own Content-Security-Policy because its stylesheet is inline); these are defaults.
Every page but the static files is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, abort, request
from werkzeug.serving import WSGIRequestHandler

#: Scripts and styles only from our own static files; no inline code, no plugins, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Rating and report links carry their token in the URL: never pass it on.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    production = app.config.get("ENV_NAME") == "production"
    # Flask-WTF's "SSL strict" check refuses any HTTPS POST without a same-site Referer,
    # but our Referrer-Policy (no-referrer, to keep link tokens private) makes browsers
    # send none (and ``Origin: null``): every form would fail with 400 in production.
    # The session-bound CSRF token and the SameSite=Lax cookie remain the protection.
    app.config["WTF_CSRF_SSL_STRICT"] = False

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Survey pages hold a rater's draft, the console names people, reports and
            # the API show feedback: none of it belongs in a browser's or proxy's cache.
            response.headers.setdefault("Cache-Control", "no-store")
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    @app.before_request
    def _no_nul_bytes() -> None:
        # NUL is never valid text in the console or the API, and PostgreSQL refuses it in
        # a string (a 500): refuse it up front. Raters' pages keep their own handling (a
        # NUL in a comment is dropped, so nothing they typed is lost).
        if not request.path.startswith(("/admin/", "/api/")):
            return
        fields = (*request.args.values(), *(request.form.values() if request.form else ()))
        if "\x00" in request.path or any("\x00" in value for value in fields):
            abort(400)

    # Flask logs "Exception on /s/<token> [POST]" for a 500: keep the token out of it.
    app.logger.addFilter(RedactLinksFilter())


#: Emailed links carry their secret in the path (/s/, /n/, /a/, /r/); logs get the route only.
#: (Quotes end a token too, so redacting a JSON or repr'd string keeps it well-formed.)
_LINK_TOKEN = re.compile(r"(/(?:s|n|a|r)/)[^/?#\s\"'<>]+")
#: Email addresses name raters; a log line must not (an SMTP refusal quotes the address).
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def redact_links(text: str) -> str:
    """Replace link tokens in a path or request line with ``…`` (tokens are credentials)."""
    return _LINK_TOKEN.sub(r"\1…", text)


def redact_log_text(text: str) -> str:
    """Link tokens and email addresses out of ``text``: the last filter before a log line."""
    return _EMAIL.sub("…@…", redact_links(text))


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, minus the secret part of emailed links in access logs."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Called once the app has answered, so the request no longer needs the real path.
        self.requestline = redact_links(self.requestline)
        if hasattr(self, "path"):
            self.path = redact_links(self.path)
        super().log_request(code, size)


class RedactLinksFilter(logging.Filter):
    """Removes link tokens from a log record's message (applied to the app's logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_links(str(record.msg))
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact_links(a) if isinstance(a, str) else a for a in args)
        return True
