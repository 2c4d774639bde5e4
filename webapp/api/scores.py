"""``/api/v1/cycles/<id>/scores``: aggregated scores of a closed or released cycle.

The figures of the participants' reports, as rows of scores.csv (participant ×
competency × relationship group), from :func:`surveys.exports.score_rows` like HR's
export: a competency's raw mean pools its items' answers as the report does, and a
released cycle's figures are those of the released reports. A group the report hides,
or that has fewer raters than the strictest of the cycle's thresholds for groups of
several raters (peer, direct report, other, all others), is left out, not blanked, so
nothing about it can be read from the response. Item-level answers, comments and raters
are never part of it.

Paged by participant (a 10,000-person cycle has hundreds of thousands of rows): a page
holds every row of ``page_size`` participants, in participant order, and the
X-Pagination header counts participants.
"""

from __future__ import annotations

import math
from typing import Any

from flask_smorest import abort

from surveys.exports import count_participants, score_rows
from surveys.models import CycleState
from webapp.api.core import MAX_CYCLE_ID, blueprint, load_cycle
from webapp.api.schemas import CycleScoresSchema, ScoresQuerySchema
from webapp.cycle_scores import closed_cycle_scores
from webapp.extensions import db

bp = blueprint("scores", "Aggregated scores (never individual answers).")

#: Participants a page of scores holds by default, and at most.
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


@bp.route(f"/cycles/<int(max={MAX_CYCLE_ID}):cycle_id>/scores")
@bp.arguments(ScoresQuerySchema, location="query")
@bp.response(200, CycleScoresSchema)
@bp.paginate(page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def cycle_scores(args: dict[str, Any], cycle_id: int, pagination_parameters: Any) -> dict[str, Any]:
    """Aggregated scores of a cycle

    One row per participant × competency (``ALL`` = every item) × relationship group
    (``others`` = everyone but self), with the figures of the participant's report;
    groups suppressed for anonymity are absent. Only for closed or released cycles (409
    before); a released cycle's figures are those of the released reports.

    Paged by participant: a page has every row of ``page_size`` participants (the
    X-Pagination header counts participants, and participants nobody rated have no
    rows). ``method`` is that of the page's reports.
    """
    cycle = load_cycle(cycle_id)
    if cycle.state not in (CycleState.CLOSED, CycleState.RELEASED):
        abort(
            409,
            message=f"cycle {cycle.name!r} is {cycle.state.value}; scores exist once it is closed",
        )
    employee_id = args.get("employee_id")
    total = count_participants(db.session, cycle, employee_id)
    first = pagination_parameters.first_item
    pagination_parameters.item_count = total
    # Past the end (also keeps absurd page numbers away from the database): no rows.
    part = slice(first, first + pagination_parameters.page_size) if first < total else slice(0, 0)
    scores = score_rows(
        db.session, cycle, employee_id=employee_id, participants=part, score=closed_cycle_scores
    )
    return {
        "cycle_id": cycle.id,
        "state": cycle.state.value,
        "min_group_size": scores.min_group_size,
        "method": scores.method,
        "scores": [
            {
                "employee_id": row.employee_id,
                "name": row.name,
                "competency": row.competency,
                "relationship": row.relationship,
                "n_raters": row.n_raters,
                "raw_mean": _num(row.raw_mean),
                "adjusted": _num(row.adjusted),
                "se": _num(row.se),
                "ci_low": _num(row.ci_low),
                "ci_high": _num(row.ci_high),
            }
            for row in scores.rows
            if not row.suppressed
        ],
    }


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 4)
