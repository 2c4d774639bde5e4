"""Peer nominations: the participant proposes, the manager approves or edits, HR overrides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from surveys.db import utcnow
from surveys.emails import queue_email
from surveys.errors import DomainError
from surveys.models import (
    Cycle,
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
        raise DomainError("Nominations are closed for this cycle.")
    ids = list(dict.fromkeys(nominee_ids))
    person = participant.employee
    if person.id in ids:
        raise DomainError("You cannot nominate yourself as a peer.")
    if not cycle.peer_min <= len(ids) <= cycle.peer_max:
        raise DomainError(
            f"Please choose between {cycle.peer_min} and {cycle.peer_max} colleagues"
            f" (you chose {len(ids)})."
        )
    found = {e.id: e for e in session.scalars(select(Employee).where(Employee.id.in_(ids)))}
    unknown = [i for i in ids if i not in found or not found[i].active]
    if unknown:
        raise DomainError("Some of the chosen colleagues are not available.")
    for e in found.values():
        if e.id == person.manager_id:
            raise DomainError(f"{e.name} is your manager and already rates you as such.")
        if e.manager_id == person.id:
            raise DomainError(f"{e.name} reports to you and already rates you as such.")
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
        raise DomainError("Your manager has already approved your list; ask them to change it.")
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
            deadline=(
                cycle.nomination_deadline.strftime("%d %B %Y").lstrip("0")
                if cycle.nomination_deadline
                else ""
            ),
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


# -- HR's view and override (issue #5 §5) ----------------------------------------------------


@dataclass(frozen=True)
class NominatedPeer:
    employee_id: int
    name: str
    status: str
    #: Who put the name forward: participant, manager, hr or auto.
    source: str


@dataclass(frozen=True)
class ParticipantNominations:
    participant_id: int
    name: str
    manager: str | None
    peers: list[NominatedPeer]
    submitted: bool
    approved: bool

    @property
    def state(self) -> str:
        """One word for HR's list: approved, awaiting approval, or not submitted."""
        if self.approved:
            return "approved"
        if self.submitted:
            return "awaiting approval"
        return "not submitted"


def nominations_overview(session: Session, cycle: Cycle) -> list[ParticipantNominations]:
    """Every participant's nominated peers and where their list stands, for HR."""
    participants = session.scalars(
        select(Participant)
        .where(Participant.cycle_id == cycle.id)
        .options(
            selectinload(Participant.employee).selectinload(Employee.manager),
            selectinload(Participant.nominations).selectinload(Nomination.nominee),
        )
    ).all()
    listed = [
        ParticipantNominations(
            participant_id=p.id,
            name=p.employee.name,
            manager=p.employee.manager.name if p.employee.manager else None,
            peers=[
                NominatedPeer(n.nominee_id, n.nominee.name, n.status.value, n.source)
                for n in sorted(p.nominations, key=lambda n: n.nominee.name)
            ],
            submitted=p.nominations_submitted_at is not None,
            approved=p.nominations_approved_at is not None,
        )
        for p in participants
    ]
    return sorted(listed, key=lambda p: (p.name, p.participant_id))


def override_nominations(
    session: Session, participant: Participant, nominee_ids: Iterable[int]
) -> None:
    """HR sets the participant's final peer list, approved at once (manager not asked).

    The same rules as the participant's and the manager's lists apply (peer range, no
    self, manager or direct reports), so an override cannot break a cycle's settings.
    """
    approve_nominations(session, participant, nominee_ids, by="hr")


def approve_on_behalf(session: Session, participant: Participant) -> int:
    """HR approves the participant's proposed list as it stands, for an absent manager.

    Returns the number of peers approved. Each name keeps its source (HR approved the
    list; it did not choose the peers).
    """
    name = participant.employee.name
    if participant.nominations_submitted_at is None:
        raise DomainError(f"{name} has not submitted nominations yet")
    if participant.nominations_approved_at is not None:
        raise DomainError(f"{name}'s nominations are already approved")
    proposed = [
        n.nominee_id for n in participant.nominations if n.status == NominationStatus.PROPOSED
    ]
    approve_nominations(session, participant, proposed, by="hr")
    return len(proposed)
