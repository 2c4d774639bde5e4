"""``feedback360 demo``: a demo organisation with an open cycle to click through."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from surveys.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, ensure_demo_admin, load_demo
from webapp.extensions import db


@click.command("demo")
@with_appcontext
def command():
    """Load 16 demo employees and an open review cycle (idempotent), then print links.

    About 60% of the surveys are already answered so `feedback360 cycles status` has
    something to show; the rest wait in the outbox for you to fill in.
    """
    base_url = current_app.config["BASE_URL"]
    result = load_demo(db.session, base_url=base_url)
    development = current_app.config["ENV_NAME"] != "production"
    if development:
        ensure_demo_admin(db.session)
    db.session.commit()
    cycle = result.cycle
    click.echo(
        ("Loaded" if result.created else "Already loaded")
        + f": cycle {cycle.id} {cycle.name!r} [{cycle.state.value}]"
    )
    click.echo(f"\nEvery email the app would send (click any link): {base_url}/dev/outbox")
    if result.open_links:
        click.echo("Some surveys waiting for an answer:")
        for label, url in result.open_links[:5]:
            click.echo(f"  {label}\n    {url}")
    if cycle.participants:
        # The participant with the most answers makes the most telling sample report.
        from surveys.status import cycle_status

        progress = cycle_status(db.session, cycle)
        best = max(progress.participants, key=lambda p: p.total.submitted)
        participant = next(
            p for p in cycle.participants if p.employee.external_id == best.employee_id
        )
        click.echo(
            f"\nA report as it stands (HR console preview): "
            f"{base_url}/admin/cycles/{cycle.id}/participants/{participant.id}/report"
        )
    if development:
        click.echo(
            f"\nHR console: {base_url}/admin/  sign in as {DEMO_ADMIN_EMAIL}"
            f" / {DEMO_ADMIN_PASSWORD} (demo account; development only)"
        )
    else:
        click.echo("\nHR console: create an account with `feedback360 users create --admin`")
    click.echo(f"\nProgress: feedback360 cycles status {cycle.id}")
