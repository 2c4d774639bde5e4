"""Progress of a cycle for HR: how many have answered, never what anyone answered."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from surveys.db import utcnow
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


# -- chasing: who has not answered yet -----------------------------------------------------


@dataclass(frozen=True)
class WaitingRater:
    """A rater to chase: their name and role only, never anything they entered."""

    name: str
    relationship: str


@dataclass(frozen=True)
class ParticipantWaiting:
    employee_id: str
    name: str
    raters: list[WaitingRater]


_NOT_ANSWERED = (AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS)


def waiting_raters(session: Session, cycle: Cycle) -> list[ParticipantWaiting]:
    """Per participant, the raters who have not submitted (pending or started), by name.

    Reads names and relationships only: no draft, answer or date is selected, so the
    list cannot leak what anyone wrote or when. Declined assignments are not chased.
    Participants with nobody left to chase are left out.
    """
    rater = aliased(Employee)
    rows = session.execute(
        select(Employee.external_id, Employee.name, rater.name, Assignment.relationship)
        .select_from(Assignment)
        .join(Participant, Participant.id == Assignment.participant_id)
        .join(Employee, Employee.id == Participant.employee_id)
        .join(rater, rater.id == Assignment.rater_id)
        .where(Assignment.cycle_id == cycle.id, Assignment.status.in_(_NOT_ANSWERED))
        .order_by(Employee.name, Participant.id, Assignment.relationship, rater.name)
    ).all()
    people: dict[str, ParticipantWaiting] = {}
    for external_id, name, rater_name, relationship in rows:
        entry = people.setdefault(external_id, ParticipantWaiting(external_id, name, []))
        entry.raters.append(WaitingRater(rater_name, relationship.value))
    return list(people.values())


# -- response rate over time -----------------------------------------------------------------


@dataclass(frozen=True)
class DailyResponses:
    day: date
    responses: int
    #: Responses received up to and including ``day``.
    cumulative: int


def responses_by_day(
    session: Session, cycle: Cycle, *, today: date | None = None
) -> list[DailyResponses]:
    """Responses per day from launch to today (or the close), days without any included.

    Built from ``Response.submitted_on``, which is stored as a day on purpose (DESIGN §3):
    nothing finer than a day is available to correlate with who was reminded when.
    Empty before launch.
    """
    if cycle.launched_at is None:
        return []
    counts = dict(
        session.execute(
            select(Response.submitted_on, func.count())
            .where(Response.cycle_id == cycle.id)
            .group_by(Response.submitted_on)
        ).all()
    )
    if cycle.daily_responses is not None:
        # Released: every response now carries the close date; the days were kept at
        # release, and responses accepted late since count on the close date.
        late = sum(counts.values()) - sum(cycle.daily_responses.values())
        counts = Counter({date.fromisoformat(d): n for d, n in cycle.daily_responses.items()})
        if late > 0 and cycle.closed_at is not None:
            counts[cycle.closed_at.date()] += late
    start = cycle.launched_at.date()
    end = cycle.closed_at.date() if cycle.closed_at else (today or utcnow().date())
    if counts:
        start = min(start, *counts)
        end = max(end, *counts)
    series = []
    total = 0
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        n = int(counts.get(day, 0))
        total += n
        series.append(DailyResponses(day, n, total))
    return series
