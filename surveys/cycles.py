"""Review cycles: creation from a bank, the state machine's moves, launch and reminders.

Services flush and never commit: the request or CLI command commits once.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from surveys.assignments import add_rater, build_assignments
from surveys.db import utcnow
from surveys.emails import queue_email
from surveys.errors import DomainError, IllegalTransition
from surveys.models import (
    DEFAULT_THRESHOLDS,
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Draft,
    Employee,
    NominationMode,
    Participant,
    Relationship,
    TokenPurpose,
)
from surveys.tokens import issue_token

log = logging.getLogger(__name__)


class CycleSettingsSchema(Schema):
    """The settings HR chooses for a cycle (DESIGN §3), shared by CLI, console and API."""

    language = fields.String(load_default="en", validate=validate.Length(min=2, max=8))
    nomination_mode = fields.Enum(NominationMode, by_value=True, load_default=NominationMode.AUTO)
    approval_required = fields.Boolean(load_default=True)
    peer_min = fields.Integer(load_default=3, validate=validate.Range(min=0, max=20))
    peer_max = fields.Integer(load_default=6, validate=validate.Range(min=0, max=30))
    include_self = fields.Boolean(load_default=True)
    include_manager = fields.Boolean(load_default=True)
    include_direct_reports = fields.Boolean(load_default=True)
    show_manager = fields.Boolean(load_default=True)
    thresholds = fields.Dict(
        keys=fields.String(validate=validate.OneOf(list(DEFAULT_THRESHOLDS))),
        values=fields.Integer(validate=validate.Range(min=1, max=50)),
        load_default=dict,
    )
    reminder_interval_days = fields.Integer(load_default=3, validate=validate.Range(min=1))
    max_reminders = fields.Integer(load_default=3, validate=validate.Range(min=0, max=20))
    nomination_deadline = fields.Date(load_default=None, allow_none=True)
    close_date = fields.Date(load_default=None, allow_none=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["peer_max"] < data["peer_min"]:
            raise ValidationError("peer_max must be at least peer_min", "peer_max")
        thresholds = {**DEFAULT_THRESHOLDS, **data["thresholds"]}
        for group in ("peer", "direct_report", "other", "others"):
            if thresholds[group] < 2:
                raise ValidationError(
                    f"{group} threshold below 2 would show single raters' answers", "thresholds"
                )
        data["thresholds"] = thresholds


def create_cycle(
    session: Session,
    *,
    name: str,
    bank: Any,
    participants: Iterable[Employee] = (),
    settings: dict[str, Any] | None = None,
) -> Cycle:
    """Create a draft cycle with a frozen snapshot of ``bank`` (a surveys.banks.Bank)."""
    if not name.strip():
        raise DomainError("a cycle needs a name")
    try:
        values = CycleSettingsSchema().load(settings or {})
    except ValidationError as error:
        raise DomainError(_format_errors(error.messages)) from error
    if values["language"] not in bank.languages:
        raise DomainError(
            f"bank {bank.key!r} has no {values['language']!r} texts"
            f" (it has {', '.join(bank.languages)})"
        )
    cycle = Cycle(
        name=name.strip(),
        state=CycleState.DRAFT,
        bank_key=bank.key,
        bank_version=bank.version,
        bank_snapshot=bank.to_snapshot(),
        **values,
    )
    session.add(cycle)
    add_participants(session, cycle, participants)
    session.flush()
    return cycle


def _format_errors(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_format_errors(value)}" for key, value in messages.items())
    if isinstance(messages, list):
        return ", ".join(str(m) for m in messages)
    return str(messages)


def add_participants(session: Session, cycle: Cycle, employees: Iterable[Employee]) -> int:
    if cycle.state not in (CycleState.DRAFT, CycleState.NOMINATING):
        raise DomainError("participants can only be added before the cycle opens")
    present = {p.employee_id for p in cycle.participants}
    added = 0
    for employee in employees:
        if employee.id not in present and employee.active:
            cycle.participants.append(Participant(employee=employee))
            present.add(employee.id)
            added += 1
    return added


def start_nominations(
    session: Session, cycle: Cycle, *, base_url: str, now: datetime | None = None
) -> int:
    """draft → nominating: email every participant a link to nominate their peers."""
    if cycle.nomination_mode != NominationMode.PARTICIPANT:
        raise DomainError("this cycle suggests peers from the org chart; it has no nominations")
    _require_participants(cycle)
    cycle.move_to(CycleState.NOMINATING)
    session.flush()
    for participant in cycle.participants:
        raw = issue_token(
            session, TokenPurpose.NOMINATE, cycle_id=cycle.id, participant=participant
        )
        queue_email(
            session,
            "nominate",
            participant.employee,
            cycle_id=cycle.id,
            cycle=cycle.name,
            link=f"{base_url}/n/{raw}",
            peer_min=str(cycle.peer_min),
            peer_max=str(cycle.peer_max),
            deadline=_fmt(cycle.nomination_deadline),
        )
    session.flush()
    return len(cycle.participants)


def _require_participants(cycle: Cycle) -> None:
    if not cycle.participants:
        raise DomainError(f"cycle {cycle.name!r} has no participants")


@dataclass
class LaunchReport:
    assignments: int = 0
    emails: int = 0
    warnings: list[str] = field(default_factory=list)


def launch_cycle(
    session: Session,
    cycle: Cycle,
    *,
    base_url: str,
    now: datetime | None = None,
    allow_short: bool = False,
) -> LaunchReport:
    """Open the cycle: assign raters, mint their links and queue one email per rater.

    Refuses when a participant would have fewer peers than the cycle's minimum, unless
    ``allow_short`` (HR can add raters later).
    """
    now = now or utcnow()
    _require_participants(cycle)
    if cycle.state not in (CycleState.DRAFT, CycleState.NOMINATING):
        raise IllegalTransition(
            f"cycle {cycle.name!r} is {cycle.state.value}; only a new cycle launches"
        )
    plan = build_assignments(session, cycle)
    if plan.short and not allow_short:
        raise DomainError(
            "too few peers (minimum "
            f"{cycle.peer_min}) for: "
            + ", ".join(f"{name} ({n})" for name, n in plan.short)
            + ". Add peers or launch with allow_short."
        )
    cycle.move_to(CycleState.OPEN)
    cycle.launched_at = now
    cycle.pseudonym_key = secrets.token_bytes(32)
    session.add_all(plan.assignments)
    session.flush()
    report = LaunchReport(assignments=len(plan.assignments), warnings=plan.warnings)
    report.emails = _invite(session, cycle, plan.assignments, base_url=base_url, now=now)
    session.flush()
    return report


def _invite(
    session: Session,
    cycle: Cycle,
    assignments: list[Assignment],
    *,
    base_url: str,
    now: datetime,
    kind: str = "invite",
) -> int:
    """One email per rater, listing a fresh link for each of their surveys."""
    by_rater: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in assignments:
        by_rater[assignment.rater_id].append(assignment)
    for group in by_rater.values():
        lines = []
        for assignment in group:
            raw = issue_token(session, TokenPurpose.RATE, cycle_id=cycle.id, assignment=assignment)
            lines.append((assignment, f"{base_url}/s/{raw}"))
            if kind == "invite":
                assignment.invited_at = now
            else:
                assignment.reminders_sent += 1
                assignment.last_reminded_at = now
        _queue_rating_email(session, cycle, kind, lines)
    return len(by_rater)


def _queue_rating_email(
    session: Session, cycle: Cycle, kind: str, lines: list[tuple[Assignment, str]]
) -> None:
    rater = lines[0][0].rater
    if len(lines) == 1:
        assignment, link = lines[0]
        is_self = assignment.relationship == Relationship.SELF
        template = "self_invite" if is_self and kind == "invite" else kind
        queue_email(
            session,
            kind,
            rater,
            cycle_id=cycle.id,
            template=template,
            cycle=cycle.name,
            participant="yourself" if is_self else assignment.participant.employee.name,
            role=_role_phrase(assignment.relationship),
            link=link,
            deadline=_fmt(cycle.close_date),
        )
        return
    listing = "\n".join(
        f"- {_listing_name(a)}: {link}" for a, link in sorted(lines, key=lambda x: _sort_key(x[0]))
    )
    queue_email(
        session,
        kind,
        rater,
        cycle_id=cycle.id,
        template=f"{kind}_many",
        cycle=cycle.name,
        count=str(len(lines)),
        listing=listing,
        deadline=_fmt(cycle.close_date),
    )


def _sort_key(assignment: Assignment) -> tuple[int, str]:
    return (
        0 if assignment.relationship == Relationship.SELF else 1,
        assignment.participant.employee.name,
    )


def _listing_name(assignment: Assignment) -> str:
    if assignment.relationship == Relationship.SELF:
        return "Yourself (self-assessment)"
    return (
        f"{assignment.participant.employee.name} (as their {_role_phrase(assignment.relationship)})"
    )


def _role_phrase(relationship: Relationship) -> str:
    return {
        Relationship.SELF: "self",
        Relationship.MANAGER: "manager",
        Relationship.PEER: "peer",
        Relationship.DIRECT_REPORT: "direct report",
        Relationship.OTHER: "colleague",
    }[relationship]


def _fmt(day: date | None) -> str:
    return day.strftime("%d %B %Y").lstrip("0") if day else ""


def close_cycle(session: Session, cycle: Cycle, *, now: datetime | None = None) -> int:
    """open → closed. Links stop working at once; unsubmitted drafts are deleted (they name
    their rater). Returns the number of responses."""
    cycle.move_to(CycleState.CLOSED)
    cycle.closed_at = now or utcnow()
    session.execute(
        delete(Draft).where(
            Draft.assignment_id.in_(select(Assignment.id).where(Assignment.cycle_id == cycle.id))
        )
    )
    session.flush()
    from surveys.status import count_responses

    return count_responses(session, cycle)


def due_reminders(
    cycle: Cycle, assignments: Iterable[Assignment], now: datetime
) -> list[Assignment]:
    """Assignments whose rater may be reminded now: unanswered, under the cycle's cap,
    and not reminded (or invited) within the cycle's interval."""
    interval = timedelta(days=cycle.reminder_interval_days)
    due = []
    for assignment in assignments:
        if assignment.is_done or assignment.reminders_sent >= cycle.max_reminders:
            continue
        last = assignment.last_reminded_at or assignment.invited_at
        if last is None or now - last >= interval:
            due.append(assignment)
    return due


def remind(session: Session, cycle: Cycle, *, base_url: str, now: datetime | None = None) -> int:
    """Email raters who have not answered, never more often than the cycle allows.

    Returns the number of emails queued (one per rater, listing all their open surveys).
    """
    if cycle.state != CycleState.OPEN:
        raise DomainError(f"cycle {cycle.name!r} is {cycle.state.value}; only open cycles remind")
    now = now or utcnow()
    assignments = session.scalars(
        select(Assignment)
        .where(
            Assignment.cycle_id == cycle.id,
            Assignment.status.in_([AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS]),
        )
        .options(
            selectinload(Assignment.rater),
            selectinload(Assignment.participant).selectinload(Participant.employee),
        )
    ).all()
    due = due_reminders(cycle, assignments, now)
    sent = _invite(session, cycle, due, base_url=base_url, now=now, kind="reminder")
    session.flush()
    return sent


def run_schedule(session: Session, *, base_url: str, now: datetime | None = None) -> dict[str, int]:
    """The periodic job: close cycles past their close date, remind the rest."""
    now = now or utcnow()
    closed = reminded = 0
    for cycle in session.scalars(select(Cycle).where(Cycle.state == CycleState.OPEN)).all():
        try:
            # One failing cycle must not stop the schedule for every other one.
            with session.begin_nested():
                if cycle.close_date and now.date() > cycle.close_date:
                    close_cycle(session, cycle, now=now)
                    closed += 1
                elif cycle.max_reminders:
                    reminded += remind(session, cycle, base_url=base_url, now=now)
        except Exception:
            log.exception("scheduled work for cycle %s failed; the others go on", cycle.id)
    return {"closed": closed, "reminded": reminded}


def get_cycle(session: Session, cycle_id: int) -> Cycle:
    cycle = session.get(Cycle, cycle_id)
    if cycle is None:
        raise DomainError(f"no cycle with id {cycle_id}")
    return cycle


def find_assignment(
    session: Session, cycle: Cycle, participant: Employee, rater: Employee
) -> Assignment:
    assignment = session.scalar(
        select(Assignment)
        .join(Participant, Participant.id == Assignment.participant_id)
        .where(
            Assignment.cycle_id == cycle.id,
            Participant.employee_id == participant.id,
            Assignment.rater_id == rater.id,
        )
    )
    if assignment is None:
        raise DomainError(f"{rater.name} does not rate {participant.name} in this cycle")
    return assignment


def invite_rater(
    session: Session,
    cycle: Cycle,
    participant: Employee,
    rater: Employee,
    relationship: Relationship,
    *,
    base_url: str,
    now: datetime | None = None,
) -> Assignment:
    """HR adds a rater while the cycle is open; the rater's link is emailed at once."""
    entry = session.scalar(
        select(Participant).where(
            Participant.cycle_id == cycle.id, Participant.employee_id == participant.id
        )
    )
    if entry is None:
        raise DomainError(f"{participant.name} is not a participant of this cycle")
    assignment = add_rater(session, cycle, entry, rater, relationship)
    _invite(session, cycle, [assignment], base_url=base_url, now=now or utcnow())
    session.flush()
    return assignment
