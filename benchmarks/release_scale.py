"""A large cycle after it closes: scoring, the release page, exports and the release itself.

No issue sets targets for these; the figures show what HR waits for with a 10,000-person
company (≈ 70,000 responses, 2 million answers), on SQLite and on PostgreSQL (when
reachable). Answers are bulk-inserted (uniform random ratings, every assignment
answered), then each step is timed on its own:

- ``score_cycle``: the rater model over every answer (the release page and exports of a
  closed cycle run it);
- one page of the release page: 100 participants' reports built;
- the scores export before and after release;
- the release: every report frozen, responses unlinked, report links queued (a console
  release runs it as a background job).

    python benchmarks/release_scale.py [--people 10000] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask_migrate
import sqlalchemy as sa
from load import PG_URL, _drop_pg, _org, _pg_scratch

from surveys import cycles, exports
from surveys.banks import get_bank
from surveys.models import Assignment, AssignmentStatus, Relationship, Response, ResponseItem
from surveys.models.response import new_response_id
from surveys.releases import release_cycle
from surveys.reports import build_report, score_cycle
from surveys.responses import SELF_PSEUDONYM, cycle_bank, pseudonym
from webapp import create_app
from webapp.extensions import db

PAGE = 100


def _answer_everything(session, cycle, seed: int = 1) -> tuple[int, int]:
    """Every assignment submitted with random ratings, inserted in bulk: (responses, answers)."""
    rng = random.Random(seed)
    items = [item.id for item in cycle_bank(cycle).items]
    assignments = session.execute(
        sa.select(Assignment.participant_id, Assignment.relationship, Assignment.rater_id).where(
            Assignment.cycle_id == cycle.id
        )
    ).all()
    submitted_on = cycle.launched_at.date()
    n_answers = 0
    for start in range(0, len(assignments), 5000):
        responses, answers = [], []
        for participant_id, relationship, rater_id in assignments[start : start + 5000]:
            rid = new_response_id()
            responses.append(
                {
                    "id": rid,
                    "cycle_id": cycle.id,
                    "participant_id": participant_id,
                    "relationship": relationship,
                    "rater_pseudonym": SELF_PSEUDONYM
                    if relationship == Relationship.SELF
                    else pseudonym(cycle, rater_id),
                    "submitted_on": submitted_on,
                }
            )
            answers += [
                {"response_id": rid, "item_id": item, "value": rng.randint(1, 5)} for item in items
            ]
        session.execute(sa.insert(Response), responses)
        session.execute(sa.insert(ResponseItem), answers)
        n_answers += len(answers)
    session.execute(
        sa.update(Assignment)
        .where(Assignment.cycle_id == cycle.id)
        .values(status=AssignmentStatus.SUBMITTED)
    )
    session.commit()
    return len(assignments), n_answers


def _timed(label: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {label:<44} {time.perf_counter() - started:7.1f} s   peak RSS {peak:5.0f} MB",
        flush=True,
    )
    return result


def run(label: str, url: str, people: int) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "QUEUE_URL": "memory://"})
    with app.app_context():
        flask_migrate.upgrade()
        session = db.session
        staff = _org(people)
        session.add_all(staff)
        session.flush()
        cycle = cycles.create_cycle(
            session,
            name="Release at scale",
            bank=get_bank("leadership"),
            participants=staff,
            settings={"peer_min": 3, "peer_max": 5},
        )
        cycles.launch_cycle(session, cycle, base_url="http://bench.invalid", allow_short=True)
        session.commit()
        n_responses, n_answers = _answer_everything(session, cycle)
        cycles.close_cycle(session, cycle)
        session.commit()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"== {label}: {people} participants, {n_responses} responses, {n_answers} answers"
            f" (set up; peak RSS {peak:.0f} MB)"
        )
        _timed("score_cycle", lambda: score_cycle(session, cycle))

        def release_page() -> list[Any]:
            scored = score_cycle(session, cycle)
            return [
                build_report(session, p, cycle_scores=scored) for p in cycle.participants[:PAGE]
            ]

        _timed(f"release page: score_cycle + {PAGE} reports", release_page)
        closed_csv = _timed(
            "scores export, closed cycle", lambda: exports.scores_csv(session, cycle)
        )
        summary = _timed(
            "release (every report frozen, links queued)",
            lambda: release_cycle(session, cycle, base_url="http://bench.invalid"),
        )
        session.commit()
        released_csv = _timed(
            "scores export, released cycle", lambda: exports.scores_csv(session, cycle)
        )
        assert summary.reports == len(cycle.participants)
        same = "yes" if closed_csv == released_csv else "NO"
        print(f"  exports before and after release identical: {same}")
        session.remove()
        db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("SQLite", f"sqlite:///{Path(tmp) / 'release.db'}", args.people)
    if args.db in ("postgresql", "both"):
        url = _pg_scratch(PG_URL)
        if url is not None:
            try:
                run("PostgreSQL", url, args.people)
            finally:
                _drop_pg(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
