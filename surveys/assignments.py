"""Who rates whom: self, manager, direct reports and peers (nominated or suggested)."""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator
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
    #: Rows for ``insert(Assignment)``: cycle, participant, rater and relationship ids.
    assignments: list[dict[str, object]] = field(default_factory=list)
    #: (participant name, peers found) for participants below the cycle's peer minimum.
    short: list[tuple[str, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The active employees by id, and each participant's name by participant id, for
    #: writing the invitations without loading the rows back.
    employees: dict[int, Employee] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


class OrgChart:
    """Active employees indexed once, so suggesting peers for everyone stays linear.

    Launching a 10,000-person cycle asks for peers 10,000 times; scanning every
    employee each time would be 10^8 steps.
    """

    def __init__(self, employees: Iterable[Employee]) -> None:
        self.employees: dict[int, Employee] = {e.id: e for e in employees if e.active}
        #: Direct reports per manager id, in id order.
        self.reports: dict[int, list[Employee]] = defaultdict(list)
        by_department: dict[str, list[Employee]] = defaultdict(list)
        for e in self.employees.values():
            if e.manager_id is not None:
                self.reports[e.manager_id].append(e)
            if e.department:
                by_department[e.department].append(e)
        by_name = operator.attrgetter("name")
        self._team_by_name = {m: sorted(team, key=by_name) for m, team in self.reports.items()}
        self._department_by_name = {d: sorted(g, key=by_name) for d, g in by_department.items()}

    def excluded(self, person: Employee) -> set[int | None]:
        """Who can't be ``person``'s peer: themself, their manager, their direct reports."""
        return {person.id, person.manager_id} | {r.id for r in self.reports.get(person.id, ())}

    def iter_peers(self, person: Employee) -> Iterator[int]:
        """Colleagues with the same manager first, then the same department, by name."""
        excluded = self.excluded(person)
        seen: set[int] = set()
        if person.manager_id is not None:
            for e in self._team_by_name.get(person.manager_id, ()):
                if e.id not in excluded:
                    seen.add(e.id)
                    yield e.id
        if person.department:
            for e in self._department_by_name.get(person.department, ()):
                if e.id not in excluded and e.id not in seen:
                    yield e.id


def build_assignments(session: Session, cycle: Cycle) -> AssignmentPlan:
    """Plan every assignment of a cycle about to open, as rows (nothing is written).

    Rows rather than objects: a 10,000-person cycle has some 80,000 assignments, which
    one bulk INSERT writes in seconds and the unit of work would take minutes over.
    """
    org = OrgChart(session.scalars(select(Employee).where(Employee.active.is_(True))))
    employees = org.employees
    participants = session.scalars(
        select(Participant)
        .where(Participant.cycle_id == cycle.id)
        .options(selectinload(Participant.nominations))
        .order_by(Participant.id)
    ).all()

    plan = AssignmentPlan(employees=employees)
    for participant in participants:
        person = employees.get(participant.employee_id)
        if person is None:
            plan.warnings.append(f"participant #{participant.employee_id} is inactive; skipped")
            continue
        plan.names[participant.id] = person.name
        raters: dict[int, Relationship] = {}
        if cycle.include_self:
            raters[person.id] = Relationship.SELF
        if cycle.include_manager and person.manager_id in employees:
            raters[person.manager_id] = Relationship.MANAGER
        if cycle.include_direct_reports:
            for report in org.reports.get(person.id, []):
                raters.setdefault(report.id, Relationship.DIRECT_REPORT)
        for peer_id in _peers(cycle, participant, person, org, raters, plan):
            raters.setdefault(peer_id, Relationship.PEER)
        n_peers = sum(1 for r in raters.values() if r == Relationship.PEER)
        if n_peers < cycle.peer_min:
            plan.short.append((person.name, n_peers))
        plan.assignments.extend(
            {
                "cycle_id": cycle.id,
                "participant_id": participant.id,
                "rater_id": rater_id,
                "relationship": relationship,
                "status": AssignmentStatus.PENDING,
                "reminders_sent": 0,
            }
            for rater_id, relationship in raters.items()
        )
    return plan


def _peers(
    cycle: Cycle,
    participant: Participant,
    person: Employee,
    org: OrgChart,
    taken: dict[int, Relationship],
    plan: AssignmentPlan,
) -> list[int]:
    """Up to ``peer_max`` peers: approved nominations, else proposed ones, else suggestions."""
    chosen: Iterable[int]
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
            chosen = org.iter_peers(person)
    else:
        chosen = org.iter_peers(person)
    eligible = (i for i in chosen if i in org.employees and i not in taken)
    return list(itertools.islice(eligible, cycle.peer_max))


def suggest_peers(person: Employee, employees: Iterable[Employee], *_: object) -> list[int]:
    """Every peer :class:`OrgChart` would suggest for ``person`` (one-off use; a loop over
    many people should build the ``OrgChart`` once)."""
    return list(OrgChart(employees).iter_peers(person))


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
