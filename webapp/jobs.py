"""Background work on Huey: outbox delivery, scheduled reminders, closing due cycles.

The queue lives in SQLite in the instance folder by default; ``QUEUE_URL=redis://…``
moves it to Redis; ``memory://`` runs tasks inline (tests).

Mail goes out only after the transaction that wrote it has committed: a session hook
notes new outbox rows and, after the commit, enqueues :func:`deliver_outbox`. The
minute :func:`tick` retries whatever that missed (queue down, SMTP down, a crash).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.consumer import Consumer
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from redis import ConnectionPool
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from surveys import audit, cycles, releases
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, OutboxMessage, User
from surveys.outbox import DeliveryReport, deliver_pending
from webapp import logs
from webapp.config import ConfigError
from webapp.extensions import db
from webapp.mail import SmtpTransport, redact

log = logging.getLogger(__name__)

huey = Huey("feedback360", results=False, storage_class=MemoryStorage)
_app: Flask | None = None

#: PostgreSQL advisory lock held by the one tick that may run the schedule at a time.
TICK_LOCK_KEY = 0x0F360_71C
#: Redis socket timeouts (seconds): a request that queues mail must not hang on a Redis
#: that stopped answering. Reads wait longer than the consumer's 1 s blocking pop.
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 5.0


def configure_queue(url: str) -> None:
    """Point the queue at ``url``: ``sqlite:///path``, ``redis://…`` or ``memory://``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative.db or sqlite:////absolute/path.db, as in SQLAlchemy URLs
        path = parts.path.removeprefix("/")
        if not path:
            raise ValueError(f"QUEUE_URL {url!r} names no file: use sqlite:///path/to/queue.db")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        storage: Any = SqliteStorage(huey.name, filename=path)
    elif parts.scheme in ("redis", "rediss", "unix"):
        pool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
        )
        storage = RedisStorage(huey.name, connection_pool=pool)
    elif parts.scheme != "memory":
        raise ValueError(
            f"QUEUE_URL must be sqlite:///…, redis://… or memory://, not {redact(url)!r}"
        )
    huey.storage.close()
    huey.immediate = parts.scheme == "memory"  # (re)creates a MemoryStorage when it changes
    if not huey.immediate:
        huey.storage = storage


def ping_queue() -> None:
    """Raise unless the queue's storage answers (for /healthz): Redis PING, or the SQLite
    file opens read-write and has Huey's tables. An inline queue always answers."""
    storage = huey.storage
    if huey.immediate:
        return
    if isinstance(storage, RedisStorage):
        storage.conn.ping()
    elif isinstance(storage, SqliteStorage):
        uri = Path(storage.filename).resolve().as_uri() + "?mode=rw"
        with closing(sqlite3.connect(uri, uri=True, timeout=2)) as conn:
            conn.execute("SELECT count(*) FROM task").fetchone()


def init_app(app: Flask) -> None:
    """Bind the jobs to ``app``; a malformed QUEUE_URL or MAIL_URL stops start-up here."""
    global _app
    try:
        configure_queue(app.config["QUEUE_URL"])
        if app.config["MAIL_URL"]:
            SmtpTransport.from_url(app.config["MAIL_URL"], app.config["MAIL_FROM"])
    except ValueError as error:
        raise ConfigError(str(error)) from error
    _app = app


# -- after-commit delivery -------------------------------------------------------------


@event.listens_for(Session, "after_flush")
def _note_new_mail(session, flush_context):
    if any(isinstance(obj, OutboxMessage) for obj in session.new):
        session.info["outbox_dirty"] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_mail(state):
    # Bulk launches insert outbox rows through Core-style statements, not session.add().
    table = getattr(state.statement, "table", None) if state.is_insert else None
    if table is not None and table.name == OutboxMessage.__tablename__:
        state.session.info["outbox_dirty"] = True


@event.listens_for(Session, "after_rollback")
def _forget_mail(session):
    session.info.pop("outbox_dirty", None)


@event.listens_for(Session, "after_commit")
def _kick_delivery(session):
    # Mail goes out only after the transaction that wrote it has committed.
    if session.info.pop("outbox_dirty", False) and _app is not None:
        try:
            deliver_outbox()
        except Exception:  # the queue being down must never fail the user's request
            log.exception("could not queue outbox delivery; the periodic tick will retry")


# -- delivery ----------------------------------------------------------------------------


def transport() -> SmtpTransport | None:
    """The SMTP transport MAIL_URL describes, or None when mail stays in the outbox."""
    config = current_app.config
    if not config["MAIL_URL"]:
        return None
    return SmtpTransport.from_url(config["MAIL_URL"], config["MAIL_FROM"])


def deliver_now() -> DeliveryReport | None:
    """Deliver due messages in this process (needs an app context); None without MAIL_URL."""
    smtp = transport()
    if smtp is None:
        return None
    config = current_app.config
    with Session(db.engine) as session, smtp.connect() as send:
        return deliver_pending(
            session,
            send,
            batch=config.get("OUTBOX_BATCH", 50),
            claim_for=timedelta(seconds=config.get("OUTBOX_CLAIM_SECONDS", 600)),
        )


def send_outbox_now() -> int:
    """Deliver due messages in this process (needs an app context). Returns how many sent."""
    report = deliver_now()
    return report.sent if report else 0


def _app_context():
    # Inline (immediate) tasks run inside the caller's context; worker threads need one.
    if has_app_context():
        return nullcontext()
    if _app is None:
        raise RuntimeError("jobs.init_app(app) was not called")
    return _app.app_context()


@huey.task()
def deliver_outbox() -> dict[str, int]:
    """Send due outbox rows; the counts go into this job's log line."""
    with _app_context():
        report = deliver_now()
    if report is None:
        return {"sent": 0}
    return {"sent": report.sent, "failed": report.failed, "gave_up": report.gave_up}


#: What HR reads when a background release failed for a reason other than the cycle's.
RELEASE_FAILED = (
    "The release failed on the server and nothing was released. Try again; if it fails"
    " again, your administrator will find the error in the worker's log."
)


@huey.task()
def release_reports(cycle_id: int, user_id: int | None) -> dict[str, int]:
    """Carry out the release HR started (:func:`surveys.releases.request_release`).

    Does nothing when no release is waiting (a job delivered twice releases once). The
    release is one transaction: a failure keeps nothing of it and is written on the
    cycle for HR's page (and raised again for this job's log line unless it is the
    cycle's own, a DomainError). Returns the counts for the log line.
    """
    with _app_context(), Session(db.engine) as session:
        cycle = session.get(Cycle, cycle_id)
        if cycle is None or cycle.release_started_at is None or cycle.state != CycleState.CLOSED:
            return {"reports": 0}
        actor = session.get(User, user_id) if user_id is not None else None
        try:
            summary = releases.release_cycle(
                session, cycle, base_url=current_app.config["BASE_URL"]
            )
            counts = {"reports": summary.reports, "emails": summary.emails, "held": summary.held}
            audit.record(
                session,
                actor or "system",
                "cycle.release",
                f"cycle {cycle.id} {cycle.name}",
                counts,
            )
            session.commit()
        except DomainError as error:
            _release_failed(session, cycle_id, f"Nothing was released: {error}.")
            return {"reports": 0}
        except Exception:
            _release_failed(session, cycle_id, RELEASE_FAILED)
            raise
    return counts


def _release_failed(session: Session, cycle_id: int, reason: str) -> None:
    session.rollback()
    releases.abandon_release(session, cycle_id, reason)
    session.commit()


def _schedule_lock(session: Session) -> bool:
    """Whether this tick may run the schedule (so several workers never remind twice).

    PostgreSQL: a transaction-scoped advisory lock, released on commit or crash.
    SQLite runs one writer at a time, and a second tick finds the reminders already done.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    query = text("SELECT pg_try_advisory_xact_lock(:key)")
    return bool(session.scalar(query, {"key": TICK_LOCK_KEY}))


@huey.periodic_task(crontab(minute="*"))
def tick() -> dict[str, int]:
    """Every minute: close cycles past their date, send due reminders, retry due mail.

    Returns the counts for this job's log line.
    """
    result: dict[str, int] = {}
    with _app_context():
        with Session(db.engine) as session:
            try:
                if _schedule_lock(session):
                    result = cycles.run_schedule(session, base_url=current_app.config["BASE_URL"])
                    session.commit()
                    if any(result.values()):
                        log.info("schedule: %s", result)
            except Exception:  # one bad cycle must not stop the mail below
                session.rollback()
                log.exception("the scheduled run failed; it is retried next minute")
        result["sent"] = send_outbox_now()
    return result


# -- one log line per job ----------------------------------------------------------------

#: Start times by task id (worker threads finish jobs in any order).
_started: dict[str, float] = {}


@huey.pre_execute()
def _job_started(task) -> None:
    _started[task.id] = time.perf_counter()


@huey.post_execute()
def _job_finished(task, value, error) -> None:
    started = _started.pop(task.id, None)
    seconds = time.perf_counter() - started if started is not None else 0.0
    logs.log_job(task.name, task.id, seconds, error, value)


# -- consumers ---------------------------------------------------------------------------


def create_consumer(*, workers: int = 2, periodic: bool = True, embedded: bool = False):
    """A Huey consumer with ``workers`` threads for this process's app.

    ``embedded`` consumers (inside ``serve``) leave the process's signal handlers alone,
    so Ctrl-C still reaches the web server; start one with ``.start()`` and end it with
    ``.stop(graceful=True)``. A standalone consumer blocks in ``.run()``.
    """
    if huey.immediate:
        raise RuntimeError(
            "QUEUE_URL=memory:// runs tasks inline, there is nothing to consume;"
            " use sqlite:///path/to/queue.db or redis://host:6379/0"
        )
    consumer: Consumer = huey.create_consumer(
        workers=workers,
        periodic=periodic,
        worker_type="thread",
        initial_delay=0.1,
        max_delay=2.0,  # an email launched from the browser goes out within seconds
        shutdown_timeout=10.0,
    )
    if embedded:
        # Huey installs SIGINT/SIGTERM handlers meant for its own main loop, which
        # an embedded consumer doesn't run; keep the web server's handlers instead.
        consumer._set_signal_handlers = lambda: None  # type: ignore[method-assign]
    return consumer


def describe_queue(url: str) -> str:
    """QUEUE_URL fit for printing (password hidden)."""
    return redact(url)
