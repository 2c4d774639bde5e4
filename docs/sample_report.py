"""Regenerate ``docs/sample-report.png``: page 1 of the demo's fullest report.

    .venv/bin/python docs/sample_report.py      # needs pdftoppm (Debian: poppler-utils)

Loads the demo organisation into a throw-away SQLite database, renders the report of the
participant with the most responses (as HR's preview shows it) and rasterises page 1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import flask_migrate
from sqlalchemy import func, select

from surveys.demo import load_demo
from surveys.models import Response
from surveys.reports import build_report
from webapp import create_app
from webapp.extensions import db
from webapp.reports.render import report_pdf

OUT = Path(__file__).resolve().parent / "sample-report.png"


def main() -> int:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("pdftoppm not found (apt-get install poppler-utils)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/demo.db", "QUEUE_URL": "memory://"}
        )
        with app.app_context(), app.test_request_context():
            flask_migrate.upgrade()
            cycle = load_demo(db.session, base_url="http://127.0.0.1:5000").cycle
            db.session.commit()

            def answers(participant) -> int:
                query = select(func.count()).where(Response.participant_id == participant.id)
                return db.session.scalar(query) or 0

            fullest = max(cycle.participants, key=answers)
            pdf = Path(tmp) / "report.pdf"
            pdf.write_bytes(report_pdf(build_report(db.session, fullest), app))
            db.engine.dispose()
        subprocess.run(  # noqa: S603 - fixed argv
            [
                pdftoppm,
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(OUT.with_suffix("")),
            ],
            check=True,
        )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
