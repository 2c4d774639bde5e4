"""Progress of a cycle for HR: how many have answered, never what anyone answered."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from surveys.models import Assignment, AssignmentStatus, Cycle, Employee, Participant, Response


def count_responses(session: Session, cycle: Cycle) -> int:
    return session.scalar(select(func.count()).where(Response.cycle_id == cycle.id)) or 0


@dataclass(frozen=True)
class GroupProgress:
    invited: int
    submitted: int
    in_progress: int
    declined: int

    @property
    def rate(self) -> float:
        return self.submitted / self.invited if self.invited else 0.0


@dataclass(frozen=True)
class ParticipantProgress:
    employee_id: str
    name: str
    by_relationship: dict[str, GroupProgress]
    total: GroupProgress


@dataclass(frozen=True)
class CycleStatus:
    cycle_id: int
    name: str
    state: str
    total: GroupProgress
    by_relationship: dict[str, GroupProgress]
    participants: list[ParticipantProgress] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total"]["rate"] = round(self.total.rate, 4)
        for key, group in self.by_relationship.items():
            data["by_relationship"][key]["rate"] = round(group.rate, 4)
        return data


def _progress(counter: Counter) -> GroupProgress:
    return GroupProgress(
        invited=sum(counter.values()),
        submitted=counter[AssignmentStatus.SUBMITTED],
        in_progress=counter[AssignmentStatus.IN_PROGRESS],
        declined=counter[AssignmentStatus.DECLINED],
    )


def cycle_status(session: Session, cycle: Cycle) -> CycleStatus:
    """Completion by relationship and by participant, from assignment statuses only."""
    rows = session.execute(
        select(
            Participant.id,
            Employee.external_id,
            Employee.name,
            Assignment.relationship,
            Assignment.status,
            func.count(),
        )
        .join(Employee, Employee.id == Participant.employee_id)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.cycle_id == cycle.id)
        .group_by(
            Participant.id,
            Employee.external_id,
            Employee.name,
            Assignment.relationship,
            Assignment.status,
        )
        .order_by(Employee.name, Participant.id)
    ).all()
    overall: Counter = Counter()
    by_rel: dict[str, Counter] = {}
    people: dict[int, tuple[str, str, dict[str, Counter], Counter]] = {}
    for pid, external_id, name, relationship, status, count in rows:
        entry = people.setdefault(pid, (external_id, name, {}, Counter()))
        if relationship is None:
            continue
        overall[status] += count
        by_rel.setdefault(relationship.value, Counter())[status] += count
        entry[2].setdefault(relationship.value, Counter())[status] += count
        entry[3][status] += count
    return CycleStatus(
        cycle_id=cycle.id,
        name=cycle.name,
        state=cycle.state.value,
        total=_progress(overall),
        by_relationship={k: _progress(v) for k, v in by_rel.items()},
        participants=[
            ParticipantProgress(
                employee_id=external_id,
                name=name,
                by_relationship={k: _progress(v) for k, v in rels.items()},
                total=_progress(total),
            )
            for external_id, name, rels, total in people.values()
        ],
    )
