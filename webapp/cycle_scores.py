"""A closed cycle's scores, kept between requests of the same process.

Scoring a large closed cycle takes seconds (a 10,000-person one ~20 s), too long to
repeat for every page of the release page, every preview, every page of the API's scores
and the scores export; a closed cycle takes no responses (late ones only after release),
so its scores stay valid until it is released.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from surveys.models import Cycle, Response
from surveys.reports import CycleScores, score_cycle

#: Scores of the closed cycles scored last (oldest out first), by what could change them.
_kept: OrderedDict[tuple[object, ...], CycleScores] = OrderedDict()
KEPT = 2
#: One scoring at a time in a process: two requests (threads) for a cycle not kept yet
#: would otherwise both spend the seconds scoring it.
_scoring = threading.Lock()


def closed_cycle_scores(session: Session, cycle: Cycle) -> CycleScores:
    """:func:`surveys.reports.score_cycle` of a closed cycle, kept between requests.

    The key holds the database, the cycle's close time and its responses' count and
    lowest and highest (random) ids, so other data under the same cycle id (another
    database, a test) is never mistaken for it. The release itself always scores afresh.
    """
    count, low, high = session.execute(
        select(func.count(), func.min(Response.id), func.max(Response.id)).where(
            Response.cycle_id == cycle.id
        )
    ).one()
    key = (str(session.get_bind().engine.url), cycle.id, cycle.closed_at, count, low, high)
    with _scoring:
        scored = _kept.get(key)
        if scored is None:
            scored = score_cycle(session, cycle)
            _kept[key] = scored
            while len(_kept) > KEPT:
                _kept.popitem(last=False)
    return scored


def forget() -> None:
    """Drop every kept score (tests)."""
    _kept.clear()
