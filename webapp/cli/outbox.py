"""``feedback360 outbox``: read, send and requeue the emails the app has written."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from surveys.errors import NotFound
from surveys.models import OutboxMessage, OutboxStatus
from surveys.outbox import count_by_status, get_message, list_messages, requeue_failed
from webapp import jobs
from webapp.extensions import db
from webapp.mail import redact

STATUSES = [s.value for s in OutboxStatus]


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _as_dict(message: OutboxMessage, *, body: bool = False) -> dict[str, Any]:
    data = {
        "id": message.id,
        "kind": message.kind,
        "status": message.status.value,
        "to": message.to_address,
        "to_name": message.to_name,
        "subject": message.subject,
        "attempts": message.attempts,
        "cycle_id": message.cycle_id,
        "created_at": _iso(message.created_at),
        "next_attempt_at": _iso(message.next_attempt_at),
        "sent_at": _iso(message.sent_at),
        "last_error": message.last_error,
    }
    if body:
        data["body"] = message.body
    return data


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _list(status: str | None, limit: int, as_json: bool) -> None:
    messages = list_messages(
        db.session, status=OutboxStatus(status) if status else None, limit=limit
    )
    if as_json:
        _dump([_as_dict(m) for m in messages])
        return
    if not messages:
        click.echo(f"No {status} messages." if status else "The outbox is empty.")
        return
    _table(
        [
            [str(m.id), m.kind, m.status.value, m.to_address, _clip(m.subject, 60), str(m.attempts)]
            for m in messages
        ],
        ["ID", "KIND", "STATUS", "TO", "SUBJECT", "ATTEMPTS"],
    )
    counts = count_by_status(db.session)
    click.echo(
        "\n"
        + ", ".join(f"{n} {s.value}" for s, n in counts.items())
        + ". Read one with: feedback360 outbox show ID"
    )


def _list_options(function):
    function = click.option(
        "--json", "as_json", is_flag=True, help="Print a JSON array (for scripts)."
    )(function)
    function = click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Show at most this many messages.",
    )(function)
    return click.option(
        "--status", type=click.Choice(STATUSES), help="Only messages with this status."
    )(function)


@click.group("outbox", cls=AppGroup, invoke_without_command=True)
@_list_options
@with_appcontext
@click.pass_context
def command(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """The emails the app has written, newest first.

    Every email (invitations, reminders, nomination requests) is written to the outbox
    in the same transaction as the change that causes it; a worker sends it over SMTP
    (MAIL_URL) and then erases the body, which holds a personal link. Without MAIL_URL
    the messages stay here: read one with `outbox show ID` and open its link.

    Without a subcommand this lists messages (the same as `outbox list`).
    """
    if ctx.invoked_subcommand is None:
        _list(status, limit, as_json)


@command.command("list")
@_list_options
def list_command(status: str | None, limit: int, as_json: bool) -> None:
    """List messages, newest first: id, kind, status, recipient, subject, attempts."""
    _list(status, limit, as_json)


@command.command("show")
@click.argument("message_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (for scripts).")
def show_command(message_id: int, as_json: bool) -> None:
    """Print one message in full, with the links in its body.

    This is how to act as a rater or participant without an SMTP server. Sent and
    cancelled messages show no body: it was erased because it held a personal link.
    """
    try:
        message = get_message(db.session, message_id)
    except NotFound as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        _dump(_as_dict(message, body=True))
        return
    click.echo(f"Message {message.id} ({message.kind}, {message.status.value})")
    click.echo(f"To:       {message.to_name} <{message.to_address}>")
    click.echo(f"Subject:  {message.subject}")
    click.echo(f"Created:  {_iso(message.created_at)}")
    click.echo(f"Attempts: {message.attempts}")
    if message.status == OutboxStatus.SENT:
        click.echo(f"Sent:     {_iso(message.sent_at)}")
    elif message.attempts:
        click.echo(f"Next try: {_iso(message.next_attempt_at)}")
    if message.last_error:
        click.echo(f"Error:    {message.last_error}")
    click.echo()
    if message.body is None:
        when = "when cancelled" if message.status == OutboxStatus.CANCELLED else "after delivery"
        click.echo(f"(body erased {when}: it held a personal link)")
    else:
        click.echo(message.body.rstrip("\n"))


@command.command("send")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def send_command(as_json: bool) -> None:
    """Send due messages now through the SMTP server in MAIL_URL.

    The worker does this on its own (after each change that writes mail, and every
    minute); this is for scripts and for checking a new MAIL_URL. Messages that fail are
    retried later with growing delays and marked failed after several attempts
    (see `outbox retry`). Exits with status 1 when MAIL_URL is not set or the server
    could not be reached.
    """
    report = jobs.deliver_now()
    if report is None:
        if as_json:
            _dump({"error": "MAIL_URL is not set", "sent": 0})
        click.echo(
            "MAIL_URL is not set, so nothing was sent: messages stay in the outbox.\n"
            "Read them with `feedback360 outbox show ID` (or at /dev/outbox when the app is"
            " running),\nor set MAIL_URL, e.g. MAIL_URL=smtp://user:password@smtp.example.com:587",
            err=True,
        )
        sys.exit(1)
    counts = count_by_status(db.session)
    if as_json:
        _dump(
            {
                "sent": report.sent,
                "retry_later": report.failed,
                "gave_up": report.gave_up,
                "error": report.error,
                "pending": counts[OutboxStatus.PENDING],
                "failed": counts[OutboxStatus.FAILED],
            }
        )
    else:
        server = redact(current_app.config["MAIL_URL"])
        click.echo(
            f"Sent {report.sent} via {server}; {report.failed} to retry later,"
            f" {report.gave_up} given up. Now {counts[OutboxStatus.PENDING]} pending,"
            f" {counts[OutboxStatus.FAILED]} failed."
        )
        if report.error:
            click.echo(f"Stopped early: {report.error}", err=True)
    if report.error:
        sys.exit(1)


@command.command("retry")
@click.argument("message_ids", metavar="[ID]...", type=int, nargs=-1)
def retry_command(message_ids: tuple[int, ...]) -> None:
    """Put failed messages back in the queue with a fresh set of attempts.

    Give IDs to retry some, none to retry every failed message. Sent messages cannot be
    resent (their link was erased); use `cycles remind` to send a new link.
    """
    count = requeue_failed(db.session, list(message_ids) or None)
    db.session.commit()
    click.echo(f"{count} failed message(s) queued again.")
    if count:
        try:
            jobs.deliver_outbox()
        except Exception as error:  # the minute tick sends them anyway
            click.echo(f"Could not reach the queue ({error}); the worker sends them soon.")
