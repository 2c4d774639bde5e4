"""SQL meta-characters everywhere: stored and shown verbatim, searched literally.

Quotes, comment markers, LIKE wildcards (``%``, ``_``), backslashes and non-Latin text
go in through the console's CSV import, the survey form and the API; they come back
unchanged from the database, the console and the API, and a search for ``%`` or ``_``
finds the people whose data contains that character, not everyone. Runs on SQLite and
PostgreSQL (quoting and LIKE escaping differ between them).
"""

from __future__ import annotations

import csv
import html
import io
import re
from urllib.parse import quote

import pytest
from sqlalchemy import select

from surveys import accounts, cycles
from surveys.models import Cycle, Employee, ResponseComment, UserRole
from tests import factories as f
from tests.webapp.console import sign_in

#: external id → (name, department); the email is derived from the id (no metacharacters).
PEOPLE = {
    "M1": ("Seán O'Brien", "R&D 'quotes'"),
    "M2": ('Robert"); DROP TABLE employees;--', "Ops"),
    "M3": ("Hundred %Percent", "Ops"),
    "M4": ("Under_Score", "Ops"),
    "M5": ("Back\\Slash \\' \\\\", "Ops"),
    "M6": ("Zoë 中文 Ωmega ‮rtl", "Ventes & Ïle"),
    "M7": ("Plain Person", "Ops"),
    "M8": ("' OR '1'='1", "x' OR 1=1 --"),
}
API = "/api/v1"
MANAGER = "M7"


def _csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["employee_id", "name", "email", "manager_id", "department"])
    for external_id, (name, department) in PEOPLE.items():
        manager = "" if external_id == "M7" else "M7"
        writer.writerow(
            [external_id, name, f"{external_id.lower()}@example.com", manager, department]
        )
    return buffer.getvalue().encode("utf-8")


@pytest.fixture
def console(app, session):
    """An admin client that imported PEOPLE through the console's two-step CSV import."""
    client = app.test_client()
    sign_in(app, client, "meta-admin@example.com", UserRole.ADMIN)
    preview = client.post(
        "/admin/people/import",
        data={"file": (io.BytesIO(_csv()), "people.csv")},
        content_type="multipart/form-data",
    )
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200, page[:2000]
    payload = re.search(
        r'name="payload"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="payload"', page
    )
    assert payload, "no import payload on the preview page"
    applied = client.post(
        "/admin/people/import/apply", data={"payload": payload.group(1) or payload.group(2)}
    )
    assert applied.status_code in (302, 303), applied.get_data(as_text=True)[:2000]
    return client


def _names_on(client, url: str) -> set[str]:
    """Which PEOPLE names appear (unescaped) on ``url``; the manager (M7) is left out, as
    every other row names them in its manager column."""
    reply = client.get(url)
    assert reply.status_code == 200, url
    text = html.unescape(reply.get_data(as_text=True))
    return {name for key, (name, _) in PEOPLE.items() if key != MANAGER and name in text}


def test_imported_text_is_stored_verbatim(session, console):
    stored = {e.external_id: (e.name, e.department) for e in session.scalars(select(Employee))}
    assert stored == PEOPLE


def test_console_shows_every_name_verbatim(console):
    everyone = {name for key, (name, _) in PEOPLE.items() if key != MANAGER}
    assert _names_on(console, "/admin/people") == everyone


SEARCHES = [
    ("%", {"M3"}),
    ("_", {"M4"}),
    ("\\", {"M5"}),
    ("'", {"M1", "M5", "M8"}),
    ('");', {"M2"}),
    ("--", {"M2", "M8"}),
    ("' OR '1'='1", {"M8"}),
    ("中文", {"M6"}),
    ("%%%", set()),
    ("_n_", set()),
]


def test_console_search_is_literal(console):
    wrong = {}
    for query, expected in SEARCHES:
        names = _names_on(console, "/admin/people?q=" + quote(query))
        if names != {PEOPLE[k][0] for k in expected}:
            wrong[query] = names
    assert not wrong, wrong


API_QUERIES = [
    ({"search": "%"}, {"M3"}),
    ({"search": "_"}, {"M4"}),
    ({"search": "\\"}, {"M5"}),
    ({"search": "' OR '1'='1"}, {"M8"}),
    ({"search": "%' --"}, set()),
    ({"department": "x' OR 1=1 --"}, {"M8"}),
    ({"department": "%"}, set()),
    ({"department": "R&D 'QUOTES'"}, {"M1"}),
]


def test_api_query_parameters_are_literal(app, session, console):
    user = accounts.create_user(session, "meta-api@example.com", "Api", "x" * 20, UserRole.HR)
    _, raw = accounts.create_api_token(session, user, "meta")
    session.commit()
    client = app.test_client()
    for params, expected in API_QUERIES:
        reply = client.get(
            f"{API}/employees",
            query_string={**params, "page_size": 100},
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert reply.status_code == 200, (params, reply.get_json())
        found = {row["employee_id"]: row for row in reply.get_json()}
        assert set(found) == expected, params
        for key in expected:  # and the text comes back exactly as imported
            assert (found[key]["name"], found[key]["department"]) == PEOPLE[key]


def test_path_and_query_metacharacters_never_error(console):
    for url in (
        "/admin/banks/" + quote("' OR '1'='1", safe=""),
        "/admin/banks/" + quote('pulse";--', safe=""),
        "/admin/banks/%25",
        "/admin/audit?action=" + quote("%' OR 1=1 --"),
        "/admin/people?q=" + quote("\\%_'\";--") + "&status=" + quote("all' --"),
        "/admin/people?page=" + quote("1' OR '1'='1"),
        "/admin/cycles/" + quote("1 OR 1=1"),
    ):
        reply = console.get(url)
        assert reply.status_code in (200, 302, 404), (url, reply.status_code)


def test_cycle_names_and_comments_round_trip(app, session, console):
    name = 'Q3 \'25 "review"; DROP TABLE cycles;-- 100%_done \\o/ ✓'
    boss = session.scalar(select(Employee).where(Employee.external_id == "M7"))
    reports = session.scalars(select(Employee).where(Employee.manager_id == boss.id)).all()
    cycle = cycles.create_cycle(
        session,
        name=name,
        bank=f.get_bank("pulse"),
        participants=reports[:1],
        settings={"peer_min": 2, "peer_max": 4},
    )
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    assert session.scalar(select(Cycle.name).where(Cycle.id == cycle.id)) == name
    assert name in html.unescape(console.get("/admin/").get_data(as_text=True))

    comment = (
        "It's 100% fine_ish; \"quoted\" -- \\n not a newline; 中文 '); DELETE FROM responses;--"
    )
    token = f.links(session, "s")[0]
    rater = app.test_client()
    assert rater.get(f"/s/{token}").status_code == 200
    bank = f.get_bank("pulse")
    data = {f"r:{item.id}": "3" for item in bank.items}
    data[f"c:{bank.open_questions[0].id}"] = comment
    data["action"] = "submit"
    assert rater.post(f"/s/{token}", data=data).status_code in (302, 303)
    session.expire_all()
    assert session.scalars(select(ResponseComment.text)).all() == [comment]


def test_audit_filter_is_a_literal_prefix(console):
    """``?action=`` keeps actions starting with the text; ``%`` and ``_`` match themselves."""

    def rows(action: str) -> int:
        page = console.get("/admin/audit?action=" + quote(action)).get_data(as_text=True)
        return page.count("<code>account.login</code></td>")

    assert rows("account") >= 1  # the sign-in of the fixture is there
    assert rows("%") == 0
    assert rows("_ccount") == 0
    assert rows("account.login%") == 0
