"""The Huey queue: QUEUE_URL, tasks through SQLite and real Redis, the tick, serve, worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import select, text

from surveys import banks, cycles
from surveys.db import utcnow
from surveys.models import (
    Assignment,
    Cycle,
    CycleState,
    Employee,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Relationship,
)
from tests.conftest import redis_url as _redis_url
from webapp import create_app, jobs
from webapp.cli.serve import build_server, start_embedded_worker
from webapp.config import ConfigError
from webapp.extensions import db

FEEDBACK360 = Path(sys.executable).with_name("feedback360")


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def add_message(session, to: str = "bo@ex.org") -> int:
    message = OutboxMessage(
        kind="invite", to_address=to, to_name="Bo", subject="Hi", body="http://localhost/s/x"
    )
    session.add(message)
    session.commit()
    return message.id


@pytest.fixture
def memory_queue_after():
    """Put the shared Huey instance back into immediate mode after the test."""
    yield
    jobs.configure_queue("memory://")


@pytest.fixture
def sqlite_queue(app, tmp_path, memory_queue_after):
    """The app's queue in a SQLite file, as in a default installation."""
    app.config["QUEUE_URL"] = f"sqlite:///{tmp_path / 'queue.db'}"
    jobs.init_app(app)
    return app.config["QUEUE_URL"]


@pytest.fixture
def redis_queue(app, memory_queue_after):
    """The app's queue in real Redis (TEST_REDIS_URL), emptied before and after."""
    url, reason = _redis_url()
    if url is None:
        pytest.skip(reason)
    app.config["QUEUE_URL"] = url
    jobs.init_app(app)
    jobs.huey.flush()
    yield url
    jobs.huey.flush()


# -- QUEUE_URL --------------------------------------------------------------------------


@pytest.mark.usefixtures("memory_queue_after")
@pytest.mark.parametrize(
    ("url", "storage", "path"),
    [
        ("sqlite:///{tmp}/q.db", SqliteStorage, "{tmp}/q.db"),
        ("sqlite:///{tmp}/nested/dir/q.db", SqliteStorage, "{tmp}/nested/dir/q.db"),
        ("redis://:secret@127.0.0.1:6390/3", RedisStorage, None),
        ("rediss://cache.example.org:6380/0", RedisStorage, None),
        ("memory://", MemoryStorage, None),
    ],
)
def test_queue_url_selects_the_storage(url, storage, path, tmp_path):
    jobs.configure_queue(url.format(tmp=tmp_path))
    assert isinstance(jobs.huey.storage, storage)
    assert jobs.huey.immediate is (storage is MemoryStorage)
    if path:
        assert Path(path.format(tmp=tmp_path)).is_file()


def test_relative_sqlite_queue_path_is_relative_to_the_working_directory(
    tmp_path, monkeypatch, memory_queue_after
):
    monkeypatch.chdir(tmp_path)
    jobs.configure_queue("sqlite:///queue.db")
    assert (tmp_path / "queue.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("amqp://guest:hunter2@rabbit/", "must be sqlite:///…, redis://… or memory://"),
        ("sqlite://", "names no file"),
        ("", "must be sqlite"),
    ],
)
def test_bad_queue_url_is_refused_without_showing_the_password(url, message):
    with pytest.raises(ValueError, match=message) as caught:
        jobs.configure_queue(url)
    assert "hunter2" not in str(caught.value)
    assert jobs.huey.immediate, "the previous queue is kept"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("QUEUE_URL", "amqp://rabbit/", "QUEUE_URL must be"),
        ("MAIL_URL", "smtp://mail.ex.org?tls=sometimes", "tls must be one of"),
    ],
)
def test_bad_urls_stop_start_up(setting, value, message):
    with pytest.raises(ConfigError, match=message):
        create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "QUEUE_URL": "memory://",
                "MAIL_URL": "",
                setting: value,
            }
        )


# -- tasks through a real queue ---------------------------------------------------------


def test_commit_enqueues_delivery_in_sqlite_and_the_task_sends(
    app, session, smtp_server, sqlite_queue
):
    app.config["MAIL_URL"] = smtp_server.url
    assert jobs.huey.pending_count() == 0

    message_id = add_message(session)
    assert jobs.huey.pending_count() == 1
    assert smtp_server.messages == [], "sent by the worker, not by the request"

    session.add(OutboxMessage(kind="x", to_address="no@ex.org", subject="-", body="-"))
    session.rollback()
    assert jobs.huey.pending_count() == 1, "a rolled-back transaction queues nothing"

    task = jobs.huey.dequeue()
    assert task.name.endswith("deliver_outbox")
    jobs.huey.execute(task)
    assert smtp_server.recipients == ["bo@ex.org"]
    session.expire_all()
    assert session.get(OutboxMessage, message_id).status == OutboxStatus.SENT


def _consume_and_deliver(app, session, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    consumer = jobs.create_consumer(workers=2, periodic=False, embedded=True)
    consumer.start()
    try:
        add_message(session, "bo@ex.org")
        add_message(session, "cy@ex.org")
        wait_for(lambda: len(smtp_server.recipients) == 2, what="two emails")
    finally:
        consumer.stop(graceful=True)
    assert sorted(smtp_server.recipients) == ["bo@ex.org", "cy@ex.org"]


def test_a_consumer_on_sqlite_delivers_committed_mail(app, session, smtp_server, sqlite_queue):
    _consume_and_deliver(app, session, smtp_server)


@pytest.mark.redis
def test_commit_enqueues_delivery_in_redis_and_the_task_sends(
    app, session, smtp_server, redis_queue
):
    app.config["MAIL_URL"] = smtp_server.url
    add_message(session)
    assert jobs.huey.pending_count() == 1
    jobs.huey.execute(jobs.huey.dequeue())
    assert smtp_server.recipients == ["bo@ex.org"]


@pytest.mark.redis
def test_a_consumer_on_redis_delivers_committed_mail(app, session, smtp_server, redis_queue):
    _consume_and_deliver(app, session, smtp_server)


def test_the_consumer_refuses_an_inline_queue():
    with pytest.raises(RuntimeError, match="memory:// runs tasks inline"):
        jobs.create_consumer()


# -- the tick ---------------------------------------------------------------------------


@pytest.fixture
def open_cycle(session):
    """Factory: an open cycle (built from models, no bank needed) with one unanswered
    peer assignment, invited ``days`` ago."""

    def make(days: int = 4, **settings) -> Assignment:
        ada = Employee(external_id="E1", name="Ada Lind", email="ada@ex.org")
        bo = Employee(external_id="E2", name="Bo Berg", email="bo@ex.org")
        cycle = Cycle(
            name="Spring",
            state=CycleState.OPEN,
            bank_key="pulse",
            bank_version="1",
            bank_snapshot={},
            **settings,
        )
        participant = Participant(cycle=cycle, employee=ada)
        assignment = Assignment(
            cycle=cycle,
            participant=participant,
            rater=bo,
            relationship=Relationship.PEER,
            invited_at=utcnow() - timedelta(days=days),
        )
        session.add(assignment)
        session.commit()
        return assignment

    return make


def test_tick_sends_due_reminders_once(app, session, smtp_server, open_cycle):
    app.config["MAIL_URL"] = smtp_server.url
    assignment = open_cycle(days=4, reminder_interval_days=3)

    jobs.tick.call_local()
    jobs.tick.call_local()  # a minute later: nothing is due again

    assert smtp_server.recipients == ["bo@ex.org"]
    reminder = smtp_server.messages[0]
    assert reminder["Subject"] == "Reminder: feedback for Ada Lind"
    assert re.search(r"http://localhost/s/[\w-]{43}", reminder.get_content())
    session.expire_all()
    assert session.get(Assignment, assignment.id).reminders_sent == 1


def test_tick_closes_cycles_past_their_close_date(session, open_cycle):
    assignment = open_cycle(close_date=date.today() - timedelta(days=2))
    jobs.tick.call_local()
    session.expire_all()
    assert session.get(Cycle, assignment.cycle_id).state == CycleState.CLOSED


def test_a_failing_schedule_still_lets_the_tick_retry_mail(
    app, session, smtp_server, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("bad cycle")

    add_message(session)  # written while no SMTP server was configured
    app.config["MAIL_URL"] = smtp_server.url
    monkeypatch.setattr(cycles, "run_schedule", broken)

    jobs.tick.call_local()

    assert smtp_server.recipients == ["bo@ex.org"]
    assert "scheduled run failed" in caplog.text


def test_only_one_tick_runs_the_schedule_at_a_time_on_postgresql(app, session, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL advisory lock; SQLite serialises writers itself")
    runs = []
    monkeypatch.setattr(cycles, "run_schedule", lambda *a, **k: runs.append(1) or {})
    with db.engine.connect() as other_worker:
        other_worker.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": jobs.TICK_LOCK_KEY}
        )
        jobs.tick.call_local()
        assert runs == [], "the schedule is already running in another worker"
        other_worker.rollback()
    jobs.tick.call_local()
    assert runs == [1]


def test_launching_a_cycle_emails_every_rater_their_links(app, session, smtp_server):
    """The whole path from launch to the rater's inbox."""
    app.config["MAIL_URL"] = smtp_server.url
    boss = Employee(external_id="B", name="Boss", email="boss@ex.org", department="R&D")
    team = [
        Employee(
            external_id=f"T{n}",
            name=f"Team {n}",
            email=f"t{n}@ex.org",
            manager=boss,
            department="R&D",
        )
        for n in range(4)
    ]
    session.add_all([boss, *team])
    session.flush()
    cycle = cycles.create_cycle(
        session,
        name="Spring",
        bank=banks.get_bank("pulse"),
        participants=team[:1],
        settings={"peer_min": 2},
    )
    report = cycles.launch_cycle(session, cycle, base_url="http://localhost")
    session.commit()  # the after-commit hook delivers

    assert len(smtp_server.messages) == report.emails
    links = re.findall(
        r"http://localhost/s/[\w-]{43}", "".join(m.get_content() for m in smtp_server.messages)
    )
    assert len(links) == report.assignments
    assert session.scalars(select(OutboxMessage.body)).all() == [None] * report.emails


# -- serve and worker -------------------------------------------------------------------


def test_serve_parts_answer_http_and_deliver_in_the_background(
    app, session, smtp_server, sqlite_queue
):
    app.config["MAIL_URL"] = smtp_server.url
    server = build_server(app, "127.0.0.1", 0)
    consumer = start_embedded_worker(threads=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/dev/outbox") as page:
            assert page.status == 200
        add_message(session)
        wait_for(lambda: smtp_server.recipients == ["bo@ex.org"], what="the email")
    finally:
        server.shutdown()
        server.server_close()
        consumer.stop(graceful=True)


def test_serve_embeds_no_worker_for_an_inline_queue():
    assert start_embedded_worker(threads=1) is None


def _env(app, smtp_server, queue_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FEEDBACK360_ENV": "development",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "QUEUE_URL": queue_url,
        "MAIL_URL": smtp_server.url,
        "BASE_URL": "http://localhost",
    }


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"did not stop on SIGINT:\n{out}\n{err}") from None
    assert process.returncode == 0, err
    return out, err


@pytest.mark.slow
def test_worker_command_delivers_until_interrupted(app, session, smtp_server, sqlite_queue):
    if not FEEDBACK360.exists():
        pytest.skip(f"{FEEDBACK360} not installed (pip install -e .)")
    process = subprocess.Popen(
        [FEEDBACK360, "worker", "--workers", "2", "--no-periodic"],
        env=_env(app, smtp_server, sqlite_queue),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        add_message(session)  # enqueued into the shared SQLite queue after the commit
        wait_for(lambda: smtp_server.recipients == ["bo@ex.org"], what="the worker's email")
    finally:
        _out, err = _stop(process)
    assert "feedback360 worker: 2 thread(s)" in err
    assert "periodic tick off" in err


@pytest.mark.slow
def test_serve_command_prints_its_url_serves_and_delivers(app, session, smtp_server, tmp_path):
    if not FEEDBACK360.exists():
        pytest.skip(f"{FEEDBACK360} not installed (pip install -e .)")
    queue_url = f"sqlite:///{tmp_path / 'serve-queue.db'}"
    process = subprocess.Popen(
        [FEEDBACK360, "serve", "--port", "0"],
        env=_env(app, smtp_server, queue_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline() for _ in range(4)]  # the URL … the worker
        match = re.match(r"feedback360 on (http://127\.0\.0\.1:\d+)/", banner[0])
        assert match, banner
        assert "background worker: 2 thread(s)" in banner[3]
        with urllib.request.urlopen(match[1] + "/dev/outbox") as page:
            assert page.status == 200
        # Mail written by another process: the embedded worker's minute tick would send
        # it; queue the delivery directly, as the after-commit hook of a request does.
        add_message(session)
        jobs.configure_queue(queue_url)
        try:
            jobs.deliver_outbox()
        finally:
            jobs.configure_queue("memory://")
        wait_for(lambda: smtp_server.recipients == ["bo@ex.org"], what="the embedded worker")
    finally:
        _stop(process)
