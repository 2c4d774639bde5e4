"""axe-core on every page people use: zero serious or critical violations.

axe-core comes from npm (``package.json``; ``make test`` runs ``npm ci``). The survey,
nomination and approval pages, the participant's report, the sign-in page and every
console page reachable with a GET (found from the URL map, so a new console page is
checked without touching this file).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from surveys import accounts, cycles
from surveys.models import Cycle, CycleState, NominationMode, Participant
from tests import factories
from tests.webapp.test_report_links import released, report_links
from webapp.extensions import db

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
ADMIN_EMAIL = "a11y-admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
SETUP_STEPS = ("participants", "nominations", "anonymity", "dates", "emails", "review")

pytestmark = pytest.mark.skipif(
    not AXE.is_file(), reason="axe-core is not installed (run `npm ci`; make test does)"
)


def violations(page) -> list[str]:
    """Serious and critical axe violations of the page, one readable line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture
def page(context_factory):
    """Pages allow only their own scripts (CSP); axe is injected, so bypass it here."""
    return context_factory(bypass_csp=True).new_page()


@pytest.fixture(scope="module")
def world(live_server):
    """A launched cycle (links), a nomination cycle (links) and a released one (report)."""
    app = live_server.app
    with app.app_context():
        session = db.session
        _boss, team = factories.team(session, 4, prefix="AX")
        factories.launched(session, team[:1])
        survey = factories.links(session, "s")[0]

        _boss2, team2 = factories.team(session, 4, prefix="AN")
        nominating = factories.cycle(
            session, team2[:1], nomination_mode=NominationMode.PARTICIPANT.value
        )
        cycles.start_nominations(session, nominating, base_url=live_server.url)
        session.commit()
        nominate = factories.links(session, "n")[-1]

        _cycle, participant = released(session)
        report = report_links(session)[participant.id]

        _boss3, team3 = factories.team(session, 3, prefix="AD")
        draft = factories.cycle(session, team3)
        if accounts.find_user(session, ADMIN_EMAIL) is None:
            accounts.create_user(session, ADMIN_EMAIL, "Ada Admin", ADMIN_PASSWORD, role="admin")
        session.commit()
        open_cycle = session.scalar(select(Cycle.id).where(Cycle.state == CycleState.OPEN))

        def first_participant(cycle_id):
            return session.scalar(
                select(Participant.id).where(Participant.cycle_id == cycle_id).limit(1)
            )

        # One set of URL arguments per kind of cycle, so each page is seen in a real state.
        ids = [
            {"cycle_id": c, "participant_id": first_participant(c), "key": "pulse"}
            for c in (open_cycle, nominating.id, participant.cycle_id)
        ]
        ids += [{"cycle_id": draft.id, "step": step} for step in SETUP_STEPS]
        session.remove()
    return {
        "survey": f"{live_server.url}/s/{survey}",
        "nominate": f"{live_server.url}/n/{nominate}",
        "report": f"{live_server.url}/r/{report}",
        "ids": ids,
    }


@pytest.mark.parametrize("which", ["survey", "nominate", "report"])
def test_pages_from_emailed_links(page, world, which):
    page.goto(world[which])
    assert page.locator("h1").count() >= 1
    assert violations(page) == []


def test_every_survey_section(page, world):
    page.goto(world["survey"])
    found = []
    for _ in range(20):
        found += violations(page)
        button = page.get_by_role("button", name=re.compile("^Next", re.I))
        if button.count() == 0:
            break
        button.first.click()
        page.wait_for_load_state()
    assert found == []


def console_pages(app, id_sets) -> list[str]:
    """Every GET page of the console, once per set of URL arguments that fills it in."""
    pages = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or "GET" not in rule.methods:
            continue
        for ids in id_sets:
            if set(rule.arguments) <= set(ids):
                pages.append(rule.build({k: ids[k] for k in rule.arguments})[1])
    return sorted(set(pages))


def test_sign_in_page(page, live_server):
    page.goto(f"{live_server.url}/admin/login")
    assert violations(page) == []


CLIPPED_TABLES = (
    "[...document.querySelectorAll('.admin-table-wrap, .table-scroll')]"
    ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
)


def test_every_console_page(page, world, live_server):
    page.goto(f"{live_server.url}/admin/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/?$"))
    checked, problems, clipped = [], {}, []
    for path in console_pages(live_server.app, world["ids"]):
        # Downloads (a bank's YAML, CSV exports) are not pages.
        head = page.request.get(live_server.url + path)
        if head.status != 200 or not head.headers["content-type"].startswith("text/html"):
            continue
        page.goto(live_server.url + path)
        checked.append(path)
        if found := violations(page):
            problems[path] = found
        # On a 1280 px screen no console table hides columns behind a scroll bar.
        if page.evaluate(CLIPPED_TABLES):
            clipped.append(path)
    print("console pages checked:", *checked, sep="\n  ")
    assert len(checked) >= 25, checked
    assert problems == {}
    assert clipped == []


def test_console_pages_fit_a_phone(context_factory, world, live_server):
    """HR on a phone: the menu wraps, wide tables scroll in their own box."""
    phone = context_factory(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    page.goto(f"{live_server.url}/admin/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/?$"))
    for path in ("/admin/", "/admin/people", "/admin/banks", "/admin/audit"):
        page.goto(live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)


@pytest.mark.parametrize("which", ["survey", "report"])
def test_pages_from_emailed_links_fit_a_phone(context_factory, world, which):
    """On a 390 px wide phone nothing widens the page: wide tables scroll in their own
    (keyboard-focusable) box."""
    phone = context_factory(viewport={"width": 390, "height": 844}, is_mobile=True, bypass_csp=True)
    page = phone.new_page()
    page.goto(world[which])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    # A scrolling table's caption (its key) is readable without scrolling sideways.
    clipped = page.evaluate(
        "[...document.querySelectorAll('.table-scroll caption')]"
        ".filter(c => c.getBoundingClientRect().right > innerWidth + 1).length"
    )
    assert clipped == 0
    assert violations(page) == []
