"""Launch time (issue 6 target): a 10,000-participant cycle (≈ 80,000 assignments and their
emails queued) launches in < 60 s, on SQLite and on PostgreSQL (when reachable).

    python benchmarks/launch.py [--people 10000] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from load import PG_URL, _drop_pg, _org, _pg_scratch

from surveys import cycles
from surveys.banks import get_bank
from surveys.models import Assignment, OutboxMessage
from webapp import create_app
from webapp.extensions import db

TARGET_SECONDS = 60.0


def run(label: str, url: str, people: int) -> bool:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "QUEUE_URL": "memory://"})
    with app.app_context():
        flask_migrate.upgrade()
        staff = _org(people)
        db.session.add_all(staff)
        db.session.flush()
        cycle = cycles.create_cycle(
            db.session,
            name="Launch",
            bank=get_bank("leadership"),
            participants=staff,
            settings={"peer_min": 3, "peer_max": 5},
        )
        db.session.commit()
        started = time.perf_counter()
        cycles.launch_cycle(db.session, cycle, base_url="http://bench.invalid", allow_short=True)
        db.session.commit()
        seconds = time.perf_counter() - started
        assignments = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))
        emails = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
        db.session.remove()
        db.engine.dispose()
    ok = seconds < TARGET_SECONDS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"== {label}: {people} participants, {assignments} assignments, {emails} emails queued"
        f" in {seconds:.1f} s (target < {TARGET_SECONDS:.0f} s) {'ok' if ok else 'NOT MET'};"
        f" peak RSS {peak:.0f} MB"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    results = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run("SQLite", f"sqlite:///{Path(tmp) / 'launch.db'}", args.people))
    if args.db in ("postgresql", "both"):
        url = _pg_scratch(PG_URL)
        if url is not None:
            try:
                results.append(run("PostgreSQL", url, args.people))
            finally:
                _drop_pg(url)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
