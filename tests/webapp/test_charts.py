"""Report charts: the browser's accessible inline SVG and the PDF's lighter image form."""

from __future__ import annotations

import base64
import re

from surveys.reports import ItemDetail
from webapp import charts
from webapp.pdf import StaticOnlyFetcher

ITEM = ItemDetail(
    id="Q1",
    text="Shares <b>credit</b>",
    competency_title="Collaboration",
    self_value=4,
    groups=(),
    others=None,
    distribution=((1, 0), (2, 1), (3, 12), (4, 4), (5, 2)),
)


def _svg_of(img: str) -> str:
    src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', img)
    assert src, img
    return base64.b64decode(src.group(1)).decode()


def test_browser_bar_is_inline_svg_with_a_text_alternative():
    html = str(charts.distribution_bar(ITEM))
    assert html.startswith("<svg")
    assert 'role="img"' in html
    assert "<title>Answers from all others: 1 × 2, 12 × 3, 4 × 4, 2 × 5</title>" in html
    # One count label per segment wide enough for it (the 1-answer segment is too narrow).
    assert re.findall(r'class="dist-n">(\d+)</text>', html) == ["12", "4", "2"]
    assert html.count("<text") == 3


def test_pdf_bar_is_an_image_of_the_same_bar_without_numbers():
    img = str(charts.distribution_bar(ITEM, pdf=True))
    assert img.startswith('<img class="dist" ')
    assert 'alt="Answers from all others: 1 × 2, 12 × 3, 4 × 4, 2 × 5"' in img
    svg = _svg_of(img)
    # Same rectangles as the browser's bar.
    rects = re.findall(r'<rect x="([\d.]+)" y="0" width="([\d.]+)"', svg)
    assert rects == re.findall(
        r'<rect x="([\d.]+)" y="0" width="([\d.]+)"', str(charts.distribution_bar(ITEM))
    )
    # No count labels: the report prints the counts as text under the bar (SVG text is
    # laid out letter by letter by WeasyPrint).
    assert "<text" not in svg


def test_overview_ticks_in_the_pdf_are_centred_by_hand(session):
    from surveys.reports import build_report
    from tests.surveys.test_reports import build_cycle

    _, participant = build_cycle(session)
    svg = _svg_of(str(charts.overview_chart(build_report(session, participant), pdf=True)))
    # Tick "3" centred on x = 200 + 2/4 × 400: start = centre - 1 digit × 0.636 em × 11 / 2.
    [start] = re.findall(r'<text x="([\d.]+)" y="16.0" fill="#57606a">3</text>', svg)
    assert abs(float(start) - (400 - 1303 / 2048 * 11 / 2)) < 0.01


def test_pdf_overview_alt_text_carries_the_numbers(session):
    from tests.surveys.test_reports import build_cycle

    _, participant = build_cycle(session)
    from surveys.reports import build_report

    report = build_report(session, participant)
    img = str(charts.overview_chart(report, pdf=True))
    assert img.startswith('<img class="chart" ')
    alt = re.search(r'alt="([^"]*)"', img).group(1)
    assert alt.startswith("Scores by competency: self, each group and all others. ")
    assert "all others 3.2" in alt
    svg = _svg_of(img)
    assert "<title" not in svg
    assert "<desc" not in svg
    assert 'text-anchor="middle"' not in svg
    browser = str(charts.overview_chart(report))
    assert "<desc" in browser
    assert browser.count("<polygon") == svg.count("<polygon")


def test_fetcher_decodes_base64_data_urls_itself():
    fetcher = StaticOnlyFetcher("/nonexistent")
    response = fetcher.fetch("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode())
    assert response.content_type == "image/svg+xml"
    assert response.read() == b"<svg/>"
    # Other data: URLs still work (urllib decodes the ones that are not base64).
    assert fetcher.fetch("data:text/plain,hi").read() == b"hi"
    assert (
        fetcher.fetch(f"data:text/plain;base64,{base64.b64encode(b'ok').decode()}").read() == b"ok"
    )


def test_self_is_an_outline_drawn_last_so_an_equal_group_marker_shows(session):
    import dataclasses

    from surveys.reports import build_report
    from tests.surveys.test_reports import build_cycle

    _, participant = build_cycle(session)
    report = build_report(session, participant)
    first = report.competencies[0]
    manager = next(g for g in first.groups if g.group == "manager")
    same = dataclasses.replace(first, self_score=manager.mean)  # self and manager agree
    report = dataclasses.replace(report, competencies=(same, *report.competencies[1:]))
    svg = str(charts.overview_chart(report))
    row = svg.split('class="label"')[1]  # the first row: its label, bar and markers
    self_marker = re.search(r"<polygon [^>]*><title>Self: [^<]*</title>", row).group(0)
    assert 'fill="none"' in self_marker
    assert row.index("<title>Manager:") < row.index("<title>Self:")  # drawn under it
