"""``feedback360 demo``: a demo organisation with an open cycle to click through."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from surveys.demo import (
    DEMO_ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    EARLIER_CYCLE,
    ensure_demo_admin,
    load_demo,
    report_links,
)
from surveys.models import Cycle, CycleState
from webapp.extensions import db


@click.command("demo")
@with_appcontext
def command():
    """Load 16 demo employees and an open review cycle (idempotent), then print links.

    About 70% of the surveys are already answered so `feedback360 cycles status` has
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
    earlier = db.session.scalar(select(Cycle).where(Cycle.name == EARLIER_CYCLE))
    if earlier is not None:
        links = dict(report_links(db.session, earlier))
        # A manager with a full team makes the most telling sample.
        name = "Lukas Becker" if "Lukas Becker" in links else next(iter(links), None)
        if name:
            click.echo(
                f"\nA released report from {earlier.name!r}, as {name} opens it from their"
                f" email:\n    {links[name]}"
            )
        if cycle.state == CycleState.RELEASED:
            click.echo(
                f"Both demo cycles are released: their reports are in {base_url}/dev/outbox."
            )
        else:
            verb = "Release" if cycle.state == CycleState.CLOSED else "Close and release"
            click.echo(
                f"{verb} the autumn cycle in the console to see its reports, with the change"
                " since spring."
            )
    if development:
        click.echo(
            f"\nHR console: {base_url}/admin/  sign in as {DEMO_ADMIN_EMAIL}"
            f" / {DEMO_ADMIN_PASSWORD} (demo account; development only)"
        )
    else:
        click.echo("\nHR console: create an account with `feedback360 users create --admin`")
    click.echo(f"\nProgress: feedback360 cycles status {cycle.id}")
