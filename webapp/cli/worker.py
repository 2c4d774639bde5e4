"""``feedback360 worker``: the background worker (outbox delivery, reminders on schedule)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp import jobs, logs
from webapp.mail import redact


def setup_logging() -> None:
    """Log to stderr in LOG_FORMAT (json: one object per line) at LOG_LEVEL: a line per
    job from here, a line per request from the web app."""
    config = current_app.config
    logs.configure(config["LOG_FORMAT"], config["LOG_LEVEL"])


def describe_mail() -> str:
    url = current_app.config["MAIL_URL"]
    if not url:
        return "MAIL_URL not set: mail stays in the outbox (feedback360 outbox)"
    return f"mail via {redact(url)}"


@click.command("worker")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker threads, i.e. jobs run at the same time.",
)
@click.option(
    "--no-periodic",
    is_flag=True,
    help="Don't run the minute tick here (when another worker already runs it).",
)
@with_appcontext
def command(workers: int, no_periodic: bool) -> None:
    """Run the background worker until Ctrl-C (or SIGTERM).

    It sends the outbox over SMTP (MAIL_URL) soon after each change that writes mail,
    and every minute runs the schedule: reminders to raters who have not answered,
    closing cycles past their close date, and retrying mail that failed.

    For local use `feedback360 serve` embeds a worker, so this is not needed. In
    production run the web app with `serve --workers N` (gunicorn, no embedded worker)
    and one or more `feedback360 worker` processes sharing QUEUE_URL=redis://host:6379/0
    and the same DATABASE_URL. Several workers never send one email twice (each claims
    its rows for OUTBOX_CLAIM_SECONDS; a killed worker's rows go to the others after
    that); the tick may run in all of them (only one runs the schedule at a time) or
    only in one (--no-periodic elsewhere).
    """
    setup_logging()
    try:
        consumer = jobs.create_consumer(workers=workers, periodic=not no_periodic)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"feedback360 worker: {workers} thread(s), queue"
        f" {jobs.describe_queue(current_app.config['QUEUE_URL'])},"
        f" periodic tick {'off' if no_periodic else 'on'}, {describe_mail()}. Ctrl-C stops.",
        err=True,
    )
    consumer.run()
