"""The participant's report link, and the response helpers the console's preview shares.

``/r/<token>`` and ``/r/<token>/report.pdf`` show the latest *released* version of the
one report the token was minted for, exactly as frozen at release (DESIGN §4); anything
else — a forged token, a rating link, a cycle not released — is the same 404.
HR previews a report in the console (``webapp.admin.release``, login required), through
:func:`pdf_response` and :func:`private` here, so both pages send the same document with
the same headers.
"""

from __future__ import annotations

import re

from flask import Response, abort, current_app, url_for

from surveys.errors import NotFound
from surveys.models import TokenPurpose
from surveys.releases import latest_version
from surveys.reports import ReportData, report_from_json
from surveys.tokens import resolve_token
from webapp.extensions import db
from webapp.reports import links
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


#: Characters kept in a download's file name; anything else becomes "_".
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@links.get("/r/<token>")
def participant_report(token: str) -> Response:
    report = _released_report(token)
    html = report_html(report, pdf_url=url_for(".participant_report_pdf", token=token))
    return private(Response(html, mimetype="text/html"))


@links.get("/r/<token>/report.pdf")
def participant_report_pdf(token: str) -> Response:
    report = _released_report(token)
    # Named by its cycle: a participant of several cycles keeps each year's apart.
    return private(pdf_response(report, f"feedback-report-{report.cycle_name}.pdf"))


def pdf_response(report: ReportData, filename: str) -> Response:
    pdf = report_pdf(report, current_app._get_current_object())  # type: ignore[attr-defined]
    response = Response(pdf, mimetype="application/pdf")
    # The name may carry an employee id (any text HR imported): keep the header one plain
    # ASCII parameter, so quotes cannot add parameters and a server can encode it.
    safe = _UNSAFE_FILENAME.sub("_", filename)
    # "Download as PDF": saved under its name rather than opened in the browser's tab.
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


def private(response: Response) -> Response:
    """Headers for a page that shows one person's feedback."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    # The participant's URL is their key: never send it on to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"
    )
    return response
