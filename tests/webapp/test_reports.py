"""Report page and PDF: same numbers, nothing suppressed, hostile text harmless."""

from __future__ import annotations

import io
import re
import subprocess
from collections import Counter
from html.parser import HTMLParser

import pytest
from markupsafe import escape
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from surveys import cycles, reports
from surveys.errors import DomainError
from surveys.models import AuditEvent, CycleState
from surveys.releases import accept_late_response, release_cycle, rerelease_cycle
from surveys.responses import cycle_bank
from tests import factories as f
from tests.surveys.test_releases import all_items, late_team
from tests.surveys.test_reports import build_cycle
from tests.webapp.console import preview_url, sign_in
from webapp.extensions import db
from webapp.pdf import PDF_ORIGIN, StaticOnlyFetcher, UnsafeURL
from webapp.reports import batch

NUMBER = re.compile(r"\d+\.\d")


class _VisibleText(HTMLParser):
    """Text a reader sees: no <style>, <title> or SVG alternatives (PDFs draw those)."""

    def __init__(self):
        super().__init__()
        self.skip = 0
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title", "svg", "head"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "title", "svg", "head"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def close_for_preview(participant) -> None:
    if participant.cycle.state == CycleState.OPEN:
        cycles.close_cycle(db.session, participant.cycle)
        db.session.commit()


def poppler_text(pdf: bytes) -> str:
    """Text via poppler's pdftotext.

    pypdf (7.1) misreads a ToUnicode map with surrogate pairs (emoji): the whole font's
    text comes back as UTF-16 garbage. The PDF is right; poppler reads it back fine.
    """
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def get_report(client, participant):
    """The report's HTML and PDF as HR previews them in the console (signed in).

    Previews exist once the cycle is closed, so an open cycle is closed first.
    """
    close_for_preview(participant)
    sign_in(client.application, client)
    html = client.get(preview_url(participant))
    assert html.status_code == 200
    pdf = client.get(preview_url(participant, pdf=True))
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    return html.get_data(as_text=True), pdf.data


def test_pdf_shows_the_scores_html_and_pdf_agree_and_page_one_is_drawn(session, client, tmp_path):
    _, participant = build_cycle(session)
    html, pdf = get_report(client, participant)

    text = pdf_text(pdf)
    assert f"Feedback report for {participant.employee.name}" in text
    assert "3.2 (n=4)" in text  # all others: (4 + 2 + 3 + 4) / 4, one decimal
    assert "3.0 (n=3)" in text  # peers
    assert "Blind spots" in text
    # Every number on the page is in the PDF, as often (tables, notes, lists alike).
    html_numbers = Counter(NUMBER.findall(visible_text(html)))
    pdf_numbers = Counter(NUMBER.findall(text))
    assert html_numbers
    assert html_numbers == pdf_numbers

    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", "r.pdf", "page"],
        cwd=tmp_path,
        check=True,
    )
    [png] = tmp_path.glob("page*.png")
    gray = Image.open(png).convert("L")
    dark = sum(gray.histogram()[:200])
    assert dark > 0.02 * gray.width * gray.height


def test_suppressed_group_and_its_comments_are_not_in_the_pdf(session, client):
    _, participant = build_cycle(
        session, peers_answering=2, comments={"peer": "PEER-SECRET", "manager": "From the boss"}
    )
    html, pdf = get_report(client, participant)
    text = pdf_text(pdf)
    assert "From the boss" in text
    for output in (html, text):
        assert "PEER-SECRET" not in output
    # The peers' average (2 + 3) / 2 = 2.5 and "others" (4 + 2 + 3) / 3 = 3.0 never appear.
    assert "2.5" not in text
    assert "(n=2)" not in text
    assert "(n=3)" not in text


HOSTILE = {
    "html": '<script>alert("x")</script><img src="file:///etc/passwd">&amp;',
    "emoji": "Great teammate 🎉👍 — thanks",
    "rtl": "עבודה מצוינת مرحبا بالعالم",
    "long": " ".join(["zebra"] * 1000),  # ~6,000 characters
}


def test_hostile_comments_render_safely(session, client):
    _, participant = build_cycle(session, comments={"self": "self note"})
    # One peer comment per hostile text, written straight through the service layer.
    from sqlalchemy import select

    from surveys.models import Response, ResponseComment

    peers = session.scalars(
        select(Response).where(
            Response.participant_id == participant.id, Response.relationship == "peer"
        )
    ).all()
    question = cycle_bank(participant.cycle).open_questions[0].id
    for response, text in zip(
        peers, (HOSTILE["html"], HOSTILE["rtl"], HOSTILE["long"]), strict=True
    ):
        session.add(ResponseComment(response_id=response.id, question_id=question, text=text))
    manager = session.scalar(
        select(Response).where(
            Response.participant_id == participant.id, Response.relationship == "manager"
        )
    )
    session.add(
        ResponseComment(response_id=manager.id, question_id=question, text=HOSTILE["emoji"])
    )
    session.commit()

    html, pdf = get_report(client, participant)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(" in html
    assert 'src="file:' not in html
    for text in (HOSTILE["emoji"], HOSTILE["rtl"], HOSTILE["long"]):
        assert str(escape(text)) in html

    text = poppler_text(pdf)
    assert '<script>alert("x")</script>' in text
    assert "Great teammate 🎉👍 — thanks" in text
    assert re.search("[\u0590-\u05ff]", text)  # Hebrew made it into the PDF
    assert re.search("[\u0600-\u06ff]", text)  # and Arabic
    assert text.count("zebra") == 1000


def test_participant_without_responses_renders(session, client):
    from tests import factories as f

    _, team = f.team(session, 4)
    cycle = f.launched(session, team, peer_min=3, peer_max=3)
    html, pdf = get_report(client, cycle.participants[0])
    assert "No feedback yet" in html
    assert "No feedback yet" in pdf_text(pdf)


def test_preview_needs_a_console_login(app, session, client):
    _, participant = build_cycle(session)
    for url in (preview_url(participant), preview_url(participant, pdf=True)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")


def test_unknown_participant_is_404(session, client):
    cycle, _ = build_cycle(session)
    sign_in(client.application, client)
    assert client.get(f"/admin/cycles/{cycle.id}/participants/999999/report").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/x.png",
        "https://example.com/static/app.css",
        f"{PDF_ORIGIN}/static/../../../../etc/passwd",
        f"{PDF_ORIGIN}/static/%2e%2e/__init__.py",
        f"{PDF_ORIGIN}/etc/passwd",
        "ftp://example.com/x",
    ],
)
def test_url_fetcher_refuses_everything_but_static_files(app, url):
    fetcher = StaticOnlyFetcher(app.static_folder, app.static_url_path)
    with pytest.raises(UnsafeURL):
        fetcher.fetch(url)


def test_url_fetcher_serves_static_files_and_data(app):
    fetcher = StaticOnlyFetcher(app.static_folder, app.static_url_path)
    css = fetcher.fetch(f"{PDF_ORIGIN}/static/app.css")
    assert css.content_type == "text/css"
    assert b"feedback360" in css.read()
    assert fetcher.fetch("data:text/plain,hi").read() == b"hi"


def test_cli_renders_every_participant_and_skips_unchanged(session, runner, tmp_path):
    cycle, _ = build_cycle(session, participants=2)
    cycles.close_cycle(session, cycle)
    session.commit()
    args = ["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "2 written, 0 unchanged, 0 failed" in first.output
    assert len(list(tmp_path.glob("*.pdf"))) == 2
    again = runner.invoke(args=args)
    assert "0 written, 2 unchanged, 0 failed" in again.output
    session.expire_all()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "reports.render"))
    assert [(e.actor, e.detail) for e in events] == [
        ("command line", {"written": 2, "unchanged": 0, "failed": 0}),
        ("command line", {"written": 0, "unchanged": 2, "failed": 0}),
    ]


def test_cli_refuses_to_render_a_cycle_raters_can_still_answer(session, runner, tmp_path):
    """Two renders around one more submission would show what that rater said."""
    cycle, _ = build_cycle(session, participants=2)  # open
    result = runner.invoke(
        args=["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "is open; its reports can be rendered once it is closed" in result.output
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DomainError, match="once it is closed"):
        batch.render_cycle(session, cycle, tmp_path, static_folder="static")


def test_cli_renders_a_released_cycle_from_its_frozen_reports(session, runner, tmp_path):
    """After release the PDFs are the versions participants read: a late response HR
    accepted changes none of them until a re-release."""
    cycle, participant, late = late_team(session, peers=6, answering=3)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    args = ["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    first = runner.invoke(args=args)
    assert "1 written, 0 unchanged, 0 failed" in first.output, first.output
    before = pdf_text((tmp_path / f"report-{participant.employee.external_id}.pdf").read_bytes())
    assert "Version 1" in before
    for a in late:
        accept_late_response(session, a, all_items(participant, 1))
    session.commit()
    again = runner.invoke(args=args)
    assert "0 written, 1 unchanged, 0 failed" in again.output, again.output
    rerelease_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    third = runner.invoke(args=args)
    assert "1 written, 0 unchanged, 0 failed" in third.output, third.output
    assert "Version 2" in pdf_text(
        (tmp_path / f"report-{participant.employee.external_id}.pdf").read_bytes()
    )


def test_cli_reports_a_failing_participant_and_goes_on(session, runner, tmp_path, monkeypatch):
    cycle, participant = build_cycle(session, participants=2)
    cycles.close_cycle(session, cycle)
    session.commit()
    real = reports.build_report

    def flaky(session, p, **kwargs):
        if p.id == participant.id:
            raise RuntimeError("boom")
        return real(session, p, **kwargs)

    monkeypatch.setattr(reports, "build_report", flaky)
    result = runner.invoke(
        args=["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "1 written, 0 unchanged, 1 failed" in result.output
    assert f"participant {participant.id}" in result.output
    assert "RuntimeError: boom" in result.output


def test_cli_unknown_cycle(runner):
    result = runner.invoke(args=["reports", "render", "--cycle", "424242"])
    assert result.exit_code != 0
    assert "no cycle" in result.output
