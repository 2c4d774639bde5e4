"""Report pages: the participant's emailed link, and HR's preview on development servers.

``/r/<token>`` and ``/r/<token>/report.pdf`` show the latest *released* version of the
one report the token was minted for, exactly as frozen at release (DESIGN §4); anything
else — a forged token, a rating link, a cycle not released — is the same 404.
``/reports/preview/…`` computes a report afresh and exists only with ``DEV_PAGES`` until
the HR console has a login.
"""

from __future__ import annotations

from flask import Response, abort, current_app, url_for

from surveys.errors import NotFound
from surveys.models import Participant, TokenPurpose
from surveys.releases import latest_version
from surveys.reports import ReportData, build_report, report_from_json
from surveys.tokens import resolve_token
from webapp.extensions import db
from webapp.reports import bp, links
from webapp.reports.render import report_html, report_pdf


def _released_report(token: str) -> ReportData:
    """The latest released version of the token's report, or 404 (one answer for every cause)."""
    try:
        access = resolve_token(db.session, token, TokenPurpose.REPORT)
    except NotFound:
        abort(404)
    version = latest_version(db.session, access.participant_id) if access.participant_id else None
    if version is None:
        abort(404)
    return report_from_json(version.data)


@links.get("/r/<token>")
def participant_report(token: str) -> Response:
    report = _released_report(token)
    html = report_html(report, pdf_url=url_for(".participant_report_pdf", token=token))
    return _private(Response(html, mimetype="text/html"))


@links.get("/r/<token>/report.pdf")
def participant_report_pdf(token: str) -> Response:
    report = _released_report(token)
    return _private(_pdf_response(report, "feedback-report.pdf"))


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
    return _private(_pdf_response(report, f"feedback-report-{participant_id}.pdf"))


def _pdf_response(report: ReportData, filename: str) -> Response:
    pdf = report_pdf(report, current_app._get_current_object())  # type: ignore[attr-defined]
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    # The participant's URL is their key: never send it on to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"
    )
    return response
