"""``/healthz``: is this process able to serve — can it reach the database and the queue?

For load balancers and orchestrators: 200 ``{"status": "ok", "database": "ok",
"queue": "ok"}``, or 503 naming the part that failed. The body never carries a URL,
host or error text (those go to the log); no login, CSRF or rate limit applies.
Each check runs in its own thread with a deadline, so a server that stopped answering
makes the probe fail in seconds instead of hanging it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, Flask, jsonify
from sqlalchemy import Engine, text

from webapp import jobs
from webapp.extensions import csrf, db, limiter

#: Seconds both checks together may take before the probe answers 503.
TIMEOUT = 3.0

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def check_database(engine: Engine) -> None:
    """One round trip on a pooled connection (``SELECT 1``), bounded on PostgreSQL."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 2000"))
        conn.execute(text("SELECT 1")).scalar_one()
        conn.rollback()


def run_checks(checks: dict[str, Callable[[], None]], timeout: float = TIMEOUT) -> dict[str, str]:
    """Run ``checks`` side by side; each name maps to "ok", "unavailable" or "timeout"."""
    results: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="healthz")
    try:
        futures = {name: pool.submit(check) for name, check in checks.items()}
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
                results[name] = "ok"
            except FutureTimeout:
                results[name] = "timeout"
                log.warning("health check %s: no answer within %.0f s", name, timeout)
            except Exception as error:  # any failure means "not healthy", said without detail
                results[name] = "unavailable"
                log.warning("health check %s failed: %s", name, type(error).__name__)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # never wait for a hung check
    return results


@bp.get("/healthz")
@limiter.exempt
def healthz():
    engine = db.engine  # read here: the check threads have no app context
    results = run_checks(
        {"database": lambda: check_database(engine), "queue": jobs.ping_queue},
    )
    healthy = all(value == "ok" for value in results.values())
    body = {"status": "ok" if healthy else "unavailable", **results}
    return jsonify(body), 200 if healthy else 503, {"Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
