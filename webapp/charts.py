"""Report charts as inline SVG: crisp in the PDF, accessible in the browser.

Plain string building over :mod:`surveys.reports` values; every text goes through
``escape``. Colours are the Okabe–Ito palette (safe for the common colour-vision
deficiencies), and every series also differs in marker shape, so nothing relies on colour.

``pdf=True`` makes the form WeasyPrint renders fastest (the 31 small charts of a typical
report were a quarter of its render time), drawing the same picture:

* no browser-only parts (hover ``<title>`` tooltips, the long ``<desc>``, ARIA attributes,
  hairline separators): WeasyPrint parses and cascades every SVG element;
* each chart is an ``<img>`` whose ``src`` is the SVG as a ``data:`` URL, with the text
  alternative as ``alt``. An inline ``<svg>`` goes through WeasyPrint's pure-Python HTML5
  parser, half the document's characters; a data URL is one attribute value, and the
  image is then parsed by the C XML parser;
* the answer-distribution bars carry no numbers: the report prints the counts as a line
  of text under each bar instead (WeasyPrint lays SVG text out letter by letter, and a
  report has ~100 of those numbers);
* numbers are centred by computing their start (DejaVu Sans digits all have the same
  advance) instead of ``text-anchor="middle"``, for which WeasyPrint wraps every text in
  a PDF transparency group of its own (an extra object in the file).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from markupsafe import Markup, escape

from surveys.reports import CompetencyReport, ItemDetail, ReportData

__all__ = ["GROUP_STYLE", "distribution_bar", "overview_chart"]

#: group -> (colour, marker) — Okabe & Ito (2008), "Color Universal Design".
GROUP_STYLE: dict[str, tuple[str, str]] = {
    "self": ("#000000", "diamond"),
    "manager": ("#D55E00", "triangle"),
    "peer": ("#009E73", "circle"),
    "direct_report": ("#CC79A7", "square"),
    "other": ("#E69F00", "circle"),
    "others": ("#0072B2", "bar"),
}
#: Scale points from low to high: vermillion → orange → grey → sky blue → blue.
_POINT_COLOURS = ("#D55E00", "#E69F00", "#BBBBBB", "#56B4E9", "#0072B2")

_LABEL_W = 200
_PLOT_W = 400
_ROW_H = 30
_TOP = 26


#: Advance width of a digit in DejaVu Sans, in em (1303 of 2048 units; all digits alike).
_DIGIT_EM = 1303 / 2048


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _centred(
    x: float, y: float, number: int, size: float, fill: str, cls: str, *, pdf: bool
) -> str:
    """``<text>`` of ``number`` centred on ``x``; see the module docstring for the PDF form."""
    if pdf:
        start = x - len(str(number)) * _DIGIT_EM * size / 2
        return f'<text x="{start:.2f}" y="{y:.1f}" fill="{fill}">{number}</text>'
    return (
        f'<text x="{x:.2f}" y="{y:.1f}" text-anchor="middle" fill="{fill}" '
        f'class="{cls}">{number}</text>'
    )


def _image(svg: str, css_class: str, width: int, height: int, alt: str) -> Markup:
    """The PDF form of a chart: an ``<img>`` of ``svg`` as a data URL."""
    url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
    return Markup(  # noqa: S704 - alt is escaped, the rest is ours
        f'<img class="{css_class}" src="{url}" width="{width}" height="{height}" '
        f'alt="{escape(alt)}">'
    )


def _marker(shape: str, x: float, y: float, colour: str, label: str | None) -> str:
    title = f"<title>{escape(label)}</title>" if label else ""
    if shape == "diamond":  # self, drawn last: an outline, so a group's marker under it shows
        pts = f"{x:.1f},{y - 8:.1f} {x + 8:.1f},{y:.1f} {x:.1f},{y + 8:.1f} {x - 8:.1f},{y:.1f}"
        return (
            f'<polygon points="{pts}" fill="none" stroke="{colour}" stroke-width="2">'
            f"{title}</polygon>"
        )
    if shape == "triangle":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y + 5:.1f} {x - 6:.1f},{y + 5:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{title}</polygon>'
    if shape == "square":
        return (
            f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{colour}">'
            f"{title}</rect>"
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff">{title}</circle>'


def _rows(report: ReportData) -> list[CompetencyReport]:
    rows = list(report.competencies)
    if report.overall is not None:
        rows.append(report.overall)
    return rows


def overview_chart(report: ReportData, chart_id: str = "overview", *, pdf: bool = False) -> Markup:
    """Every competency on one scale: self, each shown group, all others with interval."""

    def tip(text: str) -> str | None:
        return None if pdf else text

    rows = _rows(report)
    lo, hi = report.scale_min, report.scale_max
    width = _LABEL_W + _PLOT_W + 20
    height = _TOP + _ROW_H * len(rows) + 46

    def x_of(v: float) -> float:
        return _LABEL_W + (v - lo) / (hi - lo) * _PLOT_W

    title = "Scores by competency: self, each group and all others"
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-size="11" font-family="DejaVu Sans, sans-serif"'
        + (
            ">"
            if pdf
            else f' class="chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">'
            f'<title id="{chart_id}-title">{title}</title>'
            f'<desc id="{chart_id}-desc">{escape(_describe(rows))}</desc>'
        )
    ]
    # Grid lines as one path, ticks as texts (fewer elements for WeasyPrint to draw).
    bottom = _TOP + _ROW_H * len(rows)
    grid = " ".join(f"M{x_of(v):.1f} {_TOP - 6}V{bottom}" for v in range(lo, hi + 1))
    parts.append(f'<path d="{grid}" stroke="#d0d7de" stroke-width="1"/>')
    for v in range(lo, hi + 1):
        parts.append(_centred(x_of(v), _TOP - 10, v, 11, "#57606a", "tick", pdf=pdf))
    for i, row in enumerate(rows):
        y = _TOP + _ROW_H * i + _ROW_H / 2
        weight = ' font-weight="700"' if row.id == "ALL" else ""
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{y + 4:.1f}" text-anchor="end" class="label"{weight}>'
            f"{escape(_short(row.title))}</text>"
        )
        if row.adjusted is not None:
            colour = GROUP_STYLE["others"][0]
            parts.append(
                f'<rect x="{_LABEL_W}" y="{y - 7:.1f}" width="{x_of(row.adjusted) - _LABEL_W:.1f}" '
                f'height="14" fill="{colour}" fill-opacity="0.25">'
                + (
                    ""
                    if pdf
                    else f"<title>All others, {_headline(row)}: {_fmt(row.adjusted)}</title>"
                )
                + "</rect>"
            )
            if row.ci_low is not None and row.ci_high is not None:
                a, b = x_of(max(lo, row.ci_low)), x_of(min(hi, row.ci_high))
                parts.append(  # the interval with its two end ticks, as one path
                    f'<path d="M{a:.1f} {y:.1f}H{b:.1f}M{a:.1f} {y - 5:.1f}V{y + 5:.1f}'
                    f'M{b:.1f} {y - 5:.1f}V{y + 5:.1f}" stroke="{colour}" stroke-width="2" '
                    'fill="none"/>'
                )
        for g in row.groups:
            colour, shape = GROUP_STYLE[g.group]
            parts.append(_marker(shape, x_of(g.mean), y, colour, tip(f"{g.label}: {_fmt(g.mean)}")))
        if row.others is not None:
            parts.append(
                f'<line x1="{x_of(row.others.mean):.1f}" y1="{y - 9:.1f}" '
                f'x2="{x_of(row.others.mean):.1f}" y2="{y + 9:.1f}" stroke="#0072B2" '
                'stroke-width="3">'
                + ("" if pdf else f"<title>All others, average: {_fmt(row.others.mean)}</title>")
                + "</line>"
            )
        if row.self_score is not None:
            parts.append(
                _marker(
                    "diamond",
                    x_of(row.self_score),
                    y,
                    "#000000",
                    tip(f"Self: {_fmt(row.self_score)}"),
                )
            )
    parts.append(_legend(report, _TOP + _ROW_H * len(rows) + 22, pdf=pdf))
    parts.append("</svg>")
    svg = "".join(parts)
    if pdf:
        return _image(svg, "chart", width, height, f"{title}. {_describe(rows)}")
    return Markup(svg)  # noqa: S704 - every text above went through escape()


def _legend(report: ReportData, y: float, *, pdf: bool = False) -> str:
    shown = {"self"} if any(r.self_score is not None for r in _rows(report)) else set()
    for row in _rows(report):
        shown.update(g.group for g in row.groups)
    entries = [g for g in GROUP_STYLE if g in shown and g != "others"]
    x = 10.0
    out = ['<g class="legend">']
    labels = {
        "self": "Self",
        "manager": "Manager",
        "peer": "Peers",
        "direct_report": "Direct reports",
        "other": "Other colleagues",
    }
    for g in entries:
        colour, shape = GROUP_STYLE[g]
        out.append(_marker(shape, x + 6, y, colour, None if pdf else labels[g]))
        out.append(f'<text x="{x + 16:.1f}" y="{y + 4:.1f}">{labels[g]}</text>')
        x += 28 + 6.5 * len(labels[g])
    if any(r.others is not None for r in _rows(report)):
        out.append(
            f'<line x1="{x + 6:.1f}" y1="{y - 8:.1f}" x2="{x + 6:.1f}" y2="{y + 8:.1f}" '
            'stroke="#0072B2" stroke-width="3"/>'
            f'<text x="{x + 14:.1f}" y="{y + 4:.1f}">All others</text>'
        )
        x += 92
        out.append(
            f'<rect x="{x:.1f}" y="{y - 6:.1f}" width="16" height="12" fill="#0072B2" '
            'fill-opacity="0.25"/>'
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 16:.1f}" y2="{y:.1f}" stroke="#0072B2" '
            'stroke-width="2"/>'
            f'<text x="{x + 22:.1f}" y="{y + 4:.1f}">Adjusted score and interval</text>'
        )
    out.append("</g>")
    return "".join(out)


def _headline(row: CompetencyReport) -> str:
    """What the headline figure is: the model's adjusted score, or (All others hidden on
    one of the competency's statements) the plain average of those shown."""
    return "plain average (not adjusted)" if row.partial else "adjusted"


def _describe(rows: Iterable[CompetencyReport]) -> str:
    parts = []
    for row in rows:
        bits = []
        if row.self_score is not None:
            bits.append(f"self {_fmt(row.self_score)}")
        bits += [f"{g.label.lower()} {_fmt(g.mean)}" for g in row.groups]
        if row.others is not None:
            bits.append(f"all others {_fmt(row.others.mean)}")
        if row.adjusted is not None:
            bits.append(f"{_headline(row)} {_fmt(row.adjusted)}")
        parts.append(f"{row.title}: " + (", ".join(bits) if bits else "not enough answers"))
    return "; ".join(parts) + "."


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def distribution_bar(item: ItemDetail, width: int = 180, *, pdf: bool = False) -> Markup:
    """All others' answers to one item as one stacked bar, lowest scale point first."""
    total = sum(n for _, n in item.distribution)
    if not total:
        return Markup("")
    words = ", ".join(f"{n} × {v}" for v, n in item.distribution if n)
    label = f"Answers from all others: {words}"
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} 16" width="{width}" height="16" font-size="10" '
        'font-family="DejaVu Sans, sans-serif"'
        + (">" if pdf else f' class="dist" role="img" aria-label="{escape(label)}">')
        + ("" if pdf else f"<title>{escape(label)}</title>"),
    ]
    x = 0.0
    points = len(item.distribution)
    for k, (_value, n) in enumerate(item.distribution):
        if not n:
            continue
        w = n / total * width
        colour = _POINT_COLOURS[round(k * (len(_POINT_COLOURS) - 1) / max(points - 1, 1))]
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="16" fill="{colour}"'
            + ("/>" if pdf else ' stroke="#fff" stroke-width="0.5"/>')
        )
        if w >= 12 and not pdf:  # the PDF prints the counts as text under the bar
            ink = "#fff" if colour in ("#D55E00", "#0072B2") else "#000"
            parts.append(_centred(x + w / 2, 12, n, 10, ink, "dist-n", pdf=False))
        x += w
    parts.append("</svg>")
    if pdf:
        return _image("".join(parts), "dist", width, 16, label)
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()
