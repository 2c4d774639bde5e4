"""Who rates whom: self, manager, direct reports and peers (nominated or suggested)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from surveys.errors import DomainError
from surveys.models import (
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Employee,
    NominationMode,
    NominationStatus,
    Participant,
    Relationship,
)


@dataclass
class AssignmentPlan:
    assignments: list[Assignment] = field(default_factory=list)
    #: (participant name, peers found) for participants below the cycle's peer minimum.
    short: list[tuple[str, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_assignments(session: Session, cycle: Cycle) -> AssignmentPlan:
    """Plan every assignment of a cycle about to open (nothing is added to the session)."""
    employees = {
        e.id: e for e in session.scalars(select(Employee).where(Employee.active.is_(True)))
    }
    reports: dict[int, list[Employee]] = {}
    for e in employees.values():
        if e.manager_id is not None:
            reports.setdefault(e.manager_id, []).append(e)
    participants = session.scalars(
        select(Participant)
        .where(Participant.cycle_id == cycle.id)
        .options(selectinload(Participant.nominations))
        .order_by(Participant.id)
    ).all()

    plan = AssignmentPlan()
    for participant in participants:
        person = employees.get(participant.employee_id)
        if person is None:
            plan.warnings.append(f"participant #{participant.employee_id} is inactive; skipped")
            continue
        raters: dict[int, Relationship] = {}
        if cycle.include_self:
            raters[person.id] = Relationship.SELF
        if cycle.include_manager and person.manager_id in employees:
            raters[person.manager_id] = Relationship.MANAGER
        if cycle.include_direct_reports:
            for report in reports.get(person.id, []):
                raters.setdefault(report.id, Relationship.DIRECT_REPORT)
        peers = _peers(cycle, participant, person, employees, reports, raters, plan)
        for peer_id in peers[: cycle.peer_max]:
            raters.setdefault(peer_id, Relationship.PEER)
        n_peers = sum(1 for r in raters.values() if r == Relationship.PEER)
        if n_peers < cycle.peer_min:
            plan.short.append((person.name, n_peers))
        plan.assignments.extend(
            Assignment(
                cycle=cycle,
                participant=participant,
                rater=employees[rater_id],
                relationship=relationship,
                status=AssignmentStatus.PENDING,
                reminders_sent=0,
            )
            for rater_id, relationship in raters.items()
        )
    return plan


def _peers(
    cycle: Cycle,
    participant: Participant,
    person: Employee,
    employees: dict[int, Employee],
    reports: dict[int, list[Employee]],
    taken: dict[int, Relationship],
    plan: AssignmentPlan,
) -> list[int]:
    if cycle.nomination_mode == NominationMode.PARTICIPANT:
        approved = [
            n.nominee_id for n in participant.nominations if n.status == NominationStatus.APPROVED
        ]
        proposed = [
            n.nominee_id for n in participant.nominations if n.status == NominationStatus.PROPOSED
        ]
        if approved:
            chosen = approved
        elif proposed:
            plan.warnings.append(
                f"{person.name}: nominations were not approved in time; using them as proposed"
            )
            chosen = proposed
        else:
            plan.warnings.append(f"{person.name}: no nominations; peers suggested from org chart")
            chosen = suggest_peers(person, employees.values(), reports)
    else:
        chosen = suggest_peers(person, employees.values(), reports)
    return [i for i in chosen if i in employees and i not in taken]


def suggest_peers(person: Employee, employees, reports: dict[int, list[Employee]]) -> list[int]:
    """Colleagues with the same manager first, then the same department, by name.

    Never the person themself, their manager or their direct reports (those rate in
    their own role).
    """
    excluded = {person.id, person.manager_id} | {r.id for r in reports.get(person.id, [])}
    candidates = [e for e in employees if e.id not in excluded and e.active]
    same_manager = sorted(
        (e for e in candidates if person.manager_id and e.manager_id == person.manager_id),
        key=lambda e: e.name,
    )
    seen = {e.id for e in same_manager}
    same_department = sorted(
        (
            e
            for e in candidates
            if person.department and e.department == person.department and e.id not in seen
        ),
        key=lambda e: e.name,
    )
    return [e.id for e in same_manager + same_department]


def add_rater(
    session: Session,
    cycle: Cycle,
    participant: Participant,
    rater: Employee,
    relationship: Relationship,
) -> Assignment:
    """HR adds a rater to an open cycle (the caller emails the link with ``invite``)."""
    if cycle.state != CycleState.OPEN:
        raise DomainError("raters can be added while the cycle is open")
    if relationship == Relationship.SELF and rater.id != participant.employee_id:
        raise DomainError("only the participant can be their own self rater")
    if relationship != Relationship.SELF and rater.id == participant.employee_id:
        raise DomainError("a person never rates themself as a peer")
    existing = session.scalar(
        select(Assignment).where(
            Assignment.participant_id == participant.id, Assignment.rater_id == rater.id
        )
    )
    if existing is not None:
        raise DomainError(f"{rater.name} already rates {participant.employee.name}")
    assignment = Assignment(
        cycle=cycle, participant=participant, rater=rater, relationship=relationship
    )
    session.add(assignment)
    session.flush()
    return assignment


def remove_rater(session: Session, assignment: Assignment) -> None:
    """HR removes a rater who has not submitted (a submitted response is anonymous and stays)."""
    if assignment.cycle.state != CycleState.OPEN:
        raise DomainError("raters can be removed while the cycle is open")
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise DomainError("this rater has already submitted; anonymous answers cannot be removed")
    session.delete(assignment)
    session.flush()
