"""``feedback360 reports render --cycle ID [--out DIR] [--workers N] [--restart-every N]``.

One PDF per participant of a closed or released cycle, rendered by a pool of worker
processes (:mod:`webapp.reports.batch`): a released cycle's reports are the frozen
versions participants read; a closed cycle is scored once in this process. Each report's
HTML is built here and rendered by a worker. Every run is in the audit log. A participant
whose report fails is listed with the error and the others go on. Next to each PDF a
``.sha256`` file holds the fingerprint of the HTML and stylesheet it was made from, so a
re-run skips every report whose content has not changed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import AppGroup

from surveys import audit

if TYPE_CHECKING:
    from surveys.models import Cycle, Participant

command = AppGroup(
    "reports",
    help="Feedback reports: render PDFs, hold back and share, accept late responses, re-release.",
)


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
    help="Worker processes (default: the CPUs this process may use).",
)
@click.option(
    "--restart-every",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Replace a worker after this many reports (WeasyPrint's native memory grows).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds one report may take; a worker that overruns is stopped, that report fails.",
)
def render(
    cycle_id: int, out: Path | None, workers: int | None, restart_every: int, timeout: float
) -> None:
    """Render every participant's report of a cycle to PDF."""
    from surveys.models import Cycle
    from webapp.extensions import db
    from webapp.reports.batch import RENDERABLE, default_workers, render_cycle

    cycle = db.session.get(Cycle, cycle_id)
    if cycle is None:
        raise click.ClickException(f"no cycle with id {cycle_id}")
    if cycle.state not in RENDERABLE:
        raise click.ClickException(
            f"cycle {cycle.name!r} is {cycle.state.value}; its reports can be rendered once it"
            " is closed (while raters can still answer, two renders would show what one said)"
        )
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
            timeout=timeout,
            progress=bar.update,
        )

    audit.record(
        db.session,
        audit.COMMAND_LINE,
        "reports.render",
        f"cycle {cycle.id} {cycle.name}",
        {
            "written": len(result.rendered),
            "unchanged": len(result.skipped),
            "failed": len(result.failures),
        },
    )
    db.session.commit()
    click.echo(
        f"{cycle.name}: {len(result.rendered)} written, {len(result.skipped)} unchanged, "
        f"{len(result.failures)} failed → {folder}"
    )
    for pid, name, error in sorted(result.failures):
        click.echo(f"  participant {pid} ({name}): {error}", err=True)
    if result.failures:
        raise SystemExit(1)


# -- late responses and re-release (kept apart from ``render``) -----------------------------


@command.command("accept-late")
@click.option("--cycle", "cycle_id", required=True, type=int, help="Released cycle id.")
@click.option("--participant", required=True, help="Employee id of the person rated.")
@click.option("--rater", required=True, help="Employee id of the late rater.")
@click.argument("answers_file", type=click.File("r", encoding="utf-8"))
def accept_late(cycle_id: int, participant: str, rater: str, answers_file) -> None:
    """Record one rater's answers, given after the cycle closed, from ANSWERS_FILE.

    ANSWERS_FILE is JSON: {"ratings": {"ITEM_ID": 1-5 or "na", ...},
    "comments": {"QUESTION_ID": "text", ...}}. Everything is checked first and nothing
    is stored on any error. A released report does not change until you run
    `feedback360 reports rerelease`.
    """
    from surveys.cycles import find_assignment, get_cycle
    from surveys.errors import DomainError
    from surveys.models import Employee
    from surveys.releases import accept_late_response
    from surveys.responses import clean_answers, cycle_bank
    from webapp.extensions import db

    try:
        raw = json.load(answers_file)
    except ValueError as error:
        raise click.ClickException(f"{answers_file.name} is not valid JSON: {error}") from error
    if not isinstance(raw, dict) or not set(raw) <= {"ratings", "comments"}:
        raise click.ClickException('the file must hold an object with "ratings" and "comments"')
    ratings, comments = raw.get("ratings") or {}, raw.get("comments") or {}
    if not isinstance(ratings, dict) or not isinstance(comments, dict):
        raise click.ClickException('"ratings" and "comments" must be objects')

    def employee(external_id: str) -> Employee:
        found = db.session.query(Employee).filter_by(external_id=external_id).one_or_none()
        if found is None:
            raise click.ClickException(f"no employee with id {external_id!r}")
        return found

    try:
        cycle = get_cycle(db.session, cycle_id)
        assignment = find_assignment(db.session, cycle, employee(participant), employee(rater))
        checked = clean_answers(
            cycle_bank(cycle),
            {str(k): str(v) for k, v in ratings.items()},
            {str(k): str(v) for k, v in comments.items()},
        )
        if checked.errors:
            problems = "; ".join(f"{k}: {v}" for k, v in sorted(checked.errors.items()))
            raise DomainError(f"nothing stored, the answers have errors: {problems}")
        accept_late_response(db.session, assignment, checked.answers)
        # Who was accepted is HR's own knowledge; the log says that it happened, and where.
        audit.record(
            db.session,
            audit.COMMAND_LINE,
            "response.accept_late",
            f"cycle {cycle.id} {cycle.name}",
            {"participant": participant, "relationship": assignment.relationship.value},
        )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(
        f"Accepted a late {assignment.relationship.value} response for {participant}."
        + (
            f" Run `feedback360 reports rerelease --cycle {cycle.id}` to release new"
            " versions where that is safe."
            if cycle.state.value == "released"
            else ""
        )
    )


@command.command("rerelease")
@click.option("--cycle", "cycle_id", required=True, type=int, help="Released cycle id.")
@click.option(
    "--participant",
    "participants",
    multiple=True,
    help="Employee id of a participant (repeatable; default: every participant).",
)
def rerelease(cycle_id: int, participants: tuple[str, ...]) -> None:
    """Release new report versions of a released cycle after late responses.

    Prints, per participant, the new version or why it was refused: a new version is
    refused when comparing it with the previous one would single out the late raters
    (fewer of them than the anonymity thresholds), or when nothing changed.
    """
    from surveys.cycles import get_cycle
    from surveys.errors import DomainError
    from surveys.releases import rerelease_cycle
    from webapp.extensions import db

    try:
        cycle = get_cycle(db.session, cycle_id)
        chosen = _participants_by_employee(cycle, participants)
        outcomes = rerelease_cycle(
            db.session,
            cycle,
            base_url=current_app.config["BASE_URL"],
            participant_ids=[p.id for p in chosen] if participants else None,
        )
        audit.record(
            db.session,
            audit.COMMAND_LINE,
            "cycle.rerelease",
            f"cycle {cycle.id} {cycle.name}",
            {"new_versions": sum(1 for o in outcomes if o.version is not None)},
        )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    employee_of = {p.id: p.employee.external_id for p in cycle.participants}
    for outcome in outcomes:
        who = f"{employee_of[outcome.participant_id]} ({outcome.name})"
        if outcome.version is not None:
            click.echo(f"{who}: new version {outcome.version}")
        else:
            click.echo(f"{who}: not re-released: {outcome.refusal}")
    released = sum(o.version is not None for o in outcomes)
    click.echo(
        f"{cycle.name}: {released} new versions, {len(outcomes) - released} not re-released."
    )


def _participants_by_employee(cycle: Cycle, employee_ids: tuple[str, ...]) -> list[Participant]:
    """The cycle's participants with these employee ids, or an error naming the others."""
    from surveys.errors import DomainError

    by_employee = {p.employee.external_id: p for p in cycle.participants}
    unknown = [e for e in employee_ids if e not in by_employee]
    if unknown:
        raise DomainError(f"not participants of cycle {cycle.id}: {', '.join(unknown)}")
    return [by_employee[e] for e in employee_ids]


def _for_each_participant(
    cycle_id: int, employee_ids: tuple[str, ...], action: str, do: Callable[[Participant], None]
) -> Cycle:
    """``do`` for each named participant of the cycle, each in the audit log as ``action``;
    all of them or, on the first refusal, none."""
    from surveys.cycles import get_cycle
    from surveys.errors import DomainError
    from webapp.extensions import db

    try:
        cycle = get_cycle(db.session, cycle_id)
        for participant in _participants_by_employee(cycle, employee_ids):
            do(participant)
            audit.record(
                db.session,
                audit.COMMAND_LINE,
                action,
                f"cycle {cycle.id} {cycle.name}",
                {"participant": participant.employee.external_id},
            )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    return cycle


@command.command("hold")
@click.option("--cycle", "cycle_id", required=True, type=int, help="Cycle id (not released yet).")
@click.option("--undo", is_flag=True, help="Send these reports with the others after all.")
@click.argument("employee_ids", nargs=-1, required=True)
def hold(cycle_id: int, undo: bool, employee_ids: tuple[str, ...]) -> None:
    """Hold the reports of EMPLOYEE_IDS back at release (say, for a coach to go through
    with the participant first).

    They are frozen with the others when the cycle is released, but their links are
    emailed only by `feedback360 reports share`.
    """
    from surveys.releases import hold_report
    from webapp.extensions import db

    cycle = _for_each_participant(
        cycle_id,
        employee_ids,
        "report.unhold" if undo else "report.hold",
        lambda participant: hold_report(db.session, participant, not undo),
    )
    held = sum(p.report_held for p in cycle.participants)
    n = len(employee_ids)
    verb = "will be sent with the others" if undo else "held back at release"
    click.echo(f"{n} report{'s' if n != 1 else ''} {verb}; {held} of cycle {cycle.id} held in all.")


@command.command("share")
@click.option("--cycle", "cycle_id", required=True, type=int, help="Released cycle id.")
@click.argument("employee_ids", nargs=-1, required=True)
def share(cycle_id: int, employee_ids: tuple[str, ...]) -> None:
    """Email the links of held-back reports (see `feedback360 reports hold`) to EMPLOYEE_IDS."""
    from surveys.releases import share_report
    from webapp.extensions import db

    base_url = current_app.config["BASE_URL"]
    _for_each_participant(
        cycle_id,
        employee_ids,
        "report.share",
        lambda participant: share_report(db.session, participant, base_url=base_url),
    )
    n = len(employee_ids)
    click.echo(f"{n} report link{'s' if n != 1 else ''} queued.")
