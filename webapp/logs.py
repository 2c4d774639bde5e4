"""Structured logs: one line per request and per background job, JSON in production.

``LOG_FORMAT=json`` (the production default) writes one JSON object per line through
python-json-logger; ``text`` (the development default) writes readable lines. Either
way every line passes :func:`webapp.security.redact_log_text`, so link tokens and email
addresses never reach a log, and request lines carry no client address or query string:
a log reader must not be able to tie a person to a survey (README, Anonymity).

Request lines come from :class:`RequestLogMiddleware`, which wraps the WSGI app, so the
werkzeug server of ``feedback360 serve`` and gunicorn (``serve --workers N``) write the
same lines; gunicorn's own messages go through :class:`GunicornLogger`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import IO, Any

from flask import Flask, has_request_context, request
from flask.logging import default_handler
from gunicorn.glogging import Logger as _GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from werkzeug.wsgi import ClosingIterator

from webapp.config import log_settings
from webapp.security import redact_links, redact_log_text

REQUEST_ID_HEADER = "X-Request-ID"
#: Where the request id lives in the WSGI environ (readable outside Flask too).
ENVIRON_KEY = "feedback360.request_id"
#: An incoming X-Request-ID is kept only if it is this tame (no log injection).
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Polled by load balancers every few seconds: a healthy answer is logged at DEBUG only.
QUIET_PATHS = frozenset({"/healthz"})

access_log = logging.getLogger("feedback360.request")
job_log = logging.getLogger("feedback360.job")

#: Fields our own lines add with ``extra=``; the text format appends them as key=value.
FIELDS = (
    "method",
    "path",
    "status",
    "duration_ms",
    "request_id",
    "task",
    "task_id",
    "outcome",
    "error",
    "result",
)
#: The ones a text line appends (the others are already in its message).
TEXT_FIELDS = ("request_id", "task_id", "error", "result")


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_log_text(value)
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message and our fields."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: _redact(value) for key, value in log_data.items()}


class TextFormatter(logging.Formatter):
    """Readable lines for development, with our fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [f"{k}={getattr(record, k)}" for k in TEXT_FIELDS if hasattr(record, k)]
        if extra:
            line = f"{line} [{' '.join(extra)}]"
        return redact_log_text(line)


class RequestIdFilter(logging.Filter):
    """Stamps the current request's id on every line logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            request_id = request.environ.get(ENVIRON_KEY)
            if request_id:
                record.request_id = request_id
        return True


def make_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A stderr handler with the ``fmt`` ("json" or "text") formatter and our filters."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler._feedback360 = True  # type: ignore[attr-defined]
    return handler


def configure(fmt: str, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every logger's lines through one handler in ``fmt``; for process entry points.

    Replaces a handler an earlier call installed (not one someone else configured).
    Huey's per-task lines are dropped: our job lines say the same, once.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_feedback360", False)]:
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, stream))
    root.setLevel(level)
    logging.getLogger("webapp").removeHandler(default_handler)  # Flask's, if it added it
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(level)  # start-up and shutdown lines
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # RequestLogMiddleware logs
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # a line per PDF step


def configure_from_env() -> None:
    """:func:`configure` from LOG_FORMAT and LOG_LEVEL (before any app exists)."""
    settings = log_settings()
    configure(settings["LOG_FORMAT"], settings["LOG_LEVEL"])


# -- requests ---------------------------------------------------------------------------


def request_id_for(environ: dict[str, Any]) -> str:
    """The caller's X-Request-ID when it is tame, else a fresh random one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if _VALID_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """WSGI middleware: issues or honours X-Request-ID, logs one line per request.

    The line is written when the response has been sent (its iterable closed), so the
    duration includes streaming the body. No client address, no query string, and the
    path has link tokens redacted.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        request_id = request_id_for(environ)
        environ[ENVIRON_KEY] = request_id
        started = time.perf_counter()
        status: list[int] = [500]

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None):
            status[0] = int(code.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(code, headers, exc_info)

        def done() -> None:
            log_request(environ, status[0], time.perf_counter() - started, request_id)

        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        return ClosingIterator(body, [done])


def log_request(environ: dict[str, Any], status: int, seconds: float, request_id: str) -> None:
    path = redact_links(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD", "-")
    duration_ms = round(seconds * 1000, 1)
    quiet = path in QUIET_PATHS and status < 400
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s %s %s %.1fms",
        method,
        path,
        status,
        duration_ms,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
        },
    )


def init_app(app: Flask) -> None:
    """Wrap ``app`` so every request gets an id and a log line."""
    app.wsgi_app = RequestLogMiddleware(app.wsgi_app)  # type: ignore[method-assign]


# -- jobs -------------------------------------------------------------------------------


def log_job(
    task: str, task_id: str, seconds: float, error: BaseException | None, result: Any = None
) -> None:
    """One line per finished background job: name, duration, outcome (never its data)."""
    fields: dict[str, Any] = {
        "task": task,
        "task_id": task_id,
        "duration_ms": round(seconds * 1000, 1),
        "outcome": "ok" if error is None else "error",
    }
    if error is not None:
        fields["error"] = type(error).__name__
    if isinstance(result, dict):
        fields["result"] = result
    job_log.log(
        logging.INFO if error is None else logging.WARNING,
        "job %s %s in %.1fms",
        task,
        fields["outcome"],
        fields["duration_ms"],
        extra=fields,
    )


# -- gunicorn ---------------------------------------------------------------------------


class GunicornLogger(_GunicornBaseLogger):
    """gunicorn's logger in our format (``--logger-class webapp.logs.GunicornLogger``).

    gunicorn's own access log stays off: :class:`RequestLogMiddleware` in the app writes
    the request lines, the same under gunicorn as under ``feedback360 serve``. Root
    logging is configured here, in the master, so forked workers inherit it.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        settings = log_settings()
        configure(settings["LOG_FORMAT"], settings["LOG_LEVEL"])
        for handler in self.error_log.handlers:
            handler.setFormatter(
                JsonFormatter() if settings["LOG_FORMAT"] == "json" else TextFormatter()
            )

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """No second line per request: the app logged it, with its request id."""
