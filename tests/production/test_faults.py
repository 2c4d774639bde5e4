"""Issue #6 §3: faults, each a test. Nothing lost, nothing twice, the rater never stranded.

(a) the SMTP server goes down and comes back; (b) a worker process is killed mid-batch;
(c) the database connection drops in the middle of a submit; (d) Redis is down;
(e) the process restarts in the middle of a cycle's reminder schedule.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from surveys import responses
from surveys.db import utcnow
from surveys.models import (
    AccessToken,
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Draft,
    Employee,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Relationship,
    Response,
)
from surveys.outbox import claim_due, deliver_pending
from surveys.tokens import hash_token
from tests import factories as f
from tests.conftest import TEST_CONFIG
from tests.production.conftest import closed_port, outbox_counts, queue_emails, wait_for
from webapp import create_app, jobs
from webapp.extensions import db
from webapp.mail import SmtpTransport


def rows(session) -> dict[str, OutboxMessage]:
    session.expire_all()
    return {m.to_address: m for m in session.scalars(select(OutboxMessage))}


def exactly_once(smtp, addresses) -> None:
    received = Counter(smtp.recipients)
    assert set(received) == set(addresses)
    assert {a: n for a, n in received.items() if n != 1} == {}, "each exactly once"


# -- (a) SMTP down, then back -----------------------------------------------------------


def test_smtp_down_then_back_retries_with_backoff_and_sends_each_once(
    app, session, smtp_server, caplog
):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.stop()
    started = utcnow()

    # The commit hands delivery to the (inline) queue: the server is down.
    with caplog.at_level(logging.WARNING, logger="surveys.outbox"):
        addresses = queue_emails(session, 6)
    first = rows(session)[addresses[0]]
    assert first.attempts == 1
    assert first.body is not None, "nothing lost"
    assert started + timedelta(seconds=59) < first.next_attempt_at
    assert first.next_attempt_at < utcnow() + timedelta(seconds=61), "retried after a minute"
    assert [r.attempts for r in rows(session).values()].count(0) == 5, "the rest not charged"
    assert "Connection refused" in caplog.text
    assert "@ex.org" not in caplog.text, "no recipient in the log"

    # A minute later the server is still down: the next try waits two minutes.
    transport = SmtpTransport.from_url(smtp_server.url, app.config["MAIL_FROM"])
    clock = utcnow() + timedelta(minutes=1, seconds=1)
    with Session(db.engine) as other, transport.connect() as send:
        report = deliver_pending(other, send, now=lambda: clock)
    assert report.sent == 0
    assert report.error is not None
    first = rows(session)[addresses[0]]
    assert first.attempts == 2
    assert first.next_attempt_at == clock + timedelta(minutes=2)

    # Back up: the minute tick sends what is due now; the backed-off one keeps its time.
    smtp_server.start()
    jobs.tick.call_local()
    assert sorted(smtp_server.recipients) == sorted(addresses[1:])
    with Session(db.engine) as other, transport.connect() as send:
        later = clock + timedelta(minutes=2, seconds=1)
        assert deliver_pending(other, send, now=lambda: later).sent == 1
        assert deliver_pending(other, send, now=lambda: later).sent == 0
    jobs.tick.call_local()

    exactly_once(smtp_server, addresses)
    assert outbox_counts(session) == {OutboxStatus.SENT: 6}
    assert all(r.body is None for r in rows(session).values())


# -- (b) a worker killed mid-batch ------------------------------------------------------


@pytest.mark.slow
def test_a_killed_workers_claimed_rows_are_sent_once_after_its_lease(
    app, session, gated_smtp, shared_queue, start_worker
):
    lease = {"OUTBOX_CLAIM_SECONDS": "6", "OUTBOX_BATCH": "50"}
    worker = start_worker(gated_smtp.url, "--workers", "1", "--no-periodic", **lease)
    wait_for(worker.ready, timeout=90, what="the first worker")
    gated_smtp.sink.hold.add("r03@ex.org")  # the server will not answer for this one

    addresses = queue_emails(session, 12)  # the commit queues the delivery job
    assert gated_smtp.sink.held.wait(timeout=60), "the worker reached the held message"
    assert sorted(gated_smtp.recipients) == addresses[:3]
    worker.kill()  # SIGKILL in the middle of its batch, waiting on the server

    by_address = rows(session)
    assert [by_address[a].status for a in addresses[:3]] == [OutboxStatus.SENT] * 3
    leased = [by_address[a] for a in addresses[3:]]
    assert all(r.status == OutboxStatus.PENDING and r.claimed_until for r in leased)
    lease_ends = min(r.claimed_until for r in leased)
    # Until the lease has passed nobody else may take them …
    assert claim_due(session, lease_ends - timedelta(microseconds=1), 50)[0] == []
    gated_smtp.sink.hold.clear()  # the dead worker's connection gets its answer

    # … then a new worker's next tick sends each of them once.
    other = start_worker(gated_smtp.url, "--workers", "1", "--no-periodic", **lease)
    wait_for(other.ready, timeout=90, what="the second worker")
    wait_for(lambda: utcnow() > max(r.claimed_until for r in leased), timeout=15, what="lease")
    jobs.tick()  # what the minute tick enqueues
    wait_for(
        lambda: outbox_counts(session).get(OutboxStatus.SENT) == 12,
        timeout=60,
        what="every email sent",
    )
    exactly_once(gated_smtp, addresses)
    # The job's log line is written after its last commit: wait for it too.
    wait_for(lambda: other.jobs("tick"), timeout=30, what="the tick's log line")
    assert sum(j["result"]["sent"] for j in other.jobs("tick")) == 9, "by the new worker"


# -- (c) the database connection dropped mid-submit --------------------------------------


@pytest.fixture
def rating_link(session):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team)
    return cycle, f.token_for(session, team[0], "peer", rater=team[1])


def _answer_everything(client, link, cycle) -> None:
    bank = responses.cycle_bank(cycle)
    for index, competency in enumerate(bank.competencies):
        data = {f"r:{item.id}": "4" for item in competency.items}
        reply = client.post(f"/s/{link}", data={"section": str(index), "action": "next", **data})
        assert reply.status_code == 302


def _submit(client, link, cycle):
    last = len(responses.cycle_bank(cycle).competencies)
    return client.post(f"/s/{link}", data={"section": str(last), "action": "submit"})


def _assignment(session, link) -> Assignment:
    session.expire_all()
    token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(link)))
    return token.assignment


@pytest.mark.postgres
def test_a_connection_dropped_mid_submit_keeps_the_draft_and_stores_nothing(
    postgres_app, session, client, rating_link
):
    cycle, link = rating_link
    _answer_everything(client, link, cycle)
    draft_before = dict(session.get(Draft, _assignment(session, link).id).answers)
    # Autocommit: pg_stat_activity is a snapshot per transaction, so polling it inside one
    # transaction would never see the backend go.
    killer = sa.create_engine(
        postgres_app.config["SQLALCHEMY_DATABASE_URI"],
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    dropped: list[int] = []

    def drop_connection(conn, cursor, statement, parameters, context, executemany):
        """Just before the response is written (the assignment already moved to
        submitted in this transaction), the server ends this session's backend."""
        if dropped or not statement.startswith("INSERT INTO responses"):
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with killer.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            gone = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            wait_for(lambda: admin.execute(gone, {"pid": pid}).scalar() == 0, timeout=10)
        dropped.append(pid)

    event.listen(db.engine, "before_cursor_execute", drop_connection)
    try:
        reply = _submit(client, link, cycle)
    finally:
        event.remove(db.engine, "before_cursor_execute", drop_connection)
        killer.dispose()

    assert dropped, "the connection was really terminated"
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "5"
    assert "We couldn't save that just now" in reply.get_data(as_text=True)
    assert "terminat" not in reply.get_data(as_text=True), "no database detail shown"
    assignment = _assignment(session, link)
    assert assignment.status == AssignmentStatus.IN_PROGRESS, "the claim was rolled back"
    assert session.get(Draft, assignment.id).answers == draft_before, "draft kept"
    assert session.scalar(select(func.count()).select_from(Response)) == 0, "nothing partial"

    retry = _submit(client, link, cycle)  # a fresh connection from the pool
    assert retry.status_code == 302
    assert _assignment(session, link).status == AssignmentStatus.SUBMITTED
    assert session.scalar(select(func.count()).select_from(Response)) == 1


# -- (d) Redis down ---------------------------------------------------------------------


@pytest.mark.redis
def test_redis_down_the_app_still_accepts_submissions_and_mail_follows_later(
    app, session, client, smtp_server, redis_queue, caplog
):
    app.config["MAIL_URL"] = smtp_server.url
    app.config["QUEUE_URL"] = f"redis://127.0.0.1:{closed_port()}/15"
    jobs.init_app(app)  # Redis is down

    with caplog.at_level(logging.ERROR, logger="webapp.jobs"):
        _, team = f.team(session, 4)
        cycle = f.launched(session, team)  # its commit cannot queue the delivery job
        link = f.token_for(session, team[0], "peer", rater=team[1])
    assert "could not queue outbox delivery" in caplog.text
    invitations = {m.to_address for m in session.scalars(select(OutboxMessage))}
    assert invitations, "the invitations wait in the outbox"
    assert outbox_counts(session) == {OutboxStatus.PENDING: len(invitations)}

    _answer_everything(client, link, cycle)
    assert _submit(client, link, cycle).status_code == 302
    assert "Thank you" in client.get(f"/s/{link}").get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Response)) == 1
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json == {"status": "unavailable", "database": "ok", "queue": "unavailable"}

    # Redis returns: the worker's next tick sends everything that waited, once.
    app.config["QUEUE_URL"] = redis_queue
    jobs.init_app(app)
    assert client.get("/healthz").status_code == 200
    consumer = jobs.create_consumer(workers=1, periodic=False, embedded=True)
    consumer.start()
    try:
        jobs.tick()  # what the consumer's scheduler enqueues every minute
        wait_for(
            lambda: outbox_counts(session).get(OutboxStatus.SENT) == len(invitations),
            what="the invitations sent",
        )
    finally:
        consumer.stop(graceful=True)
    exactly_once(smtp_server, invitations)


# -- (e) restarted mid-cycle ------------------------------------------------------------


def _open_cycle(session) -> Assignment:
    """An open cycle with one unanswered peer assignment, invited four days ago."""
    ada = Employee(external_id="E1", name="Ada Lind", email="ada@ex.org")
    bo = Employee(external_id="E2", name="Bo Berg", email="bo@ex.org")
    cycle = Cycle(
        name="Spring",
        state=CycleState.OPEN,
        bank_key="pulse",
        bank_version="1",
        bank_snapshot={},
        reminder_interval_days=3,
        max_reminders=2,
    )
    assignment = Assignment(
        cycle=cycle,
        participant=Participant(cycle=cycle, employee=ada),
        rater=bo,
        relationship=Relationship.PEER,
        invited_at=utcnow() - timedelta(days=4),
    )
    session.add(assignment)
    session.commit()
    return assignment


def _restarted(app):
    """A new app instance on the same database: what a restarted process builds."""
    return create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "MAIL_URL": app.config["MAIL_URL"],
        }
    )


def _three_days_pass(session, assignment_id: int) -> None:
    session.expire_all()
    assignment = session.get(Assignment, assignment_id)
    assignment.invited_at -= timedelta(days=3)
    assignment.last_reminded_at -= timedelta(days=3)
    session.commit()


def test_a_restart_mid_cycle_continues_the_reminder_schedule_without_repeats(
    app, session, smtp_server, memory_queue_after
):
    assignment_id = _open_cycle(session).id
    # The first process runs the schedule and dies before sending (no SMTP configured).
    jobs.tick.call_local()
    assert outbox_counts(session) == {OutboxStatus.PENDING: 1}
    assert session.get(Assignment, assignment_id).reminders_sent == 1

    app.config["MAIL_URL"] = smtp_server.url
    for _ in range(2):  # restarted (twice): the due reminder goes out once, no new one
        restarted = _restarted(app)
        with restarted.app_context():
            jobs.tick.call_local()
            jobs.tick.call_local()
            db.engine.dispose()
    assert smtp_server.recipients == ["bo@ex.org"]
    session.expire_all()
    assert session.get(Assignment, assignment_id).reminders_sent == 1

    _three_days_pass(session, assignment_id)
    with _restarted(app).app_context():
        jobs.tick.call_local()
        jobs.tick.call_local()
        db.engine.dispose()
    assert smtp_server.recipients == ["bo@ex.org"] * 2, "the second reminder, once"

    _three_days_pass(session, assignment_id)
    with _restarted(app).app_context():
        jobs.tick.call_local()
        db.engine.dispose()
    assert smtp_server.recipients == ["bo@ex.org"] * 2, "max_reminders=2 holds across restarts"
    session.expire_all()
    assert session.get(Assignment, assignment_id).reminders_sent == 2


def test_redis_down_login_rate_limits_fall_back_to_memory(tmp_path):
    """The limiter's Redis is down: sign-in still answers, and still limits (per process).

    In a subprocess: the limiter is one object per process, bound at create_app."""
    script = f"""
import flask_migrate
from webapp import create_app
app = create_app({{
    "SQLALCHEMY_DATABASE_URI": "sqlite:///{tmp_path / "limits.db"}",
    "QUEUE_URL": "memory://",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:{closed_port()}/0",
    "WTF_CSRF_ENABLED": False,
    "TESTING": True,
}})
with app.app_context():
    flask_migrate.upgrade()
client = app.test_client()
form = {{"email": "hr@ex.org", "password": "wrong password 123"}}
print(" ".join(str(client.post("/admin/login", data=form).status_code) for _ in range(7)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200"] * 5 + ["429"] * 2
