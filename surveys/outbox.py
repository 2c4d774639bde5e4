"""Delivering the outbox: claim due rows, send each once, retry failures with backoff.

Several workers may deliver at the same time (threads of one consumer, or several
processes): a worker first *claims* a batch of due rows by stamping ``claimed_until``
(``SELECT … FOR UPDATE SKIP LOCKED``, then ``UPDATE … RETURNING``, one transaction), then
sends only the rows it claimed. The stamp doubles as the claim's owner token (it carries
random microseconds), so a worker that stalls past its claim notices it lost the row
instead of sending it a second time. The claim is a lease: a worker killed mid-batch
leaves its rows claimed until ``claimed_until`` passes, then any worker takes them.

Delivery is at-least-once only across a crash between "the SMTP server accepted" and
"the row is marked sent" — unavoidable with SMTP; the Message-ID is stable per row so
receiving systems can drop such a duplicate.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from surveys.db import utcnow
from surveys.errors import NotFound
from surveys.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: Tries before a message is marked failed: 1, 2, 4 … 256 minutes apart, about 8½ hours.
MAX_ATTEMPTS = 10
#: How long a claim protects a row from other workers: a killed worker's rows come back
#: to the others once it has passed (the lease). Configurable as OUTBOX_CLAIM_SECONDS.
CLAIM_FOR = timedelta(minutes=10)
#: A worker renews its claim when less than this share of the lease is left: with the
#: default lease far more than one send can take (each SMTP step times out after 30 s),
#: so a claim never expires during a send.
RENEW_AT = 0.5


class TransportUnavailable(Exception):
    """Raised by a transport when nothing can be sent right now (server down, bad login).

    The message being sent counts one attempt; the rest of the batch is left untouched
    for the next run instead of each waiting for the same timeout.
    """


def backoff(attempts: int) -> timedelta:
    """Delay before the next try: 1, 2, 4 … minutes, at most 6 hours."""
    return min(timedelta(minutes=2 ** min(attempts - 1, 16)), timedelta(hours=6))


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    #: Failed this time, will be retried later.
    failed: int = 0
    #: Failed for the last time (``MAX_ATTEMPTS``), now status ``failed``.
    gave_up: int = 0
    #: Why delivery stopped early (the transport was unavailable), else None.
    error: str | None = None


def _claim_token(now: datetime, claim_for: timedelta = CLAIM_FOR) -> datetime:
    # Random microseconds make two workers' claims distinguishable even at the same instant.
    return now + claim_for + timedelta(microseconds=secrets.randbelow(1_000_000))


def claim_due(
    session: Session, now: datetime, limit: int, claim_for: timedelta = CLAIM_FOR
) -> tuple[list[int], datetime]:
    """Claim up to ``limit`` due messages for this worker and commit the claim.

    Returns the claimed ids and the claim token (the ``claimed_until`` written). On
    PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` gives concurrent workers disjoint rows,
    locked until the claim commits; SQLite runs one writer at a time. Either way the
    ``UPDATE`` re-checks that each row is still unclaimed, so a row is never claimed twice.

    Two statements, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``:
    PostgreSQL may run such a subquery as a join and claim every due row, leaving the
    other workers idle (found by tests/production/test_exactly_once.py).
    """

    def unclaimed(row: type[OutboxMessage]) -> tuple[ColumnElement[bool], ...]:
        return (
            row.status == OutboxStatus.PENDING,
            row.next_attempt_at <= now,
            or_(row.claimed_until.is_(None), row.claimed_until < now),
        )

    due = session.scalars(
        select(OutboxMessage.id)
        .where(*unclaimed(OutboxMessage))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    token = _claim_token(now, claim_for)
    if not due:
        session.commit()
        return [], token
    ids = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due), *unclaimed(OutboxMessage))
        .values(claimed_until=token)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return sorted(ids), token


def _reclaim(
    session: Session, ids: Sequence[int], token: datetime, new_token: datetime | None
) -> set[int]:
    """Move this worker's claim on ``ids`` to ``new_token`` (None releases); commit.

    Returns the ids still held by the old token (those are the ones moved).
    """
    if not ids:
        return set()
    held = session.scalars(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.claimed_until == token,
        )
        .values(claimed_until=new_token)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return set(held)


def _log_reason(error: Exception) -> str:
    """What a log line may say about a failed send: a refusal of one message quotes its
    recipient's address (a rater's identity), so only its type goes to the log; the full
    reason stays in ``last_error`` for HR."""
    if isinstance(error, TransportUnavailable):
        return f"{type(error).__name__}: {error}"[:1000]  # the server's address, not a rater's
    return type(error).__name__


def deliver_pending(
    session: Session,
    send: Callable[[OutboxMessage], None],
    *,
    now: Callable[[], datetime] = utcnow,
    batch: int = 50,
    claim_for: timedelta = CLAIM_FOR,
) -> DeliveryReport:
    """Send every due message through ``send``; commit after each so nothing goes twice.

    ``send`` raises on failure: :class:`TransportUnavailable` stops the run (the rest
    waits for the next one), any other exception fails just that message. A failed
    message is retried after :func:`backoff` and marked ``failed`` after ``MAX_ATTEMPTS``;
    a sent one loses its body, which held a secret link. ``batch`` rows are claimed at a
    time for ``claim_for`` (the lease), renewed while this worker is still sending.
    """
    sent = failed = gave_up = 0
    renew_before = claim_for * RENEW_AT
    while True:
        ids, token = claim_due(session, now(), batch, claim_for)
        if not ids:
            break
        queue = list(ids)
        while queue:
            if now() >= token - renew_before:
                new_token = _claim_token(now(), claim_for)
                queue = sorted(_reclaim(session, queue, token, new_token))
                token = new_token
                if not queue:
                    break
            message_id = queue.pop(0)
            message = session.get(OutboxMessage, message_id, populate_existing=True)
            if (
                message is None
                or message.claimed_until != token
                or message.status != OutboxStatus.PENDING
            ):
                continue  # deleted, cancelled, or the claim expired and another worker took it
            message.attempts += 1
            try:
                send(message)
            except Exception as error:  # any transport failure is retried later
                reason = f"{type(error).__name__}: {error}"[:1000]
                message.last_error = reason
                message.claimed_until = None
                if message.attempts >= MAX_ATTEMPTS:
                    # Cancelled while it was being sent (its cycle closed): it stays so,
                    # or retrying failures would send its dead link.
                    session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.id == message.id,
                            OutboxMessage.status == OutboxStatus.PENDING,
                        )
                        .values(status=OutboxStatus.FAILED)
                    )
                    gave_up += 1
                else:
                    message.next_attempt_at = now() + backoff(message.attempts)
                    failed += 1
                log.warning(
                    "email %s not sent (attempt %s of %s): %s",
                    message.id,
                    message.attempts,
                    MAX_ATTEMPTS,
                    _log_reason(error),
                )
                session.commit()
                if isinstance(error, TransportUnavailable):
                    _reclaim(session, queue, token, None)
                    return DeliveryReport(sent, failed, gave_up, error=reason)
            else:
                message.status = OutboxStatus.SENT
                message.sent_at = now()
                message.body = None  # the body held a secret link
                message.claimed_until = None
                message.last_error = None
                sent += 1
                session.commit()
    return DeliveryReport(sent, failed, gave_up)


def list_messages(
    session: Session, *, status: OutboxStatus | None = None, limit: int | None = 50
) -> list[OutboxMessage]:
    """Messages newest first, optionally of one status."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return list(session.scalars(query))


def get_message(session: Session, message_id: int) -> OutboxMessage:
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"no outbox message with id {message_id}")
    return message


def count_by_status(session: Session, *, cycle_id: int | None = None) -> dict[OutboxStatus, int]:
    """How many messages are pending, sent, failed and cancelled (of one cycle, if given)."""
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if cycle_id is not None:
        query = query.where(OutboxMessage.cycle_id == cycle_id)
    rows = session.execute(query).all()
    counts = dict.fromkeys(OutboxStatus, 0)
    counts.update({OutboxStatus(status): n for status, n in rows})
    return counts


def requeue_failed(
    session: Session, ids: Sequence[int] | None = None, *, now: datetime | None = None
) -> int:
    """Give failed messages a fresh set of attempts (all of them, or ``ids``); flushes.

    Sent messages cannot be requeued: their body, with its link, is gone.
    """
    query = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    result = session.execute(
        query.values(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now or utcnow(),
            claimed_until=None,
        ).execution_options(synchronize_session=False)
    )
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


#: Kinds of email whose links open a survey: they die when the cycle closes.
RATING_KINDS = ("invite", "reminder")
#: Kinds of email whose links open a nomination page: they die when the cycle opens.
NOMINATION_KINDS = ("nominate", "approve")


def cancel_unsent(session: Session, cycle_id: int, kinds: Sequence[str]) -> int:
    """Mark the cycle's unsent emails of ``kinds`` cancelled; returns how many. Flushes.

    For emails whose links stopped working before they went out (the cycle closed, or
    left nominating): sending them would only hand out dead links. They are kept, not
    deleted, so the outbox can say how many were cancelled; the worker sends only
    pending messages, and a claim is dropped so a worker holding one skips it too. A
    message already being sent when this runs is sent (and marked sent) all the same.
    Failed messages are cancelled too, so that retrying failures never sends them. Like a
    sent message, a cancelled one loses its body: its link named who was asked to rate
    whom.
    """
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.cycle_id == cycle_id,
            OutboxMessage.kind.in_(kinds),
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
        )
        .values(status=OutboxStatus.CANCELLED, claimed_until=None, body=None)
    )
    return result.rowcount  # type: ignore[attr-defined, no-any-return]
