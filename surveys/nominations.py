"""Peer nominations: the participant proposes, the manager approves or edits, HR overrides."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from surveys.db import utcnow
from surveys.emails import queue_email
from surveys.errors import DomainError
from surveys.models import (
    CycleState,
    Employee,
    Nomination,
    NominationStatus,
    Participant,
    TokenPurpose,
)
from surveys.tokens import issue_token


def eligible_peers(
    session: Session, participant: Participant, query: str = "", limit: int = 50
) -> list[Employee]:
    """Active colleagues who may be nominated: not the participant, their manager or reports."""
    person = participant.employee
    stmt = (
        select(Employee)
        .where(
            Employee.active.is_(True),
            Employee.id != person.id,
            or_(Employee.manager_id.is_(None), Employee.manager_id != person.id),
        )
        .order_by(Employee.name)
        .limit(limit)
    )
    if person.manager_id is not None:
        stmt = stmt.where(Employee.id != person.manager_id)
    # Typed text, not a pattern: "%" and "_" match themselves; PostgreSQL refuses NUL.
    text = query.replace("\x00", "").strip()
    if text:
        stmt = stmt.where(
            or_(
                Employee.name.icontains(text, autoescape=True),
                Employee.email.icontains(text, autoescape=True),
                Employee.department.icontains(text, autoescape=True),
            )
        )
    return list(session.scalars(stmt))


def _check_nominees(
    session: Session, participant: Participant, nominee_ids: Iterable[int]
) -> list[Employee]:
    cycle = participant.cycle
    if cycle.state not in (CycleState.DRAFT, CycleState.NOMINATING):
        raise DomainError("nominations are closed for this cycle")
    ids = list(dict.fromkeys(nominee_ids))
    person = participant.employee
    if person.id in ids:
        raise DomainError("you cannot nominate yourself as a peer")
    if not cycle.peer_min <= len(ids) <= cycle.peer_max:
        raise DomainError(
            f"please choose between {cycle.peer_min} and {cycle.peer_max} colleagues"
            f" (you chose {len(ids)})"
        )
    found = {e.id: e for e in session.scalars(select(Employee).where(Employee.id.in_(ids)))}
    unknown = [i for i in ids if i not in found or not found[i].active]
    if unknown:
        raise DomainError("some of the chosen colleagues are not available")
    for e in found.values():
        if e.id == person.manager_id:
            raise DomainError(f"{e.name} is your manager and already rates you as such")
        if e.manager_id == person.id:
            raise DomainError(f"{e.name} reports to you and already rates you as such")
    return [found[i] for i in ids]


def _replace(
    participant: Participant, nominees: list[Employee], status: NominationStatus, source: str
) -> None:
    keep = {n.id for n in nominees}
    by_nominee = {n.nominee_id: n for n in participant.nominations}
    for nomination in list(participant.nominations):
        if nomination.nominee_id not in keep:
            if status == NominationStatus.APPROVED:
                nomination.status = NominationStatus.REJECTED
            else:
                participant.nominations.remove(nomination)
    for nominee in nominees:
        existing = by_nominee.get(nominee.id)
        if existing is None:
            participant.nominations.append(
                Nomination(nominee=nominee, status=status, source=source)
            )
        else:
            existing.status = status


def submit_nominations(
    session: Session, participant: Participant, nominee_ids: Iterable[int], *, base_url: str
) -> bool:
    """The participant's list. Returns True when it went to the manager for approval."""
    nominees = _check_nominees(session, participant, nominee_ids)
    cycle = participant.cycle
    if cycle.approval_required and participant.nominations_approved_at is not None:
        raise DomainError("your manager has already approved your list; ask them to change it")
    manager = participant.employee.manager
    needs_approval = cycle.approval_required and manager is not None and manager.active
    status = NominationStatus.PROPOSED if needs_approval else NominationStatus.APPROVED
    _replace(participant, nominees, status, "participant")
    participant.nominations_submitted_at = utcnow()
    if not needs_approval:
        participant.nominations_approved_at = utcnow()
    session.flush()
    if needs_approval and manager is not None:
        raw = issue_token(session, TokenPurpose.APPROVE, cycle_id=cycle.id, participant=participant)
        queue_email(
            session,
            "approve",
            manager,
            cycle_id=cycle.id,
            cycle=cycle.name,
            participant=participant.employee.name,
            link=f"{base_url}/a/{raw}",
        )
        session.flush()
    return needs_approval


def approve_nominations(
    session: Session, participant: Participant, nominee_ids: Iterable[int], *, by: str = "manager"
) -> None:
    """The manager (or HR, ``by='hr'``) fixes the final list; it may differ from the proposal."""
    nominees = _check_nominees(session, participant, nominee_ids)
    _replace(participant, nominees, NominationStatus.APPROVED, by)
    participant.nominations_approved_at = utcnow()
    session.flush()
