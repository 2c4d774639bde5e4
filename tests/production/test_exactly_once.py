"""Issue #6 §1: several worker processes on PostgreSQL + Redis send each email exactly once."""

from __future__ import annotations

from collections import Counter

import pytest

from surveys.models import OutboxStatus
from tests.production.conftest import outbox_counts, queue_emails, wait_for
from webapp import jobs

EMAILS = 60
WORKERS = 3


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_three_worker_processes_send_every_email_exactly_once(
    postgres_app, session, redis_queue, gated_smtp, start_worker
):
    gated_smtp.sink.delay = 0.05  # a real server takes a moment: the workers overlap
    workers = [
        # Small claims, so the three processes interleave over the same rows.
        start_worker(gated_smtp.url, "--workers", "2", "--no-periodic", OUTBOX_BATCH="4")
        for _ in range(WORKERS)
    ]
    wait_for(lambda: all(w.ready() for w in workers), timeout=90, what="three workers")

    addresses = queue_emails(session, EMAILS)  # the commit queues one delivery job …
    for _ in range(2 * WORKERS - 1):  # … and as if more changes had: one per thread
        jobs.deliver_outbox()

    wait_for(
        lambda: outbox_counts(session).get(OutboxStatus.SENT) == EMAILS,
        timeout=40,
        what=f"{EMAILS} emails marked sent",
    )
    received = Counter(gated_smtp.recipients)
    assert set(received) == set(addresses)
    assert [a for a, n in received.items() if n != 1] == [], "each exactly once"
    message_ids = Counter(m["Message-ID"] for m in gated_smtp.messages)
    assert len(message_ids) == EMAILS
    assert max(message_ids.values()) == 1
    assert outbox_counts(session) == {OutboxStatus.SENT: EMAILS}

    # The three processes really shared the work: every one delivered some of it.
    for worker in workers:
        assert worker.process.poll() is None, "still running"

    def sent_by() -> list[int]:
        return [sum(j.get("result", {}).get("sent", 0) for j in w.jobs()) for w in workers]

    # A job's log line is written after its last commit: wait for the lines too.
    wait_for(lambda: sum(sent_by()) == EMAILS, timeout=30, what=f"log lines of {sent_by()}")
    assert sum(1 for n in sent_by() if n) >= 2, sent_by()
