"""Time to render one typical report PDF, warm, on one core (issue 4 target: < 0.35 s).

Loads the demo organisation into a throw-away SQLite database, scores the cycle once and
renders the participant with the most responses several times.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import flask_migrate
from pypdf import PdfReader
from sqlalchemy import func, select

from surveys.demo import load_demo
from surveys.models import Participant, Response
from surveys.reports import build_report, score_cycle
from webapp import create_app
from webapp.extensions import db
from webapp.reports.render import report_html, report_pdf

TARGET = 0.35


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / 'bench.db'}",
                "QUEUE_URL": "memory://",
            }
        )
        with app.app_context():
            flask_migrate.upgrade()
            load_demo(db.session, base_url="http://localhost")
            db.session.commit()
            pid = db.session.execute(
                select(Response.participant_id)
                .group_by(Response.participant_id)
                .order_by(func.count().desc())
            ).scalar()
            participant = db.session.get(Participant, pid)
            scored = score_cycle(db.session, participant.cycle)
            report_pdf(build_report(db.session, participant, cycle_scores=scored), app)  # warm up
            build, html, pdf = [], [], []
            for _ in range(5):
                t0 = time.perf_counter()
                data = build_report(db.session, participant, cycle_scores=scored)
                t1 = time.perf_counter()
                report_html(data, pdf=True)
                t2 = time.perf_counter()
                out = report_pdf(data, app)
                t3 = time.perf_counter()
                build.append(t1 - t0)
                html.append(t2 - t1)
                pdf.append(t3 - t2)
            pages = len(PdfReader(io.BytesIO(out)).pages)
            total = statistics.median(build) + statistics.median(pdf)
            print(f"report of {participant.employee.name}: {pages} pages")
            print(f"  build_report  {statistics.median(build) * 1000:7.1f} ms")
            print(f"  template      {statistics.median(html) * 1000:7.1f} ms")
            print(f"  HTML+PDF      {statistics.median(pdf) * 1000:7.1f} ms")
            verdict = "OK" if total < TARGET else "SLOWER THAN TARGET"
            print(
                f"  total         {total * 1000:7.1f} ms "
                f"(target < {TARGET * 1000:.0f} ms) {verdict}"
            )


if __name__ == "__main__":
    main()
