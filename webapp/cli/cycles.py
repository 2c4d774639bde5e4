"""``feedback360 cycles``: create, launch, follow, remind and close review cycles."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from surveys import assignments, bank_store, cycles, releases, status
from surveys.banks import BankError, UnknownBankError, load_bank
from surveys.errors import DomainError
from surveys.models import Cycle, Employee, Relationship
from webapp.extensions import db

command = AppGroup(
    "cycles",
    help="""Review cycles: draft → (nominating) → open → closed → released.

    \b
    Typical run:
      feedback360 cycles create "Spring 2027" --bank leadership --participants all
      feedback360 cycles launch 1          # emails every rater their link
      feedback360 cycles status 1          # who has answered (counts only)
      feedback360 cycles remind 1          # nudges raters who have not submitted
      feedback360 cycles close 1
      feedback360 cycles release 1         # freezes every report, emails each link
    """,
)


@contextmanager
def _unit_of_work(*expected: type[Exception]):
    """Commit once on success; a domain error rolls back and becomes a CLI message."""
    try:
        yield
    except (DomainError, *expected) as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()


def _cycle(cycle_id: int) -> Cycle:
    try:
        return cycles.get_cycle(db.session, cycle_id)
    except DomainError as error:
        raise click.ClickException(str(error)) from error


def _employee(external_id: str) -> Employee:
    employee = db.session.scalar(select(Employee).where(Employee.external_id == external_id))
    if employee is None:
        raise click.ClickException(f"no employee with id {external_id!r}")
    return employee


def _participants(spec: str) -> list[Employee]:
    active = select(Employee).where(Employee.active.is_(True)).order_by(Employee.name)
    if spec == "all":
        return list(db.session.scalars(active))
    if spec.startswith("department:"):
        department = spec.removeprefix("department:")
        found = list(db.session.scalars(active.where(Employee.department == department)))
        if not found:
            raise click.ClickException(f"nobody active in department {department!r}")
        return found
    return [_employee(part.strip()) for part in spec.split(",") if part.strip()]


@command.command("create")
@click.argument("name")
@click.option(
    "--bank",
    "bank_key",
    required=True,
    help="Question bank: a key (feedback360 banks list, or a bank uploaded in the console)"
    " or a YAML file.",
)
@click.option(
    "--participants",
    default="all",
    show_default=True,
    help="'all', 'department:NAME' or a comma-separated list of employee ids.",
)
@click.option(
    "--nominations",
    type=click.Choice(["auto", "participant"]),
    default="auto",
    show_default=True,
    help="auto: peers suggested from the org chart; participant: people nominate, "
    "their manager approves.",
)
@click.option("--no-approval", is_flag=True, help="Nominations need no manager approval.")
@click.option("--peer-min", type=int, default=3, show_default=True)
@click.option("--peer-max", type=int, default=6, show_default=True)
@click.option("--language", default="en", show_default=True)
@click.option(
    "--close-date", type=click.DateTime(["%Y-%m-%d"]), help="Closes itself after this day."
)
@click.option(
    "--reminder-days",
    type=int,
    default=3,
    show_default=True,
    help="Days between reminders to raters who have not submitted.",
)
@click.option("--max-reminders", type=int, default=3, show_default=True)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="GROUP=N",
    help="Anonymity threshold, e.g. --threshold peer=4 (groups: self, manager, peer, "
    "direct_report, other, others).",
)
def create(
    name,
    bank_key,
    participants,
    nominations,
    no_approval,
    peer_min,
    peer_max,
    language,
    close_date,
    reminder_days,
    max_reminders,
    thresholds,
):
    """Create a draft cycle NAME from a bank (the bank is frozen into the cycle)."""
    with _unit_of_work(BankError, UnknownBankError):
        # A YAML file (checked as `banks validate` does), or a bundled or custom bank's key.
        path = Path(bank_key)
        if path.suffix.lower() in (".yaml", ".yml"):  # a file, even a mistyped one
            bank = load_bank(path)
        else:
            bank = bank_store.get_bank(db.session, bank_key)
        parsed = dict(_threshold(t) for t in thresholds)
        cycle = cycles.create_cycle(
            db.session,
            name=name,
            bank=bank,
            participants=_participants(participants),
            settings={
                "nomination_mode": nominations,
                "approval_required": not no_approval,
                "peer_min": peer_min,
                "peer_max": peer_max,
                "language": language,
                "close_date": close_date.date().isoformat() if close_date else None,
                "reminder_interval_days": reminder_days,
                "max_reminders": max_reminders,
                "thresholds": parsed,
            },
        )
    click.echo(
        f"Created cycle {cycle.id} {cycle.name!r} ({len(cycle.participants)} participants,"
        f" bank {cycle.bank_key} {cycle.bank_version}). Next: feedback360 cycles "
        + ("open-nominations" if nominations == "participant" else "launch")
        + f" {cycle.id}"
    )


def _threshold(text: str) -> tuple[str, int]:
    group, _, value = text.partition("=")
    if not value.isdigit():
        raise DomainError(f"--threshold wants GROUP=N, not {text!r}")
    return group.strip(), int(value)


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cycles(as_json):
    """List every cycle with its id, state, number of participants and bank.

    Use the id with the other cycles commands; --json prints the same for scripts.
    """
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "state": c.state.value,
            "bank": c.bank_key,
            "participants": len(c.participants),
            "close_date": c.close_date.isoformat() if c.close_date else None,
        }
        for c in db.session.scalars(select(Cycle).order_by(Cycle.id))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['id']:>4}  {row['state']:<10} {row['participants']:>4} people  "
            f"{row['bank']:<22} {row['name']}"
        )
    if not rows:
        click.echo("No cycles yet. Create one with: feedback360 cycles create --help")


@command.command("open-nominations")
@click.argument("cycle_id", type=int)
def open_nominations(cycle_id):
    """Email every participant a link to nominate their peers (draft → nominating)."""
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        n = cycles.start_nominations(db.session, cycle, base_url=current_app.config["BASE_URL"])
    click.echo(f"Nomination links queued for {n} participants.")


@command.command("launch")
@click.argument("cycle_id", type=int)
@click.option(
    "--allow-short",
    is_flag=True,
    help="Launch even if some participants have fewer peers than the minimum.",
)
def launch(cycle_id, allow_short):
    """Open CYCLE_ID: assign raters and email each rater their personal links.

    Raters are the participant (self), their manager, their direct reports and peers
    (approved nominations, or colleagues suggested from the org chart). One email per
    rater lists all their surveys. Refuses if someone has fewer peers than the minimum.
    """
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        report = cycles.launch_cycle(
            db.session, cycle, base_url=current_app.config["BASE_URL"], allow_short=allow_short
        )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Cycle {cycle.id} is open: {report.assignments} surveys, {report.emails} emails queued."
    )


@command.command("status")
@click.argument("cycle_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def show_status(cycle_id, as_json):
    """Progress of CYCLE_ID: responses by relationship and per participant.

    Shows counts only (invited, submitted, in progress, declined) and never what anyone
    answered. Use --json for scripts and dashboards.
    """
    result = status.cycle_status(db.session, _cycle(cycle_id))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    t = result.total
    click.echo(
        f"{result.name} [{result.state}]  {t.submitted}/{t.invited} submitted "
        f"({t.rate:.0%}), {t.in_progress} in progress, {t.declined} declined"
    )
    click.echo("\nBy relationship:")
    for relationship, g in sorted(result.by_relationship.items()):
        click.echo(
            f"  {Relationship(relationship).label:<14} {g.submitted:>5}/{g.invited:<5} "
            f"{g.rate:>5.0%}"
        )
    click.echo("\nBy participant:")
    for p in result.participants:
        click.echo(
            f"  {p.name:<30} {p.total.submitted:>3}/{p.total.invited:<3} "
            + "  ".join(
                f"{Relationship(k).label.lower()} {g.submitted}/{g.invited}"
                for k, g in sorted(p.by_relationship.items())
            )
        )


@command.command("remind")
@click.argument("cycle_id", type=int)
def remind(cycle_id):
    """Email raters of CYCLE_ID who have not submitted yet.

    Each rater gets one email listing a fresh link for every survey still waiting; earlier
    links keep working. Nobody is reminded more often than the cycle's reminder interval
    or more times than its maximum. The worker also sends these on schedule.
    """
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        sent = cycles.remind(db.session, cycle, base_url=current_app.config["BASE_URL"])
    click.echo(
        f"{sent} reminder emails queued."
        if sent
        else "Nobody is due a reminder (everyone answered, or was reminded recently)."
    )


@command.command("close")
@click.argument("cycle_id", type=int)
def close(cycle_id):
    """Close CYCLE_ID: every survey link stops working at once.

    Submitted responses are kept; drafts nobody submitted are not counted. Cycles with a
    close date also close themselves on the day after it.
    """
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        responses = cycles.close_cycle(db.session, cycle)
    click.echo(f"Cycle {cycle.id} closed with {responses} responses.")


@command.command("release")
@click.argument("cycle_id", type=int)
def release(cycle_id):
    """Release the reports of closed cycle CYCLE_ID and email each participant their link.

    Every report is built once and frozen as version 1: the link always shows what was
    released, whatever happens to the data later. The cycle's pseudonym key is destroyed,
    so no response can ever again be linked to its rater. This cannot be undone, and the
    cycle cannot be reopened afterwards.
    """
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        summary = releases.release_cycle(db.session, cycle, base_url=current_app.config["BASE_URL"])
    held = (
        f" {summary.held} held back: send {'them' if summary.held != 1 else 'it'} with"
        " `feedback360 reports share`."
        if summary.held
        else ""
    )
    click.echo(
        f"Cycle {cycle.id} released: {summary.reports} reports frozen,"
        f" {summary.emails} email{'s' if summary.emails != 1 else ''} with report links"
        f" queued.{held}"
    )


@command.command("add-rater")
@click.argument("cycle_id", type=int)
@click.option("--participant", required=True, help="Employee id of the person being rated.")
@click.option("--rater", required=True, help="Employee id of the new rater.")
@click.option(
    "--relationship",
    type=click.Choice([r.value for r in Relationship]),
    default="peer",
    show_default=True,
)
def add_rater(cycle_id, participant, rater, relationship):
    """Add a rater to open cycle CYCLE_ID and email them their link.

    For example a colleague from another team: --relationship other. A participant
    never rates themself as a peer.
    """
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        cycles.invite_rater(
            db.session,
            cycle,
            _employee(participant),
            _employee(rater),
            Relationship(relationship),
            base_url=current_app.config["BASE_URL"],
        )
    click.echo(f"{rater} now rates {participant} as {relationship}; their link is queued.")


@command.command("remove-rater")
@click.argument("cycle_id", type=int)
@click.option("--participant", required=True)
@click.option("--rater", required=True)
def remove_rater(cycle_id, participant, rater):
    """Remove a rater who has not submitted from an open cycle (their link stops working)."""
    cycle = _cycle(cycle_id)
    with _unit_of_work():
        assignment = cycles.find_assignment(
            db.session, cycle, _employee(participant), _employee(rater)
        )
        assignments.remove_rater(db.session, assignment)
    click.echo(f"{rater} no longer rates {participant}.")
