"""Setting up a draft cycle step by step: who takes part, which bank, and the checks
that run before launch (issue #5 §4).

The console's set-up wizard edits one draft cycle in several steps; these services do
the work of the steps that are not plain settings (those go through
:func:`surveys.cycles.update_cycle_settings`) and say, before the one launch action,
everything that would stop the launch or surprise HR afterwards. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveys.assignments import suggest_peers
from surveys.banks import Bank
from surveys.cycles import SettingsError, add_participants, update_cycle_settings
from surveys.emails import privacy, render_email
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, Employee, NominationMode
from surveys.responses import cycle_bank

#: Stand-ins for the people and link in an email preview.
SAMPLE_RATER = "Alex Sample"
SAMPLE_PARTICIPANT = "Sam Example"
SAMPLE_LINK = "https://feedback.example/s/your-personal-link"


def require_draft(cycle: Cycle) -> None:
    """Only a draft is set up; once nominations or surveys are out, settings are fixed."""
    if cycle.state != CycleState.DRAFT:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; only draft cycles can be edited"
        )


def active_employees(session: Session) -> list[Employee]:
    """Everyone who can take part, by department then name (the order of the picker)."""
    return list(
        session.scalars(
            select(Employee)
            .where(Employee.active.is_(True))
            .order_by(Employee.department, Employee.name, Employee.external_id)
        )
    )


def departments(session: Session) -> list[str]:
    """Departments that have at least one active employee, sorted."""
    found = session.scalars(
        select(Employee.department)
        .where(Employee.active.is_(True), Employee.department.is_not(None))
        .distinct()
    )
    return sorted(d for d in found if d)


def change_bank(session: Session, cycle: Cycle, bank: Bank, language: str) -> list[str]:
    """Freeze another bank (or another version of it) and language into a draft.

    Returns what changed (``bank``, ``language``). The language is checked against the
    new bank, so a draft never asks for texts its bank does not have.
    """
    require_draft(cycle)
    if language not in bank.languages:
        raise SettingsError(
            {"language": [f"{bank.title} has no {language!r} texts ({', '.join(bank.languages)})"]}
        )
    changed = []
    if (cycle.bank_key, cycle.bank_version) != (bank.key, bank.version):
        cycle.bank_key = bank.key
        cycle.bank_version = bank.version
        cycle.bank_snapshot = bank.to_snapshot()
        changed.append("bank")
    return changed + update_cycle_settings(session, cycle, {"language": language})


def set_participants(session: Session, cycle: Cycle, employees: Iterable[Employee]) -> int:
    """Make ``employees`` (active ones) the draft's participants; returns how many.

    A draft has no nominations or surveys yet, so people taken out leave nothing behind.
    """
    require_draft(cycle)
    wanted = {e.id: e for e in employees if e.active}
    for participant in list(cycle.participants):
        if participant.employee_id not in wanted:
            cycle.participants.remove(participant)
    present = {p.employee_id for p in cycle.participants}
    add_participants(session, cycle, [e for i, e in wanted.items() if i not in present])
    session.flush()
    return len(cycle.participants)


def participant_scope(session: Session, cycle: Cycle) -> tuple[str, str | None]:
    """How the draft's participants were probably chosen: ``("all", None)``,
    ``("department", name)`` or ``("list", None)``, so the step reopens as it was left."""
    chosen = {p.employee_id for p in cycle.participants}
    if not chosen:
        return "all", None
    active = active_employees(session)
    if chosen == {e.id for e in active}:
        return "all", None
    for name in departments(session):
        if chosen == {e.id for e in active if e.department == name}:
            return "department", name
    return "list", None


@dataclass
class Review:
    """What the review step shows: problems block the launch, warnings need a look."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: (participant name, peers available) where fewer than the cycle's peer minimum.
    short: list[tuple[str, int]] = field(default_factory=list)
    #: Surveys the launch would create (an estimate in nomination mode).
    surveys: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def review_cycle(session: Session, cycle: Cycle, *, today: date) -> Review:
    """Check a draft as a whole before launch: participants, raters, dates, anonymity."""
    review = Review()
    if cycle.state != CycleState.DRAFT:
        review.problems.append(f"The cycle is {cycle.state.value}; only a draft can be launched.")
    _check_participants(session, cycle, review)
    _check_dates(cycle, today, review)
    _check_anonymity(cycle, review)
    return review


def _check_participants(session: Session, cycle: Cycle, review: Review) -> None:
    if not cycle.participants:
        review.problems.append("Choose at least one participant.")
        return
    employees = {e.id: e for e in active_employees(session)}
    reports: dict[int, list[Employee]] = {}
    for e in employees.values():
        if e.manager_id is not None:
            reports.setdefault(e.manager_id, []).append(e)
    for participant in cycle.participants:
        person = employees.get(participant.employee_id)
        if person is None:
            review.warnings.append(
                f"{participant.employee.name} is no longer active and will be skipped."
            )
            continue
        peers = _possible_peers(cycle, person, employees, reports)
        if peers < cycle.peer_min:
            review.short.append((person.name, peers))
        review.surveys += _raters(cycle, person, employees, reports) + min(peers, cycle.peer_max)
    if review.short:
        names = ", ".join(f"{name} ({n})" for name, n in review.short)
        review.warnings.append(
            f"Fewer possible peers than the minimum of {cycle.peer_min} for: {names}."
        )


def _possible_peers(
    cycle: Cycle,
    person: Employee,
    employees: dict[int, Employee],
    reports: dict[int, list[Employee]],
) -> int:
    """Org-chart suggestions (auto mode), or anyone they could nominate (nomination mode)."""
    if cycle.nomination_mode == NominationMode.AUTO:
        return len(suggest_peers(person, employees.values(), reports))
    excluded = {person.id, person.manager_id} | {r.id for r in reports.get(person.id, [])}
    return sum(1 for i in employees if i not in excluded)


def _raters(
    cycle: Cycle,
    person: Employee,
    employees: dict[int, Employee],
    reports: dict[int, list[Employee]],
) -> int:
    """Self, manager and direct reports the cycle includes for ``person``."""
    count = 1 if cycle.include_self else 0
    if cycle.include_manager and person.manager_id in employees:
        count += 1
    if cycle.include_direct_reports:
        count += len(reports.get(person.id, []))
    return count


def _check_dates(cycle: Cycle, today: date, review: Review) -> None:
    nominating = cycle.nomination_mode == NominationMode.PARTICIPANT
    if cycle.close_date is None:
        review.problems.append("Set a close date (the date in every invitation).")
    elif cycle.close_date <= today:
        review.problems.append("The close date must be in the future.")
    if nominating and cycle.nomination_deadline is None:
        review.problems.append("Set a nomination deadline (participants nominate before it).")
    elif cycle.nomination_deadline is not None:
        if cycle.nomination_deadline <= today:
            review.problems.append("The nomination deadline must be in the future.")
        if cycle.close_date is not None and cycle.close_date <= cycle.nomination_deadline:
            review.problems.append("The close date must be after the nomination deadline.")
        if not nominating:
            review.warnings.append(
                "Peers are suggested from the org chart, so the nomination deadline is unused."
            )


def _check_anonymity(cycle: Cycle, review: Review) -> None:
    if cycle.peer_max < cycle.threshold("peer"):
        review.warnings.append(
            f"At most {cycle.peer_max} peers rate each participant but the peer group needs"
            f" {cycle.threshold('peer')} answers to be shown: peer feedback will always be"
            " folded into “All others”."
        )
    elif cycle.peer_min < cycle.threshold("peer"):
        review.warnings.append(
            f"A participant may have as few as {cycle.peer_min} peers but the peer group needs"
            f" {cycle.threshold('peer')} answers to be shown: where fewer peers answer, their"
            " feedback is folded into “All others” or, when that would single them out,"
            " hidden. Set the minimum to at least the threshold, plus one or two for people"
            " who don't answer."
        )
    lowest = min(cycle.threshold(g) for g in ("peer", "direct_report", "other", "others"))
    if lowest < 3:
        review.warnings.append(
            f"A threshold of {lowest} means that one rater of a group of two who shares their"
            " own answers gives away the other's: 3 or more is safer."
        )
    others = cycle.include_self or cycle.include_manager or cycle.include_direct_reports
    if not others and cycle.peer_max == 0:
        review.problems.append("Nobody would rate the participants: include some raters.")


@dataclass(frozen=True)
class EmailPreview:
    title: str
    subject: str
    body: str


def preview_emails(cycle: Cycle, message: str | None = None) -> list[EmailPreview]:
    """The invitation and reminder as a rater would get them, with sample names and link.

    ``message`` overrides the cycle's ``email_message`` (to preview unsaved text).
    """
    text = cycle.email_message if message is None else message
    common: dict[str, Any] = {
        "name": SAMPLE_RATER,
        "cycle": cycle.name,
        "participant": SAMPLE_PARTICIPANT,
        "role": "peer",
        "privacy": privacy(SAMPLE_PARTICIPANT, named=False),
        "minutes": str(cycle_bank(cycle).minutes_to_answer),
        "link": SAMPLE_LINK,
        "deadline": cycle.close_date.strftime("%d %B %Y").lstrip("0") if cycle.close_date else "",
        "message": text or "",
    }
    shown = [("Invitation", "invite"), ("Reminder", "reminder")]
    if cycle.nomination_mode == NominationMode.PARTICIPANT:
        deadline = cycle.nomination_deadline
        nominate = {
            **common,
            "name": SAMPLE_PARTICIPANT,
            "link": SAMPLE_LINK.replace("/s/", "/n/"),
            "peer_min": str(cycle.peer_min),
            "peer_max": str(cycle.peer_max),
            "deadline": deadline.strftime("%d %B %Y").lstrip("0") if deadline else "",
        }
        previews = [EmailPreview("Nomination request", *render_email("nominate", nominate))]
    else:
        previews = []
    previews += [EmailPreview(title, *render_email(key, common)) for title, key in shown]
    return previews
