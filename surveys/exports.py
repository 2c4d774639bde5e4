"""HR's CSV exports: response rates and anonymized scores, never raw responses.

Both are built from counts and aggregates only: no rater name, pseudonym, answer,
comment or submission day is read, so neither file can say who rated whom or what
anyone answered. Every cell goes through :mod:`surveys.csv_safety` (names come from the
org chart, which anyone with an HRIS account may have typed).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from sqlalchemy.orm import Session

from surveys.csv_safety import csv_text
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, Relationship
from surveys.releases import check_publishable
from surveys.reports import score_cycle
from surveys.scores_csv import SCORES_COLUMNS, write_scores_csv
from surveys.status import GroupProgress, cycle_status

__all__ = [
    "RESPONSE_RATE_COLUMNS",
    "SCORES_COLUMNS",
    "response_rates_csv",
    "scores_csv",
    "scores_min_group_size",
]

RESPONSE_RATE_COLUMNS = (
    "employee_id",
    "participant",
    "relationship",
    "invited",
    "responded",
    "rate",
)

#: Cycles whose scores may be exported: nobody can answer any more.
SCORABLE = (CycleState.CLOSED, CycleState.RELEASED)


def _row(employee_id: str, name: str, relationship: str, group: GroupProgress) -> list[object]:
    rate = f"{group.rate:.4f}" if group.invited else ""
    return [employee_id, name, relationship, group.invited, group.submitted, rate]


def response_rates_csv(session: Session, cycle: Cycle) -> str:
    """One row per participant × relationship, plus an ``all`` row each: counts only.

    The rows come from :func:`surveys.status.cycle_status`, i.e. assignment statuses;
    responses are not read at all.
    """
    if cycle.state not in (CycleState.OPEN, *SCORABLE):
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; response rates exist once it opens"
        )
    status = cycle_status(session, cycle)
    order = [r.value for r in Relationship]
    rows: list[list[object]] = []
    for person in status.participants:
        for key in sorted(person.by_relationship, key=order.index):
            rows.append(_row(person.employee_id, person.name, key, person.by_relationship[key]))
        rows.append(_row(person.employee_id, person.name, "all", person.total))
    return csv_text(RESPONSE_RATE_COLUMNS, rows)


def scores_min_group_size(cycle: Cycle) -> int:
    """The one group size scores.csv suppresses below: the cycle's strictest anonymous one.

    scores.csv has a single threshold for every group, so the highest of the cycle's
    anonymous thresholds is used (the manager's named group is then suppressed too:
    an export travels further than a report).
    """
    return max(cycle.threshold(g) for g in ("peer", "direct_report", "other", "others"))


def scores_csv(session: Session, cycle: Cycle) -> str:
    """The cycle's scores in the ``feedback360 score`` format (DESIGN §8), by employee id.

    Aggregates per participant × competency × relationship group with small groups
    suppressed (:func:`scores_min_group_size`); raters appear in no column.
    """
    if cycle.state not in SCORABLE:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; scores are exported once it is closed"
        )
    check_publishable(session, cycle)
    scored = score_cycle(session, cycle)
    if scored.scores is None:
        return ",".join(SCORES_COLUMNS) + "\n"
    external = {p.id: p.employee.external_id for p in cycle.participants}
    ratee_ids = np.array(
        [external[int(pid)] for pid in scored.scores.ratee_ids.tolist()], dtype=object
    )
    scores = dataclasses.replace(scored.scores, ratee_ids=ratee_ids)
    buffer = io.StringIO()
    write_scores_csv(scores, buffer, min_group_size=scores_min_group_size(cycle))
    return buffer.getvalue()
