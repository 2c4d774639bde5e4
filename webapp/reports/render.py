"""One template, two outputs: the report as an HTML page or as a PDF.

The HTML page carries its styles inline. The PDF document leaves them out and WeasyPrint
gets ``_report.css`` as a :class:`weasyprint.CSS` parsed once per process instead
(:func:`report_stylesheet`); the charts drop browser-only parts (``pdf=True``). Both keep
a report well under a second (issue 4 target: < 0.35 s).
"""

from __future__ import annotations

import functools
import hashlib
import re

import weasyprint
from flask import Flask, current_app, render_template

from scoring import RELATIONSHIPS
from surveys.reports import GROUP_LABELS, ReportData
from webapp import charts
from webapp.pdf import font_config, html_to_pdf

#: Bump when the template changes in a way that must re-render unchanged reports.
TEMPLATE_VERSION = "4"

STYLESHEET = "reports/_report.css"


def report_html(report: ReportData, *, pdf: bool = False, pdf_url: str | None = None) -> str:
    """The report document; ``pdf=True`` drops screen-only parts (links, buttons, styles)
    and the template's indentation between block elements (:func:`drop_layout_whitespace`).
    """
    html = render_template(
        "reports/report.html",
        report=report,
        pdf=pdf,
        pdf_url=pdf_url,
        overview_chart=charts.overview_chart(report, pdf=pdf),
        distribution_bar=functools.partial(charts.distribution_bar, pdf=pdf),
        group_labels=GROUP_LABELS,
        overview_groups=_overview_groups(report),
    )
    return drop_layout_whitespace(html) if pdf else html


#: Tags around which whitespace never shows: block-level and table parts, ``img``/``meta``.
_BLOCK = (
    r"(?:html|head|body|meta|title|header|main|section|div|figure|h[1-6]|p|ul|ol|li|table|"
    r"caption|colgroup|col|thead|tbody|tr|th|td|img)\b"
)
#: Whitespace after a closing block tag or an opening container tag (never after an
#: opening ``p``, ``li``, ``td``… whose text it starts), before another block tag.
_LAYOUT_WHITESPACE = re.compile(
    rf"(</{_BLOCK}[^>]*>|<(?:html|head|body|header|main|section|div|figure|ul|ol|table|"
    rf"colgroup|thead|tbody|tr)\b[^>]*>|<(?:meta|col|img)\b[^>]*>)\s+(?=</?{_BLOCK})"
)


def drop_layout_whitespace(html: str) -> str:
    """``html`` without the whitespace-only text between block-level tags.

    That whitespace renders as nothing, but WeasyPrint still parses each run as a text
    node, cascades it and builds (then discards) an anonymous box for it: dropping the
    template's indentation saves ~4% of a report's render time. Text inside paragraphs,
    cells and list items (raters' comments included) is untouched: a match needs a tag on
    both sides, and user text is escaped, so it has none.
    """
    return _LAYOUT_WHITESPACE.sub(r"\1", html)


def _overview_groups(report: ReportData) -> list[str]:
    """Relationship groups shown for at least one competency, in report order."""
    rows = [*report.competencies, *([report.overall] if report.overall else [])]
    shown = {g.group for row in rows for g in row.groups}
    return [g for g in RELATIONSHIPS if g in shown]


def report_stylesheet_text(app: Flask | None = None) -> str:
    """The report's CSS source, read through the app's template loader."""
    env = (app or current_app).jinja_env
    assert env.loader is not None
    return env.loader.get_source(env, STYLESHEET)[0]


@functools.cache
def parsed_stylesheet(text: str) -> weasyprint.CSS:
    """``text`` parsed once per process, against this process's font configuration."""
    return weasyprint.CSS(string=text, font_config=font_config())


def report_stylesheet(app: Flask | None = None) -> weasyprint.CSS:
    return parsed_stylesheet(report_stylesheet_text(app))


def report_pdf(report: ReportData, app: Flask) -> bytes:
    html = report_html(report, pdf=True)
    return html_to_pdf(html, app, [report_stylesheet(app)], pause_gc=True)


def content_hash(html: str, css: str | None = None) -> str:
    """Fingerprint of what a PDF would contain, to skip re-rendering unchanged reports.

    ``css`` defaults to the report stylesheet (needs an app context): the PDF's HTML no
    longer carries it, so a style change must change the fingerprint too.
    """
    css = report_stylesheet_text() if css is None else css
    key = f"{TEMPLATE_VERSION}\0{weasyprint.__version__}\0{css}\0{html}"
    return hashlib.sha256(key.encode()).hexdigest()
