"""``feedback360 reports render --cycle ID [--out DIR] [--workers N] [--restart-every N]``.

One PDF per participant, rendered by a pool of worker processes
(:mod:`webapp.reports.batch`): the cycle is scored once in this process, each report's
HTML is built here and rendered by a worker. A participant whose report fails is listed
with the error and the others go on. Next to each PDF a ``.sha256`` file holds the
fingerprint of the HTML and stylesheet it was made from, so a re-run skips every report
whose content has not changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

command = AppGroup("reports", help="Feedback reports: render PDFs.")


@command.command("render")
@click.option("--cycle", "cycle_id", required=True, type=int, help="Cycle id.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=None,
    help="Folder for the PDFs (default: instance/reports/cycle-ID).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: the CPUs this process may use; 1 = no pool).",
)
@click.option(
    "--restart-every",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Replace a worker after this many reports (WeasyPrint's native memory grows).",
)
def render(cycle_id: int, out: Path | None, workers: int | None, restart_every: int) -> None:
    """Render every participant's report of a cycle to PDF."""
    from surveys.models import Cycle
    from webapp.extensions import db
    from webapp.reports.batch import default_workers, render_cycle

    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        raise click.ClickException(f"no cycle with id {cycle_id}")
    folder = out or Path(current_app.instance_path) / "reports" / f"cycle-{cycle.id}"
    workers = workers or default_workers()
    total = len(cycle.participants)
    with click.progressbar(
        length=total, label=f"Rendering {total} reports ({workers} workers)", file=sys.stderr
    ) as bar:
        result = render_cycle(
            db.session,
            cycle,
            folder,
            static_folder=current_app.static_folder or "static",
            static_url_path=current_app.static_url_path or "/static",
            workers=workers,
            restart_every=restart_every,
            progress=bar.update,
        )

    click.echo(
        f"{cycle.name}: {len(result.rendered)} written, {len(result.skipped)} unchanged, "
        f"{len(result.failures)} failed → {folder}"
    )
    for pid, name, error in sorted(result.failures):
        click.echo(f"  participant {pid} ({name}): {error}", err=True)
    if result.failures:
        raise SystemExit(1)
