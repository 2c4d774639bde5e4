"""One template, two outputs: the report as an HTML page or as a PDF."""

from __future__ import annotations

import hashlib

import weasyprint
from flask import Flask, render_template

from scoring import RELATIONSHIPS
from surveys.reports import GROUP_LABELS, ReportData
from webapp import charts
from webapp.pdf import html_to_pdf

#: Bump when the template changes in a way that must re-render unchanged reports.
TEMPLATE_VERSION = "1"


def report_html(report: ReportData, *, pdf: bool = False, pdf_url: str | None = None) -> str:
    """The report document; ``pdf=True`` drops screen-only parts (links, buttons)."""
    return render_template(
        "reports/report.html",
        report=report,
        pdf=pdf,
        pdf_url=pdf_url,
        overview_chart=charts.overview_chart(report),
        distribution_bar=charts.distribution_bar,
        group_labels=GROUP_LABELS,
        overview_groups=_overview_groups(report),
    )


def _overview_groups(report: ReportData) -> list[str]:
    """Relationship groups shown for at least one competency, in report order."""
    rows = [*report.competencies, *([report.overall] if report.overall else [])]
    shown = {g.group for row in rows for g in row.groups}
    return [g for g in RELATIONSHIPS if g in shown]


def report_pdf(report: ReportData, app: Flask) -> bytes:
    return html_to_pdf(report_html(report, pdf=True), app)


def content_hash(html: str) -> str:
    """Fingerprint of what a PDF would contain, to skip re-rendering unchanged reports."""
    key = f"{TEMPLATE_VERSION}\0{weasyprint.__version__}\0{html}"
    return hashlib.sha256(key.encode()).hexdigest()
