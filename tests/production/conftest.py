"""Fixtures for the production profile: real worker processes, Redis, a gated SMTP server.

Worker processes are ``feedback360 worker`` subprocesses on the test's database; their
JSON log lines go to a file per process (``Worker.lines()``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from surveys.models import OutboxMessage, OutboxStatus
from tests.conftest import SmtpServer, _free_port, _SmtpSink, redis_url
from webapp import jobs

FEEDBACK360 = Path(sys.executable).with_name("feedback360")


def wait_for(condition, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    return _free_port()


@pytest.fixture
def memory_queue_after(app):
    """Give the shared Huey instance back to the test app's inline queue afterwards."""
    yield
    jobs.configure_queue("memory://")
    jobs._app = app  # a test may have built another app instance on the same database


@pytest.fixture
def redis_queue(app, memory_queue_after):
    """The app's queue in real Redis (TEST_REDIS_URL), emptied before and after."""
    url, reason = redis_url()
    if url is None:
        pytest.skip(reason)
    app.config["QUEUE_URL"] = url
    jobs.init_app(app)
    jobs.huey.flush()
    yield url
    jobs.configure_queue(url)  # the test may have pointed it elsewhere
    jobs.huey.flush()


@pytest.fixture
def shared_queue(app, tmp_path, memory_queue_after):
    """A queue other processes can share: Redis when reachable, else a SQLite file."""
    url, _ = redis_url()
    app.config["QUEUE_URL"] = url or f"sqlite:///{tmp_path / 'queue.db'}"
    jobs.init_app(app)
    jobs.huey.flush()
    yield app.config["QUEUE_URL"]
    jobs.huey.flush()


@pytest.fixture
def postgres_app(app):
    """The app, on PostgreSQL only (the [sqlite] run skips with a reason)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("needs PostgreSQL (FOR UPDATE SKIP LOCKED, real connections)")
    return app


def outbox_counts(session) -> dict[OutboxStatus, int]:
    session.expire_all()
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {OutboxStatus(status): n for status, n in rows}


def queue_emails(session, count: int, prefix: str = "r") -> list[str]:
    """``count`` committed invitation rows to ``{prefix}NN@ex.org``; returns the addresses."""
    addresses = [f"{prefix}{n:02d}@ex.org" for n in range(count)]
    session.add_all(
        OutboxMessage(
            kind="invite",
            to_address=address,
            to_name=f"Rater {n}",
            subject="Your feedback is requested",
            body=f"http://localhost/s/{'t' * 40}{n:03d}",
        )
        for n, address in enumerate(addresses)
    )
    session.commit()
    return addresses


# -- worker processes --------------------------------------------------------------------


class Worker:
    """A ``feedback360 worker`` subprocess; its stderr (JSON log lines) goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(FEEDBACK360), "worker", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )

    def lines(self) -> list[dict]:
        """The JSON log lines written so far (anything else is skipped)."""
        found = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def jobs(self, task: str = "deliver_outbox") -> list[dict]:
        return [line for line in self.lines() if line.get("task", "").endswith(task)]

    def ready(self) -> bool:
        return any("consumer started" in line.get("message", "") for line in self.lines())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(app, tmp_path):
    """Factory: start a worker process on the test's database and queue (stopped after)."""
    if not FEEDBACK360.exists():
        pytest.skip(f"{FEEDBACK360} not installed (pip install -e .)")
    started: list[Worker] = []

    def start(mail_url: str, *args: str, **settings: str) -> Worker:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "FEEDBACK360_ENV": "development",
            "LOG_FORMAT": "json",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "QUEUE_URL": app.config["QUEUE_URL"],
            "MAIL_URL": mail_url,
            "BASE_URL": "http://localhost",
            **settings,
        }
        worker = Worker(env, tmp_path / f"worker-{len(started)}.log", *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


# -- SMTP --------------------------------------------------------------------------------


class GatedSink(_SmtpSink):
    """Stores messages like the shared sink, but can hold one recipient's RCPT (the worker
    then waits for the answer, mid-batch) and can slow every message down."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.held = threading.Event()
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.hold:
            self.held.set()
            while address in self.hold:
                await asyncio.sleep(0.05)
            return "451 4.3.0 try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def gated_smtp():
    """A running local SMTP server with a :class:`GatedSink`."""
    server = SmtpServer(_free_port())
    server.sink = GatedSink()
    server.start()
    yield server
    server.sink.hold.clear()
    server.stop()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
