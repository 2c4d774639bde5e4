"""Unsent emails whose links died are cancelled, not sent and not silently deleted."""

from __future__ import annotations

from sqlalchemy import select

from surveys import cycles
from surveys.models import OutboxMessage, OutboxStatus
from surveys.outbox import MAX_ATTEMPTS, count_by_status, deliver_pending, requeue_failed
from surveys.releases import release_cycle
from tests import factories as f
from tests.surveys.test_reports import build_cycle


def messages(session, cycle) -> list[OutboxMessage]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.cycle_id == cycle.id)
            .order_by(OutboxMessage.id)
        )
    )


def statuses(session, cycle) -> dict[str, set[OutboxStatus]]:
    """kind -> the statuses of the cycle's emails of that kind."""
    out: dict[str, set[OutboxStatus]] = {}
    for m in messages(session, cycle):
        out.setdefault(m.kind, set()).add(m.status)
    return out


class Outbox:
    """A stand-in mail server: records what the worker sends."""

    def __init__(self):
        self.sent: list[tuple[int | None, str]] = []

    def __call__(self, message: OutboxMessage) -> None:
        self.sent.append((message.cycle_id, message.kind))


def two_cycles(session):
    """Two launched cycles of different teams, each with invitations and reminders unsent."""
    _, first_team = f.team(session, 4, prefix="A")
    _, second_team = f.team(session, 4, prefix="B")
    first = f.launched(session, first_team, peer_min=2, peer_max=3, reminder_interval_days=1)
    second = f.launched(session, second_team, peer_min=2, peer_max=3, reminder_interval_days=1)
    later = first.launched_at.replace(year=first.launched_at.year + 1)
    assert cycles.remind(session, first, base_url=f.BASE_URL, now=later) > 0
    assert cycles.remind(session, second, base_url=f.BASE_URL, now=later) > 0
    session.commit()
    return first, second


def test_closing_cancels_the_cycles_unsent_invitations_and_reminders(session):
    first, second = two_cycles(session)
    n_first = len(messages(session, first))
    cycles.close_cycle(session, first)
    session.commit()

    assert statuses(session, first) == {
        "invite": {OutboxStatus.CANCELLED},
        "reminder": {OutboxStatus.CANCELLED},
    }
    assert len(messages(session, first)) == n_first  # kept, so they can be counted
    assert {m.body for m in messages(session, first)} == {None}  # their links are gone
    assert None not in {m.body for m in messages(session, second)}
    assert count_by_status(session, cycle_id=first.id)[OutboxStatus.CANCELLED] == n_first
    assert statuses(session, second) == {
        "invite": {OutboxStatus.PENDING},
        "reminder": {OutboxStatus.PENDING},
    }
    assert count_by_status(session)[OutboxStatus.CANCELLED] == n_first

    send = Outbox()
    report = deliver_pending(session, send)
    assert {cycle_id for cycle_id, _ in send.sent} == {second.id}
    assert report.sent == len(messages(session, second))
    assert statuses(session, first) == {
        "invite": {OutboxStatus.CANCELLED},
        "reminder": {OutboxStatus.CANCELLED},
    }


def test_report_emails_of_the_release_go_out(session):
    cycle, _ = build_cycle(session)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    assert statuses(session, cycle)["report"] == {OutboxStatus.PENDING}

    send = Outbox()
    deliver_pending(session, send)
    assert {kind for _, kind in send.sent} == {"report"}
    assert statuses(session, cycle)["report"] == {OutboxStatus.SENT}
    assert statuses(session, cycle)["invite"] == {OutboxStatus.CANCELLED}


def test_sent_emails_stay_sent_and_failed_ones_are_never_retried(session):
    first, _ = two_cycles(session)
    sent, failed, *_ = messages(session, first)
    sent.status, sent.body = OutboxStatus.SENT, None
    failed.status = OutboxStatus.FAILED
    session.commit()
    cycles.close_cycle(session, first)
    session.commit()
    assert session.get(OutboxMessage, sent.id).status == OutboxStatus.SENT
    assert session.get(OutboxMessage, failed.id).status == OutboxStatus.CANCELLED
    assert requeue_failed(session) == 0


def test_a_worker_holding_a_claim_skips_what_the_close_cancelled(session):
    """The worker claimed every due email, then the cycle closed while it was sending."""
    first, second = two_cycles(session)
    send = Outbox()

    def send_then_close(message: OutboxMessage) -> None:
        send(message)
        if len(send.sent) == 1:  # HR closes the first cycle while this email goes out
            cycles.close_cycle(session, session.get(type(first), first.id))

    # The first cycle's emails are due first, so the one in flight is one of them.
    deliver_pending(session, send_then_close)
    assert [c for c, _ in send.sent].count(first.id) == 1
    assert sum(1 for c, _ in send.sent if c == second.id) == len(messages(session, second))
    in_flight, *rest = messages(session, first)
    assert in_flight.status == OutboxStatus.SENT
    assert {m.status for m in rest} == {OutboxStatus.CANCELLED}


def test_a_last_failed_attempt_does_not_undo_the_cancel(session):
    """The cycle closed while its email's last attempt was failing: it stays cancelled,
    so retrying failures never sends its dead link."""
    first, _ = two_cycles(session)
    last_try, *_ = messages(session, first)
    last_try.attempts = MAX_ATTEMPTS - 1
    session.commit()

    def close_then_fail(message: OutboxMessage) -> None:
        if message.id == last_try.id:
            cycles.close_cycle(session, session.get(type(first), first.id))
            raise ConnectionResetError("the server hung up")

    report = deliver_pending(session, close_then_fail)
    assert report.gave_up == 1
    stored = session.get(OutboxMessage, last_try.id, populate_existing=True)
    assert (stored.status, stored.attempts) == (OutboxStatus.CANCELLED, MAX_ATTEMPTS)
    assert requeue_failed(session) == 0


def test_launch_cancels_nomination_emails_and_close_any_left(session):
    _, team = f.team(session, 4)
    cycle = f.cycle(session, team[:2], nomination_mode="participant", peer_min=2, peer_max=3)
    cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
    session.commit()
    assert statuses(session, cycle) == {"nominate": {OutboxStatus.PENDING}}
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL, allow_short=True)
    session.commit()
    assert statuses(session, cycle) == {
        "nominate": {OutboxStatus.CANCELLED},
        "invite": {OutboxStatus.PENDING},
    }
    cycles.close_cycle(session, cycle)
    session.commit()
    assert statuses(session, cycle) == {
        "nominate": {OutboxStatus.CANCELLED},
        "invite": {OutboxStatus.CANCELLED},
    }


def test_the_scheduled_close_cancels_too(session):
    first, second = two_cycles(session)
    first.close_date = first.launched_at.date()
    session.commit()
    later = first.launched_at.replace(year=first.launched_at.year + 1)
    cycles.run_schedule(session, base_url=f.BASE_URL, now=later)
    session.commit()
    assert {m.status for m in messages(session, first)} == {OutboxStatus.CANCELLED}
    assert OutboxStatus.PENDING in {m.status for m in messages(session, second)}
