"""Report pages. For now only HR's preview, on development servers (``DEV_PAGES``).

The participant's own link (a ``TokenPurpose.REPORT`` token, released versions) and the
HR console's login come later; both will call :func:`_load_participant`'s successors
and the same two views' bodies.
"""

from __future__ import annotations

from flask import Response, abort, current_app, url_for

from surveys.models import Participant
from surveys.reports import build_report
from webapp.extensions import db
from webapp.reports import bp
from webapp.reports.render import report_html, report_pdf


@bp.before_request
def _dev_only() -> None:
    # Hook for HR authentication: until it exists, previews exist only in development.
    if not current_app.config.get("DEV_PAGES"):
        abort(404)


def _load_participant(participant_id: int) -> Participant:
    """Load or 404 (the permission check goes here with HR auth / report tokens)."""
    participant = db.session.get(Participant, participant_id)
    if participant is None:
        abort(404)
    return participant


@bp.get("/preview/<int:participant_id>")
def preview(participant_id: int) -> Response:
    participant = _load_participant(participant_id)
    report = build_report(db.session, participant)
    html = report_html(report, pdf_url=url_for(".preview_pdf", participant_id=participant_id))
    return _private(Response(html, mimetype="text/html"))


@bp.get("/preview/<int:participant_id>/report.pdf")
def preview_pdf(participant_id: int) -> Response:
    participant = _load_participant(participant_id)
    report = build_report(db.session, participant)
    pdf = report_pdf(report, current_app._get_current_object())  # type: ignore[attr-defined]
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'inline; filename="feedback-report-{participant_id}.pdf"'
    )
    return _private(response)


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"
    )
    return response
