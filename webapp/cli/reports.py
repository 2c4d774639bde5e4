"""``feedback360 reports render --cycle ID [--out DIR]``: one PDF per participant.

The cycle is scored once; each participant's report is then built and rendered. A
participant whose report fails is listed with the error and the others go on. Next to
each PDF a ``.sha256`` file holds the fingerprint of the HTML it was made from, so a
re-run skips every report whose content has not changed.
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
def render(cycle_id: int, out: Path | None) -> None:
    """Render every participant's report of a cycle to PDF."""
    from surveys.models import Cycle
    from surveys.reports import build_report, score_cycle
    from webapp.extensions import db
    from webapp.pdf import html_to_pdf
    from webapp.reports.render import content_hash, report_html

    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        raise click.ClickException(f"no cycle with id {cycle_id}")
    folder = out or Path(current_app.instance_path) / "reports" / f"cycle-{cycle.id}"
    folder.mkdir(parents=True, exist_ok=True)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    scored = score_cycle(db.session, cycle)

    written = skipped = 0
    failures: list[tuple[int, str, str]] = []
    participants = list(cycle.participants)
    # Sequential for now. Parallel rendering (issue 4) goes here: a process pool over
    # participant ids, each worker with its own app, session and FontConfiguration,
    # restarted every N reports; `scored` is picklable and can be passed to each worker.
    with click.progressbar(participants, label="Rendering reports", file=sys.stderr) as bar:
        for participant in bar:
            target = folder / f"participant-{participant.id}.pdf"
            stamp = target.with_suffix(".sha256")
            try:
                html = report_html(
                    build_report(db.session, participant, cycle_scores=scored), pdf=True
                )
                digest = content_hash(html)
                if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
                    skipped += 1
                    continue
                pdf = html_to_pdf(html, app)
                partial = target.with_suffix(".pdf.part")
                partial.write_bytes(pdf)
                partial.replace(target)
                stamp.write_text(digest + "\n")
                written += 1
            except Exception as exc:  # one bad report must not stop the batch
                failures.append(
                    (participant.id, participant.employee.name, f"{type(exc).__name__}: {exc}")
                )

    click.echo(
        f"{cycle.name}: {written} written, {skipped} unchanged, {len(failures)} failed → {folder}"
    )
    for pid, name, error in failures:
        click.echo(f"  participant {pid} ({name}): {error}", err=True)
    if failures:
        raise SystemExit(1)
