"""``/api/v1/cycles/<id>/scores``: aggregated scores of a closed or released cycle.

The rows of ``feedback360 score``'s scores.csv (ratee × competency × relationship
group) for the cycle's submitted responses, minus every suppressed group: a suppressed
row is left out, not blanked, so nothing about it can be read from the response. The
group size below which a group is suppressed is the strictest of the cycle's thresholds
for groups of several raters (peer, direct report, other, all others), and the same
complementary suppression applies as in the CSV, so no hidden group can be recovered
by subtraction. Item-level answers, comments and raters are never part of it.
"""

from __future__ import annotations

import math
from typing import Any

from flask_smorest import abort
from sqlalchemy import select

from surveys.models import Cycle, CycleState, Employee, Participant
from surveys.releases import ChangedSinceRelease, check_publishable
from surveys.reports import score_cycle
from surveys.scores_csv import scores_table
from webapp.api.core import MAX_CYCLE_ID, blueprint, load_cycle
from webapp.api.schemas import CycleScoresSchema, ScoresQuerySchema
from webapp.extensions import db

bp = blueprint("scores", "Aggregated scores (never individual answers).")

#: Groups whose threshold protects several raters; self and manager are one person each.
_SHARED_GROUPS = ("peer", "direct_report", "other", "others")


@bp.route(f"/cycles/<int(max={MAX_CYCLE_ID}):cycle_id>/scores")
@bp.arguments(ScoresQuerySchema, location="query")
@bp.response(200, CycleScoresSchema)
def cycle_scores(args: dict[str, Any], cycle_id: int) -> dict[str, Any]:
    """Aggregated scores of a cycle

    One row per participant × competency (``ALL`` = every item) × relationship group
    (``others`` = everyone but self), as in scores.csv; groups suppressed for anonymity
    are absent. Only for closed or released cycles (409 before). After release the
    responses are no longer linked across participants, so ``adjusted`` is recomputed
    without rater effects and may differ from the value before release.
    """
    cycle = load_cycle(cycle_id)
    if cycle.state not in (CycleState.CLOSED, CycleState.RELEASED):
        abort(
            409,
            message=f"cycle {cycle.name!r} is {cycle.state.value}; scores exist once it is closed",
        )
    try:
        check_publishable(db.session, cycle)
    except ChangedSinceRelease as error:
        abort(409, message=str(error))
    min_group_size = min_group_size_of(cycle)
    scored = score_cycle(db.session, cycle)
    rows: list[dict[str, Any]] = []
    method = None
    if scored.scores is not None:
        method = scored.scores.method
        rows = _rows(cycle, scored.scores, min_group_size, args.get("employee_id"))
    return {
        "cycle_id": cycle.id,
        "state": cycle.state.value,
        "min_group_size": min_group_size,
        "method": method,
        "scores": rows,
    }


def min_group_size_of(cycle: Cycle) -> int:
    return max(cycle.threshold(group) for group in _SHARED_GROUPS)


def _rows(cycle: Cycle, scores: Any, min_group_size: int, only: str | None) -> list[dict[str, Any]]:
    people = {
        pid: (external_id, name)
        for pid, external_id, name in db.session.execute(
            select(Participant.id, Employee.external_id, Employee.name)
            .join(Employee, Employee.id == Participant.employee_id)
            .where(Participant.cycle_id == cycle.id)
        )
    }
    table = scores_table(scores, min_group_size=min_group_size)
    out = []
    for i in range(len(table)):
        if table.suppressed[i]:
            continue
        external_id, name = people[int(table.ratee_id[i])]
        if only is not None and external_id != only:
            continue
        out.append(
            {
                "employee_id": external_id,
                "name": name,
                "competency": str(table.competency[i]),
                "relationship": str(table.relationship[i]),
                "n_raters": int(table.n_raters[i]),
                "raw_mean": _num(table.raw_mean[i]),
                "adjusted": _num(table.adjusted[i]),
                "se": _num(table.se[i]),
                "ci_low": _num(table.ci_low[i]),
                "ci_high": _num(table.ci_high[i]),
            }
        )
    return out


def _num(value: Any) -> float | None:
    x = float(value)
    return round(x, 4) if math.isfinite(x) else None
