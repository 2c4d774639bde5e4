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
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from surveys.assignments import add_rater, build_assignments
from surveys.db import utcnow
from surveys.emails import privacy, privacy_many, queue_email
from surveys.errors import DomainError, IllegalTransition
from surveys.models import (
    DEFAULT_THRESHOLDS,
    AccessToken,
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
from surveys.models.assignment import shown_by_name
from surveys.outbox import NOMINATION_KINDS, RATING_KINDS, cancel_unsent
from surveys.responses import cycle_bank
from surveys.tokens import issue_token, new_token

log = logging.getLogger(__name__)


#: Longest ``email_message`` HR may add to the emails (characters).
EMAIL_MESSAGE_MAX = 2000


class SettingsError(DomainError):
    """Settings the schema refuses; ``messages`` maps each field to its problems."""

    def __init__(self, messages: dict[str, Any]) -> None:
        self.messages = messages
        super().__init__(_format_errors(messages))


#: How far ahead a deadline may be: a review runs for weeks, so 9999-12-31 is a typo.
MAX_AHEAD = timedelta(days=366)


def _too_far(day: date) -> str:
    return f"{day.isoformat()} is more than a year away; check the year"


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
    #: HR's own words in the invitation and reminder emails (plain text; blank = none).
    email_message = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=EMAIL_MESSAGE_MAX)
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["peer_max"] < data["peer_min"]:
            raise ValidationError("peer_max must be at least peer_min", "peer_max")
        deadline, close = data["nomination_deadline"], data["close_date"]
        for key, day in (("nomination_deadline", deadline), ("close_date", close)):
            if day is not None and day > utcnow().date() + MAX_AHEAD:
                raise ValidationError(_too_far(day), key)
        if deadline and close and close <= deadline:
            raise ValidationError(
                "the close date must be after the nomination deadline", "close_date"
            )
        message = data["email_message"]
        if message is not None:
            # Plain text: line breaks and tabs only (a NUL cannot even be stored).
            if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in message):
                raise ValidationError(
                    "the message may contain no control characters", "email_message"
                )
            data["email_message"] = message.replace("\r\n", "\n").strip() or None
        thresholds = {**DEFAULT_THRESHOLDS, **data["thresholds"]}
        too_low = [
            f"{group} threshold below 2 would show single raters' answers"
            for group in ("peer", "direct_report", "other", "others")
            if thresholds[group] < 2
        ]
        if too_low:  # every group at once, each message naming its group first
            raise ValidationError(too_low, "thresholds")
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
        raise SettingsError(error.normalized_messages()) from error
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


def update_cycle_settings(session: Session, cycle: Cycle, values: dict[str, Any]) -> list[str]:
    """Change some settings (and ``name``) of a draft cycle; returns the names changed.

    The cycle's current settings fill in what ``values`` leaves out, and the whole set is
    checked again by :class:`CycleSettingsSchema`, so a draft is never half-valid.
    """
    if cycle.state != CycleState.DRAFT:
        raise DomainError(f"cycle {cycle.name!r} is {cycle.state.value}; only drafts can be edited")
    values = dict(values)
    name = values.pop("name", None)
    schema = CycleSettingsSchema()
    current = {key: getattr(cycle, key) for key in schema.fields}
    try:
        loaded = schema.load({**current, **values})
    except ValidationError as error:
        raise SettingsError(error.normalized_messages()) from error
    languages = tuple(cycle.bank_snapshot.get("translations") or ())
    if loaded["language"] not in (cycle.bank_snapshot.get("language"), *languages):
        raise SettingsError({"language": [f"the bank has no {loaded['language']!r} texts"]})
    if name is not None:
        if not name.strip() or len(name.strip()) > 200:
            raise SettingsError({"name": ["a cycle needs a name of at most 200 characters"]})
        loaded["name"] = name.strip()
    changed = [key for key, value in loaded.items() if getattr(cycle, key) != value]
    for key in changed:
        setattr(cycle, key, loaded[key])
    session.flush()
    return changed


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
    lock_cycle(session, cycle)
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
            message=cycle.email_message or "",
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
    lock_cycle(session, cycle)
    if cycle.state not in (CycleState.DRAFT, CycleState.NOMINATING):
        raise IllegalTransition(
            f"cycle {cycle.name!r} is {cycle.state.value}; only a new cycle launches"
        )
    if cycle.close_date is not None and cycle.close_date < now.date():
        # The worker closes a cycle the day after its close date: it would close at once.
        raise DomainError(
            f"the close date {cycle.close_date.isoformat()} has passed: set a later one first"
            " (console: the cycle's settings)"
        )
    plan = build_assignments(session, cycle)
    if plan.short and not allow_short:
        raise DomainError(
            "too few peers (minimum "
            f"{cycle.peer_min}) for: "
            + ", ".join(f"{name} ({n})" for name, n in plan.short)
            + ". Add peers, or open it anyway with fewer (command line: --allow-short;"
            " console: “Open even where someone has fewer peers”; API: allow_short)."
        )
    if cycle.state == CycleState.NOMINATING:
        # Nomination links stop working once the cycle opens.
        cancel_unsent(session, cycle.id, NOMINATION_KINDS)
    cycle.move_to(CycleState.OPEN)
    cycle.launched_at = now
    cycle.pseudonym_key = secrets.token_bytes(32)
    session.flush()
    rows = [{**row, "invited_at": now} for row in plan.assignments]
    ids = (
        session.scalars(
            insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True), rows
        ).all()
        if rows
        else []
    )
    surveys = [
        _Survey(
            assignment_id=assignment_id,
            rater=plan.employees[row["rater_id"]],  # type: ignore[index]
            relationship=row["relationship"],  # type: ignore[arg-type]
            participant_name=plan.names[row["participant_id"]],  # type: ignore[index]
        )
        for assignment_id, row in zip(ids, rows, strict=True)
    ]
    report = LaunchReport(assignments=len(surveys), warnings=plan.warnings)
    report.emails = _invite(session, cycle, surveys, base_url=base_url)
    session.flush()
    return report


@dataclass(frozen=True)
class _Survey:
    """What a rater's email says about one of their surveys."""

    assignment_id: int
    rater: Employee
    relationship: Relationship
    participant_name: str

    @classmethod
    def of(cls, assignment: Assignment) -> _Survey:
        return cls(
            assignment.id,
            assignment.rater,
            assignment.relationship,
            assignment.participant.employee.name,
        )

    @property
    def sort_key(self) -> tuple[int, str]:
        return (0 if self.relationship == Relationship.SELF else 1, self.participant_name)

    def named(self, cycle: Cycle) -> bool:
        """Whether the report shows this rater's answers as theirs ("Manager")."""
        return shown_by_name(self.relationship, cycle)

    def listing_name(self, cycle: Cycle) -> str:
        if self.relationship == Relationship.SELF:
            return "Yourself (self-assessment)"
        named = ", not anonymous" if self.named(cycle) else ""
        return f"{self.participant_name} (as their {_role_phrase(self.relationship)}{named})"


def _invite(
    session: Session,
    cycle: Cycle,
    surveys: list[_Survey],
    *,
    base_url: str,
    kind: str = "invite",
) -> int:
    """One email per rater, listing a fresh link for each of their surveys.

    Mints the links (one bulk insert) and queues the emails; the caller records the
    invitation or reminder on the assignments.
    """
    by_rater: dict[int, list[_Survey]] = defaultdict(list)
    for survey in surveys:
        by_rater[survey.rater.id].append(survey)
    tokens = []
    for group in by_rater.values():
        lines = []
        for survey in group:
            raw, row = new_token(
                TokenPurpose.RATE, cycle_id=cycle.id, assignment_id=survey.assignment_id
            )
            tokens.append(row)
            lines.append((survey, f"{base_url}/s/{raw}"))
        _queue_rating_email(session, cycle, kind, lines)
    if tokens:
        session.execute(insert(AccessToken), tokens)
    return len(by_rater)


def _queue_rating_email(
    session: Session, cycle: Cycle, kind: str, lines: list[tuple[_Survey, str]]
) -> None:
    rater = lines[0][0].rater
    if len(lines) == 1:
        survey, link = lines[0]
        is_self = survey.relationship == Relationship.SELF
        template = "self_invite" if is_self and kind == "invite" else kind
        queue_email(
            session,
            kind,
            rater,
            cycle_id=cycle.id,
            template=template,
            cycle=cycle.name,
            participant="yourself" if is_self else survey.participant_name,
            role=_role_phrase(survey.relationship),
            privacy=privacy(survey.participant_name, named=survey.named(cycle)),
            **({"minutes": _minutes(cycle)} if kind == "invite" else {}),
            link=link,
            deadline=_fmt(cycle.close_date),
            message=cycle.email_message or "",
        )
        return
    listing = "\n".join(
        f"- {s.listing_name(cycle)}: {link}"
        for s, link in sorted(lines, key=lambda x: x[0].sort_key)
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
        privacy=privacy_many(named=any(survey.named(cycle) for survey, _ in lines)),
        **({"minutes": _minutes(cycle)} if kind == "invite" else {}),
        deadline=_fmt(cycle.close_date),
        message=cycle.email_message or "",
    )


def _minutes(cycle: Cycle) -> str:
    """How long one survey takes, for invitations (reminders don't say)."""
    return str(cycle_bank(cycle).minutes_to_answer)


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


def lock_cycle(session: Session, cycle: Cycle) -> None:
    """Take the cycle's row lock and re-read it, before a state change.

    Two HR tabs (or a double click, or the scheduler) moving the same cycle at once: the
    second waits for the first to commit, then sees the new state and is refused, instead
    of launching twice or emailing everyone twice. (PostgreSQL; SQLite serialises writers
    anyway.) Pending changes to the cycle are flushed first so the re-read keeps them.
    """
    session.flush()
    session.refresh(cycle, with_for_update=True)


def close_cycle(session: Session, cycle: Cycle, *, now: datetime | None = None) -> int:
    """open → closed. Links stop working at once; unsubmitted drafts are deleted (they name
    their rater) and their surveys count as not answered (pending) again, and invitations
    and reminders not sent yet are cancelled (their links no longer work). Returns the
    number of responses."""
    lock_cycle(session, cycle)
    cycle.move_to(CycleState.CLOSED)
    cycle.closed_at = now or utcnow()
    session.execute(
        delete(Draft).where(
            Draft.assignment_id.in_(select(Assignment.id).where(Assignment.cycle_id == cycle.id))
        )
    )
    session.execute(
        update(Assignment)
        .where(
            Assignment.cycle_id == cycle.id,
            Assignment.status == AssignmentStatus.IN_PROGRESS,
        )
        .values(status=AssignmentStatus.PENDING)
    )
    cancelled = cancel_unsent(session, cycle.id, (*RATING_KINDS, *NOMINATION_KINDS))
    if cancelled:
        log.info("cycle %s closed: %s unsent survey email(s) cancelled", cycle.id, cancelled)
    session.flush()
    from surveys.status import count_responses

    return count_responses(session, cycle)


def extend_deadline(
    session: Session, cycle: Cycle, close_date: date, *, today: date | None = None
) -> date | None:
    """Move the cycle's close date later; returns the previous one (``None`` if unset).

    Only forward, and only while raters can still answer (nominating or open): an
    earlier date would surprise raters who planned by the emailed deadline, and a
    date in the past would close the cycle at the scheduler's next run.
    """
    today = today or utcnow().date()
    if cycle.state not in (CycleState.NOMINATING, CycleState.OPEN):
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; only a nominating or open"
            " cycle's deadline can be extended"
        )
    if close_date <= today:
        raise DomainError(f"the new close date must be after today ({_fmt(today)})")
    if close_date > today + MAX_AHEAD:
        raise DomainError(_too_far(close_date))
    previous = cycle.close_date
    if previous is not None and close_date <= previous:
        raise DomainError(
            f"the new close date must be later than the current one ({_fmt(previous)})"
        )
    cycle.close_date = close_date
    session.flush()
    return previous


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
    for assignment in due:
        assignment.reminders_sent += 1
        assignment.last_reminded_at = now
    sent = _invite(session, cycle, [_Survey.of(a) for a in due], base_url=base_url, kind="reminder")
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
    assignment.invited_at = now or utcnow()
    _invite(session, cycle, [_Survey.of(assignment)], base_url=base_url)
    session.flush()
    return assignment
