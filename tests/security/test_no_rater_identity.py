"""No rater identity anywhere it could be tied to an answer: a whole cycle, then grep.

A small cycle runs end to end with every log line captured at DEBUG (pytest's ``caplog``,
plus the app's own JSON and text handlers from ``webapp.logs`` as production writes
them), with mail delivered to a local SMTP server: launch (API), raters answer through
the web form (autosave and submit), HR closes and releases in the console, previews and
exports, the participant opens the report page and PDF, and the API is read with a
bearer token. Then every log line, report (HTML and PDF text), export and API response is
searched for the raters' names, emails and employee ids, every raw link token, the API
token and the response pseudonyms.

By design, and excluded from the name/email/id search (but still searched for tokens
and pseudonyms):

* the console's cycle page, whose "who hasn't answered" list names raters (HR chases
  them; it never shows an answer);
* ``GET /api/v1/employees``, the org chart itself (everyone, no answers);
* ``GET /api/v1/cycles/<id>/nominations``, who was nominated to rate whom (no answers).

The participant's own name may appear in their own report and in HR's exports.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from surveys import accounts, cycles
from surveys.banks import get_bank
from surveys.models import Employee, Response, UserRole
from surveys.responses import SELF_PSEUDONYM
from tests import factories as f
from tests.webapp.console import sign_in
from tests.webapp.test_reports import pdf_text
from webapp import logs

API = "/api/v1"
#: (external id, name, email): distinctive, so a hit is never a coincidence.
BOSS = ("ID-BOSS-5501", "Orla Overseer", "orla.overseer@corp.example")
PARTICIPANT = ("ID-PART-5502", "Pia Participant", "pia.participant@corp.example")
PEERS = [
    ("ID-PEER-5503", "Quentin Quillfeather", "quentin.quillfeather@corp.example"),
    ("ID-PEER-5504", "Rhea Ravelstone", "rhea.ravelstone@corp.example"),
    ("ID-PEER-5505", "Sami Sorrelwood", "sami.sorrelwood@corp.example"),
]
BY_DESIGN = ("console cycle page", "api employees", "api nominations")


#: Loggers of the test's own SMTP server (aiosmtpd), which stands in for the mail relay:
#: it logs whole messages at DEBUG, as any mail server may; not the app's logs.
MAIL_SERVER_LOGGERS = ("mail.log", "asyncio")


def _app_record(record: logging.LogRecord) -> bool:
    return not record.name.startswith(MAIL_SERVER_LOGGERS)


class Buffered(FlaskClient):
    """A test client that consumes and closes every response, as a server does; the
    request log line is written when the response is closed."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def captured_logs(caplog):
    """caplog at DEBUG plus the app's JSON and text handlers on the root logger."""
    json_stream, text_stream = io.StringIO(), io.StringIO()
    handlers = [logs.make_handler("json", json_stream), logs.make_handler("text", text_stream)]
    root = logging.getLogger()
    old_level = root.level
    for handler in handlers:
        handler.setLevel(logging.DEBUG)
        handler.addFilter(_app_record)
        root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    yield lambda: {
        "json log": json_stream.getvalue(),
        "text log": text_stream.getvalue(),
        "captured records": "\n".join(_record_text(r) for r in caplog.records if _app_record(r)),
    }
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(old_level)


def _record_text(record: logging.LogRecord) -> str:
    """The message and every extra field of a record (what any formatter could write)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is still worth grepping
        message = f"{record.msg} {record.args}"
    extras = {k: v for k, v in vars(record).items() if k not in _PLAIN_RECORD}
    return f"{record.name} {message} {extras!r} {record.exc_text or ''}"


_PLAIN_RECORD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)))


def _people(session):
    boss = f.employee(session, BOSS[0], BOSS[1], department="Eng", email=BOSS[2])
    made = {}
    for external_id, name, email in (PARTICIPANT, *PEERS):
        made[external_id] = f.employee(session, external_id, name, boss, "Eng", email)
    session.commit()
    return boss, made


def _answer(client, token: str, bank, comment: str) -> None:
    assert client.get(f"/s/{token}").status_code == 200
    first = bank.items[0].id
    saved = client.post(f"/s/{token}/autosave", data={f"r:{first}": "3"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    data = {f"r:{item.id}": str(2 + k % 3) for k, item in enumerate(bank.items)}
    data[f"c:{bank.open_questions[0].id}"] = comment
    data["action"] = "submit"
    assert client.post(f"/s/{token}", data=data).status_code in (302, 303)


def _mailed_links(smtp_server, kind: str) -> list[str]:
    """Raw tokens of ``kind`` from the delivered mail (the outbox forgets sent bodies)."""
    found = []
    for message in smtp_server.messages:
        body = message.get_body(("plain",)).get_content()
        found += [token for k, token in f.LINK.findall(body) if k == kind]
    return found


def _html_and_text(reply) -> str:
    from tests.webapp.test_reports import visible_text

    body = reply.get_data(as_text=True)
    return body + "\n" + visible_text(body)


def test_no_rater_identity_in_logs_reports_exports_or_api(app, session, captured_logs, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    app.config["LOG_LEVEL"] = "DEBUG"
    _boss, people = _people(session)
    participant_employee = people[PARTICIPANT[0]]
    bank = get_bank("pulse")
    cycle = cycles.create_cycle(
        session,
        name="Identity check",
        bank=bank,
        participants=[participant_employee],
        settings={"peer_min": 3, "peer_max": 3},
    )
    hr = accounts.create_user(session, "hr-identity@example.com", "Hana", "x" * 20, UserRole.HR)
    _, api_token = accounts.create_api_token(session, hr, "identity")
    session.commit()
    bearer = {"Authorization": f"Bearer {api_token}"}
    api = Buffered(app, app.response_class, use_cookies=True)
    outputs: dict[str, str] = {}

    launched = api.post(f"{API}/cycles/{cycle.id}/launch", json={}, headers=bearer)
    assert launched.status_code == 200, launched.get_json()
    outputs["api launch"] = launched.get_data(as_text=True)

    rating_tokens = _mailed_links(smtp_server, "s")
    assert len(rating_tokens) == 5  # self, manager, three peers
    for k, token in enumerate(rating_tokens):
        _answer(
            Buffered(app, app.response_class, use_cookies=True),
            token,
            bank,
            f"Comment number {k} about the work.",
        )
    session.expire_all()
    pseudonyms = set(session.scalars(select(Response.rater_pseudonym)))
    assert len(pseudonyms) == 5
    pseudonyms.discard(SELF_PSEUDONYM)  # the participant's own answers: no one to hide
    assert len(pseudonyms) == 4
    assert all(len(p) >= 16 for p in pseudonyms)

    console = Buffered(app, app.response_class, use_cookies=True)
    sign_in(app, console, "hr-console@example.com")
    outputs["console cycle page"] = _html_and_text(console.get(f"/admin/cycles/{cycle.id}"))
    outputs["console dashboard"] = _html_and_text(console.get("/admin/"))
    closed = console.post(f"/admin/cycles/{cycle.id}/close", data={"confirm": "y"})
    assert closed.status_code in (302, 303)
    released = console.post(f"/admin/cycles/{cycle.id}/release", data={"confirm": "y"})
    assert released.status_code in (302, 303), released.get_data(as_text=True)[:500]
    outputs["console release page"] = _html_and_text(
        console.get(f"/admin/cycles/{cycle.id}/release")
    )
    participant_id = cycle.participants[0].id
    preview = f"/admin/cycles/{cycle.id}/participants/{participant_id}/report"
    outputs["console report preview"] = _html_and_text(console.get(preview))
    outputs["console report preview pdf"] = pdf_text(console.get(preview + ".pdf").data)
    for name in ("response-rates", "scores"):
        reply = console.post(f"/admin/cycles/{cycle.id}/export/{name}.csv")
        assert reply.status_code == 200, name
        outputs[f"export {name}"] = reply.get_data(as_text=True)
    outputs["console audit page"] = _html_and_text(console.get("/admin/audit"))

    (report_token,) = _mailed_links(smtp_server, "r")
    page = Buffered(app, app.response_class, use_cookies=True).get(f"/r/{report_token}")
    assert page.status_code == 200
    outputs["report page"] = _html_and_text(page)
    outputs["report pdf"] = pdf_text(
        Buffered(app, app.response_class, use_cookies=True)
        .get(f"/r/{report_token}/report.pdf")
        .data
    )
    assert PARTICIPANT[1] in outputs["report page"]  # the report is really there

    for name, url in (
        ("api cycles", f"{API}/cycles"),
        ("api cycle", f"{API}/cycles/{cycle.id}"),
        ("api status", f"{API}/cycles/{cycle.id}/status"),
        ("api scores", f"{API}/cycles/{cycle.id}/scores"),
        ("api nominations", f"{API}/cycles/{cycle.id}/nominations"),
        ("api employees", f"{API}/employees"),
        ("api banks", f"{API}/banks"),
    ):
        reply = api.get(url, headers=bearer)
        assert reply.status_code == 200, (url, reply.get_json())
        outputs[name] = json.dumps(reply.get_json(), ensure_ascii=False)

    assert smtp_server.messages, "no mail was delivered, so no mail logging was exercised"
    outputs.update(captured_logs())
    assert "GET /s/…" in outputs["text log"], "the request log lines were not captured"
    assert '"logger": "feedback360.request"' in outputs["json log"]

    identity = [BOSS[0], BOSS[1], BOSS[2], PARTICIPANT[2]]
    for external_id, name, email in PEERS:
        identity += [external_id, name, email]
    secrets = [*rating_tokens, report_token, api_token, *pseudonyms]
    found = []
    for where, text in outputs.items():
        for secret in secrets:
            if secret == report_token and where == "report page":
                continue  # the participant's own page links to its PDF with their token
            if secret in text:
                found.append(f"{where}: a token or pseudonym ({secret[:8]}…)")
        if where in BY_DESIGN:
            continue
        for value in identity:
            if value.lower() in text.lower():
                found.append(f"{where}: {value!r}")
        is_log = where.endswith("log") or where == "captured records"
        if is_log and (PARTICIPANT[1] in text or PARTICIPANT[0] in text):
            found.append(f"{where}: the participant {PARTICIPANT[1]!r}")
    # The search does find what it looks for (the org chart lists everyone by design).
    assert PEERS[0][1] in outputs["api employees"]
    assert not found, "rater identity exposed:\n  " + "\n  ".join(found)
    assert session.scalar(select(Employee).where(Employee.external_id == BOSS[0])) is not None
