"""Fixtures: an app per database backend (SQLite always, PostgreSQL when reachable).

Database tests run once per backend: ``[sqlite]`` and ``[postgresql]`` in their ids.
PostgreSQL is used when ``TEST_DATABASE_URL`` points at a server (a scratch database
``<name>_feedback360_<pid>`` is created on it and dropped at the end); otherwise those
runs skip and say why.
"""

from __future__ import annotations

import os
import socket
import threading

import flask_migrate
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from surveys.db import Base
from webapp import create_app
from webapp.extensions import db, limiter

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "QUEUE_URL": "memory://",
    "MAIL_URL": "",
    "BASE_URL": "http://localhost",
    "WTF_CSRF_ENABLED": False,
    "SERVER_NAME": "localhost",
}


def _postgres_url() -> tuple[str | None, str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None, "TEST_DATABASE_URL is not set (point it at a PostgreSQL server)"
    base = make_url(url)
    # One scratch database per test run, so two runs on one server never collide.
    name = f"{base.database or 'test'}_feedback360_{os.getpid()}"
    try:
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except sa.exc.OperationalError as error:
        return None, f"PostgreSQL at {base.render_as_string()} unreachable: {error.orig}"
    return base.set(database=name).render_as_string(hide_password=False), ""


def redis_url() -> tuple[str | None, str]:
    """``TEST_REDIS_URL`` if a Redis server answers there, else ``None`` and why."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        return None, "TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return None, f"Redis at {url} unreachable: {error}"
    return url, ""


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    url, reason = _postgres_url()
    if url is None:
        pytest.skip(reason)
    yield url
    scratch = make_url(url)
    server = sa.create_engine(
        make_url(os.environ["TEST_DATABASE_URL"]), isolation_level="AUTOCOMMIT"
    )
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
    server.dispose()


@pytest.fixture(scope="session")
def _app(database_url, tmp_path_factory):
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(_app):
    """The app with an empty database; every table is emptied after the test."""
    saved = dict(_app.config)
    with _app.app_context():
        limiter.reset()
    yield _app
    _app.config.clear()
    _app.config.update(saved)
    with _app.app_context():
        db.session.remove()
        _empty_tables()
        limiter.reset()  # rate-limit counters live as long as the session's app


def _empty_tables() -> None:
    tables = list(Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())


@pytest.fixture
def session(app):
    """``db.session`` inside an app context (services take a plain SQLAlchemy session)."""
    with app.app_context():
        yield db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class _SmtpSink:
    """aiosmtpd handler keeping every message; ``reject`` holds addresses to refuse (550)."""

    def __init__(self):
        self.envelopes = []
        self.peers = []  # (host, port) of the client connection of each message
        self.reject: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(envelope)
            self.peers.append(session.peer)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 for tests; ``stop()``/``start()`` simulate an outage."""

    def __init__(self, port: int):
        self.port = port
        self.sink = _SmtpSink()
        self.url = f"smtp://127.0.0.1:{port}?tls=off"
        self._controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list:
        """Received messages as ``email.message.EmailMessage`` objects, in arrival order."""
        import email
        import email.policy

        with self.sink.lock:
            envelopes = list(self.sink.envelopes)
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in envelopes]

    @property
    def recipients(self) -> list[str]:
        with self.sink.lock:
            return [address for e in self.sink.envelopes for address in e.rcpt_tos]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A running local SMTP server that stores what it receives (``.messages``, ``.url``)."""
    server = SmtpServer(_free_port())
    server.start()
    yield server
    server.stop()
