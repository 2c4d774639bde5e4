"""Email delivery through a real local SMTP server (aiosmtpd): sending, retries, races."""

from __future__ import annotations

import logging
import re
import smtplib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from surveys.emails import queue_email
from surveys.models import Employee, OutboxMessage, OutboxStatus
from surveys.outbox import (
    CLAIM_FOR,
    MAX_ATTEMPTS,
    TransportUnavailable,
    backoff,
    claim_due,
    deliver_pending,
    requeue_failed,
)
from webapp import jobs
from webapp.extensions import db
from webapp.mail import SmtpTransport, redact

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SENDER = "feedback360 <no-reply@example.org>"
LINK = re.compile(r"http://localhost/s/[\w-]{43}")


class Clock:
    """A settable clock for deliver_pending(now=...)."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def add_invite(session):
    """Factory: queue an invitation email for ``name`` and commit it; returns its id."""

    def add(name: str = "Bo Berg", *, token: str = "A" * 43, commit: bool = True) -> int:
        rater = Employee(external_id=name, name=name, email=f"{name.split()[0].lower()}@ex.org")
        message = queue_email(
            session,
            "invite",
            rater,
            cycle_id=None,
            participant="Ada Lind",
            role="peer",
            cycle="Spring review",
            link=f"http://localhost/s/{token}",
        )
        session.flush()
        message.created_at = T0 - timedelta(minutes=5)
        message.next_attempt_at = T0 - timedelta(minutes=5)
        if commit:
            session.commit()
        return message.id

    return add


def _smtp(server) -> SmtpTransport:
    return SmtpTransport.from_url(server.url, SENDER)


def _deliver(transport, clock=None, *, engine=None, **kw):
    with Session(engine or db.engine) as session, transport.connect() as send:
        return deliver_pending(session, send, now=clock or Clock(), **kw)


def _rows(session) -> dict[int, OutboxMessage]:
    session.expire_all()
    return {m.id: m for m in session.scalars(select(OutboxMessage))}


# -- MAIL_URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://ann%40ex.org:s%3Acret@mail.ex.org",
            {
                "host": "mail.ex.org",
                "port": 587,
                "username": "ann@ex.org",
                "password": "s:cret",
                "starttls": True,
                "require_tls": True,
                "implicit_tls": False,
            },
        ),
        (
            "smtps://mail.ex.org",
            {"port": 465, "implicit_tls": True, "starttls": False, "require_tls": False},
        ),
        (
            "smtp://relay:25",
            {"host": "relay", "port": 25, "starttls": True, "require_tls": False, "username": None},
        ),
        (
            "smtp://127.0.0.1:1025?tls=off&timeout=2.5",
            {"port": 1025, "starttls": False, "require_tls": False, "timeout": 2.5},
        ),
        ("smtp://relay:25?tls=on", {"starttls": True, "require_tls": True}),
    ],
)
def test_mail_url_is_parsed(url, expected):
    transport = SmtpTransport.from_url(url, SENDER)
    assert {key: getattr(transport, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://u:hunter2@mail.ex.org", "must start with smtp:// or smtps://"),
        ("smtp://mail.ex.org?tls=maybe", "tls must be one of auto, on, off"),
        ("smtp://u:hunter2@mail.ex.org:99999", "out of range"),
        ("smtp://mail.ex.org?timeout=soon", "could not convert"),
    ],
)
def test_bad_mail_url_is_refused_without_showing_the_password(url, message):
    with pytest.raises(ValueError, match=message) as caught:
        SmtpTransport.from_url(url, SENDER)
    assert "hunter2" not in str(caught.value)


def test_redact_hides_only_the_password():
    assert redact("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("smtp://ann:pw@host:587") == "smtp://ann:***@host:587"
    assert redact("smtp://host:25") == "smtp://host:25"


def test_email_headers_are_safe_and_stable():
    message = OutboxMessage(
        id=7,
        kind="invite",
        to_address="bo@ex.org",
        to_name="Bo\r\nBcc: evil@ex.org",
        subject="Feedback for\nAda",
        body="Hi\n",
        created_at=T0,
    )
    transport = SmtpTransport.from_url("smtp://127.0.0.1:1?tls=off", SENDER)
    first, again = transport.build(message), transport.build(message)
    assert first["Subject"] == "Feedback for Ada"
    assert first["To"].addresses[0].addr_spec == "bo@ex.org"
    assert "Bcc" not in first
    assert (
        first["Message-ID"]
        == again["Message-ID"]
        == f"<feedback360.7.{int(T0.timestamp())}@example.org>"
    )
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Date"]


def test_backoff_doubles_from_one_minute_and_is_capped():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff(30) == backoff(500) == timedelta(hours=6)


# -- delivery ---------------------------------------------------------------------------


def test_messages_arrive_with_their_link_and_the_body_is_erased(session, smtp_server, add_invite):
    first = add_invite("Bo Berg", token="B" * 43)
    second = add_invite("Cy Dahl", token="C" * 43)

    report = _deliver(_smtp(smtp_server))

    assert (report.sent, report.failed, report.gave_up, report.error) == (2, 0, 0, None)
    received = {m["To"].addresses[0].addr_spec: m for m in smtp_server.messages}
    assert sorted(received) == ["bo@ex.org", "cy@ex.org"]
    assert smtp_server.recipients.count("bo@ex.org") == 1
    bo = received["bo@ex.org"]
    assert bo["Subject"] == "Your feedback for Ada Lind is requested"
    assert bo["From"] == SENDER
    assert LINK.findall(bo.get_content()) == ["http://localhost/s/" + "B" * 43]
    assert len(set(smtp_server.sink.peers)) == 1, "one SMTP connection for the batch"
    for row in _rows(session).values():
        assert row.id in (first, second)
        assert row.status == OutboxStatus.SENT
        assert row.body is None
        assert row.sent_at == T0
        assert row.attempts == 1
        assert row.claimed_until is None


def test_smtp_down_backs_off_and_loses_nothing_then_sends_each_once(
    session, smtp_server, add_invite
):
    first, second = add_invite("Bo Berg"), add_invite("Cy Dahl")
    transport, clock = _smtp(smtp_server), Clock()
    smtp_server.stop()

    report = _deliver(transport, clock)

    assert report.sent == 0
    assert report.failed == 1
    assert "Connection refused" in report.error
    rows = _rows(session)
    assert rows[first].attempts == 1
    assert rows[first].status == OutboxStatus.PENDING
    assert rows[first].next_attempt_at == T0 + timedelta(minutes=1)
    assert "TransportUnavailable" in rows[first].last_error
    assert rows[first].body is not None
    # The rest of the batch is not charged for the outage and is free for the next run.
    assert rows[second].attempts == 0
    assert rows[second].claimed_until is None

    clock.advance(timedelta(seconds=30))  # the first is not due yet; the second is tried
    assert _deliver(transport, clock).failed == 1
    rows = _rows(session)
    assert (rows[first].attempts, rows[second].attempts) == (1, 1)

    smtp_server.start()
    clock.advance(timedelta(seconds=20))  # due: neither (backoff)
    assert _deliver(transport, clock).sent == 0
    clock.advance(timedelta(minutes=1))
    assert _deliver(transport, clock).sent == 2
    assert _deliver(transport, clock).sent == 0

    assert sorted(smtp_server.recipients) == ["bo@ex.org", "cy@ex.org"]
    rows = _rows(session)
    assert all(r.status == OutboxStatus.SENT and r.body is None for r in rows.values())
    assert [r.attempts for r in rows.values()] == [2, 2]


def test_a_refused_recipient_fails_alone_and_is_given_up_after_max_attempts(
    session, smtp_server, add_invite
):
    bad = add_invite("Zed Nobody")
    good = add_invite("Bo Berg")
    smtp_server.sink.reject.add("zed@ex.org")
    transport, clock = _smtp(smtp_server), Clock()

    report = _deliver(transport, clock)
    assert (report.sent, report.failed, report.error) == (1, 1, None)
    assert smtp_server.recipients == ["bo@ex.org"]

    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(backoff(attempt - 1))
        report = _deliver(transport, clock)
        row = _rows(session)[bad]
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert report.failed == 1
            assert row.next_attempt_at == clock.now + backoff(attempt)
    assert report.gave_up == 1
    rows = _rows(session)
    assert rows[bad].status == OutboxStatus.FAILED
    assert "550" in rows[bad].last_error
    assert rows[bad].body is not None, "kept, so it can be retried"
    assert rows[good].attempts == 1
    assert smtp_server.recipients == ["bo@ex.org"]

    # After the address is fixed on the server side, HR requeues and it goes out.
    smtp_server.sink.reject.clear()
    assert requeue_failed(session, now=clock.now) == 1
    session.commit()
    assert _rows(session)[bad].attempts == 0
    assert _deliver(transport, clock).sent == 1
    assert sorted(smtp_server.recipients) == ["bo@ex.org", "zed@ex.org"]


def test_a_password_is_never_sent_without_tls(session, smtp_server, add_invite):
    message_id = add_invite()
    transport = SmtpTransport.from_url(f"smtp://ann:pw@127.0.0.1:{smtp_server.port}", SENDER)

    report = _deliver(transport)

    assert "STARTTLS" in report.error
    assert smtp_server.messages == []
    assert _rows(session)[message_id].status == OutboxStatus.PENDING


def test_plain_smtp_without_credentials_uses_opportunistic_tls(session, smtp_server, add_invite):
    add_invite()
    transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{smtp_server.port}", SENDER)
    assert transport.starttls
    assert not transport.require_tls
    assert _deliver(transport).sent == 1  # the test server offers no STARTTLS


def test_a_dropped_idle_connection_is_reopened(smtp_server):
    transport = _smtp(smtp_server)
    message = OutboxMessage(
        id=1, kind="invite", to_address="bo@ex.org", to_name="Bo", subject="Hi", body="x"
    )
    with transport.connect() as send:
        send(message)
        smtp_server.stop()  # the server goes away between two messages …
        smtp_server.start()
        send(message)  # … and the next send notices and reconnects
    assert len(smtp_server.messages) == 2


def test_transport_errors_are_classified(smtp_server):
    transport = _smtp(smtp_server)
    message = OutboxMessage(
        id=1, kind="invite", to_address="zed@ex.org", to_name="Zed", subject="Hi", body="x"
    )
    smtp_server.sink.reject.add("zed@ex.org")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        transport(message)
    smtp_server.stop()
    with pytest.raises(TransportUnavailable, match=f"127.0.0.1:{smtp_server.port}"):
        transport(message)


# -- several workers --------------------------------------------------------------------


def test_concurrent_deliverers_never_send_a_message_twice(session, smtp_server, add_invite):
    count, workers = 40, 4
    for n in range(count):
        add_invite(f"R{n:02d} Rater", token=f"{n:02d}".ljust(43, "x"))
    transport, engine = _smtp(smtp_server), db.engine
    start = threading.Barrier(workers)
    reports, errors = [], []

    def work():
        try:
            start.wait()
            reports.append(_deliver(transport, engine=engine, batch=3))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sum(r.sent for r in reports) == count
    recipients = smtp_server.recipients
    assert len(recipients) == count
    assert len(set(recipients)) == count, "a message went out twice"
    rows = _rows(session).values()
    assert all(r.status == OutboxStatus.SENT and r.attempts == 1 for r in rows)


def test_a_worker_that_outlived_its_claim_does_not_send_the_row_again(
    session, smtp_server, add_invite
):
    first, second = add_invite("Bo Berg"), add_invite("Cy Dahl")
    transport = _smtp(smtp_server)
    clock_a, sent_by_a, reports_b = Clock(), [], []

    def send_a(message):
        transport(message)
        sent_by_a.append(message.id)

    def stall_after_first(session_a):
        # Worker A stalls right after committing its first message, past its claim on
        # the second; worker B, whose clock agrees, claims and sends the second.
        if sent_by_a == [first] and not reports_b:
            clock_a.advance(CLAIM_FOR + timedelta(minutes=1))
            reports_b.append(_deliver(transport, Clock(clock_a.now)))

    with Session(db.engine) as worker_a:
        event.listen(worker_a, "after_commit", stall_after_first)
        report_a = deliver_pending(worker_a, send_a, now=clock_a)

    assert (report_a.sent, reports_b[0].sent) == (1, 1)
    assert sent_by_a == [first]
    assert sorted(smtp_server.recipients) == ["bo@ex.org", "cy@ex.org"]
    assert {r.id: r.attempts for r in _rows(session).values()} == {first: 1, second: 1}


# -- after commit -----------------------------------------------------------------------


def test_mail_goes_out_after_the_commit_that_wrote_it(app, session, smtp_server, add_invite):
    app.config["MAIL_URL"] = smtp_server.url  # QUEUE_URL=memory://: delivery runs inline

    message_id = add_invite(commit=False)
    assert smtp_server.messages == [], "nothing before the commit"
    session.commit()

    assert smtp_server.recipients == ["bo@ex.org"]
    row = _rows(session)[message_id]
    assert row.status == OutboxStatus.SENT
    assert row.body is None


def test_mail_of_a_rolled_back_transaction_is_never_sent(
    app, session, smtp_server, add_invite, monkeypatch
):
    app.config["MAIL_URL"] = smtp_server.url
    kicks = []
    monkeypatch.setattr(jobs, "deliver_outbox", lambda: kicks.append(1))

    add_invite(commit=False)
    session.rollback()
    session.add(Employee(external_id="E9", name="Unrelated", email="u@ex.org"))
    session.commit()

    assert kicks == [], "the rolled-back mail must not trigger a delivery"
    assert _rows(session) == {}
    assert smtp_server.messages == []


def test_bulk_inserted_mail_is_delivered_after_commit(app, session, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    rows = [
        {
            "kind": "invite",
            "to_address": f"r{n}@ex.org",
            "to_name": f"R{n}",
            "subject": "Hi",
            "body": "x",
        }
        for n in range(3)
    ]
    session.execute(insert(OutboxMessage), rows)
    session.commit()
    assert sorted(smtp_server.recipients) == ["r0@ex.org", "r1@ex.org", "r2@ex.org"]


def test_a_broken_queue_never_fails_the_commit(session, add_invite, monkeypatch, caplog):
    def broken():
        raise ConnectionError("queue down")

    monkeypatch.setattr(jobs, "deliver_outbox", broken)
    with caplog.at_level(logging.ERROR, logger="webapp.jobs"):
        message_id = add_invite()
    assert _rows(session)[message_id].status == OutboxStatus.PENDING
    assert "periodic tick will retry" in caplog.text


def test_without_mail_url_messages_stay_in_the_outbox(session, add_invite):
    message_id = add_invite()  # the after-commit hook ran, with no MAIL_URL
    assert jobs.deliver_now() is None
    row = _rows(session)[message_id]
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 0
    assert row.body


def test_a_claim_takes_at_most_its_batch_and_the_next_claim_the_next_rows(session, add_invite):
    """PostgreSQL ran ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``
    as a join and claimed every due row, so one worker took all the mail."""
    ids = [add_invite(f"R{n:02d} Rater", token=f"{n:02d}".ljust(43, "x")) for n in range(10)]
    with Session(db.engine) as worker_a, Session(db.engine) as worker_b:
        first, token_a = claim_due(worker_a, T0, 4)
        second, token_b = claim_due(worker_b, T0, 4)
        assert first == ids[:4]
        assert second == ids[4:8]
        assert token_a != token_b
        assert claim_due(worker_b, T0, 4)[0] == ids[8:]
        assert claim_due(worker_a, T0, 4)[0] == []
        # A claim is a lease: once it has passed, the rows can be claimed again.
        later = T0 + CLAIM_FOR + timedelta(seconds=2)
        assert claim_due(worker_a, later, 20, timedelta(seconds=30))[0] == ids
