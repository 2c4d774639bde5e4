"""The cycle page in the HR console: actions by state, chasing, the chart, nominations."""

from __future__ import annotations

import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from surveys import cycles, nominations
from surveys.db import utcnow
from surveys.models import (
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Nomination,
    NominationStatus,
    OutboxMessage,
)
from tests import factories as f
from tests.surveys.test_reports import build_cycle
from tests.webapp.console import audit_events, csrf_token, detached_cycle, sign_in
from webapp.extensions import db

SECRET_COMMENT = "Distinctive comment text 9c1e"


# Data is built in short app contexts of its own: a test holding one open across client
# requests would share ``g`` (and Flask-Login's cached user) between them.


@pytest.fixture
def open_cycle(app):
    """Member 1 of a team rated by self, manager and one of three peers (with a comment)."""
    with app.app_context():
        cycle, participant = build_cycle(
            db.session, peers_answering=1, comments={"peer": SECRET_COMMENT}
        )
        cycle.close_date = date.today() + timedelta(days=7)
        waiting = db.session.scalars(
            select(Assignment)
            .where(
                Assignment.participant_id == participant.id,
                Assignment.status == AssignmentStatus.PENDING,
            )
            .order_by(Assignment.id)
        ).all()
        data = SimpleNamespace(
            id=cycle.id,
            participant=participant.employee.name,
            waiting=[a.rater.name for a in waiting],
            answered=[
                a.rater.name
                for a in db.session.scalars(
                    select(Assignment).where(
                        Assignment.participant_id == participant.id,
                        Assignment.status == AssignmentStatus.SUBMITTED,
                    )
                )
            ],
            close_date=cycle.close_date,
        )
        db.session.commit()
        return data


def _set_state(app, cycle_id, state):
    with app.app_context():
        found = db.session.get(Cycle, cycle_id)
        if state == CycleState.CLOSED:
            cycles.close_cycle(db.session, found)
        else:
            found.state = state
        db.session.commit()


def _outbox(app, kind) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == kind)
        )


def _page(client, cycle_id) -> str:
    response = client.get(f"/admin/cycles/{cycle_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


# -- signed out and CSRF --------------------------------------------------------------------


def test_a_signed_out_visitor_gets_the_login_page_for_every_cycle_action(app, client, open_cycle):
    cid = open_cycle.id
    for method, url in [
        ("get", f"/admin/cycles/{cid}"),
        ("post", f"/admin/cycles/{cid}/remind"),
        ("post", f"/admin/cycles/{cid}/deadline"),
        ("post", f"/admin/cycles/{cid}/close"),
        ("get", f"/admin/cycles/{cid}/nominations"),
        ("post", f"/admin/cycles/{cid}/nominations/1"),
        ("post", f"/admin/cycles/{cid}/nominations/1/approve"),
    ]:
        response = getattr(client, method)(url, data={"confirm": "y"})
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/admin/login"), url
    assert detached_cycle(app, cid).state == CycleState.OPEN
    assert _outbox(app, "reminder") == 0


def test_cycle_actions_need_a_csrf_token(app, client, open_cycle):
    app.config["WTF_CSRF_ENABLED"] = True
    sign_in(app, client)
    cid = open_cycle.id
    later = (open_cycle.close_date + timedelta(days=3)).isoformat()
    for url, data in [
        (f"/admin/cycles/{cid}/remind", {}),
        (f"/admin/cycles/{cid}/deadline", {"close_date": later}),
        (f"/admin/cycles/{cid}/close", {"confirm": "y"}),
    ]:
        assert client.post(url, data=data).status_code == 400, url
    found = detached_cycle(app, cid)
    assert (found.state, found.close_date) == (CycleState.OPEN, open_cycle.close_date)

    token = csrf_token(_page(client, cid))
    response = client.post(
        f"/admin/cycles/{cid}/deadline", data={"close_date": later, "csrf_token": token}
    )
    assert response.status_code == 302
    assert detached_cycle(app, cid).close_date.isoformat() == later


# -- what each state offers -----------------------------------------------------------------


def test_an_open_cycle_offers_reminders_extension_and_closing(app, client, open_cycle):
    sign_in(app, client)
    page = _page(client, open_cycle.id)
    assert "Send reminders now" in page
    assert "Extend the deadline" in page
    assert "Close the cycle" in page
    assert "Response rates (CSV)" in page
    assert "Scores (CSV)" not in page
    assert "release" not in page.lower().replace("released", "")


def test_a_closed_cycle_offers_release_and_exports_only(app, client, open_cycle):
    _set_state(app, open_cycle.id, CycleState.CLOSED)
    sign_in(app, client)
    page = _page(client, open_cycle.id)
    assert f'href="/admin/cycles/{open_cycle.id}/release"' in page
    assert "Scores (CSV)" in page
    assert "Response rates (CSV)" in page
    for absent in (
        "Send reminders now",
        "Extend the deadline",
        "Close the cycle",
        "Not answered yet",
    ):
        assert absent not in page
    # …and the actions themselves refuse, not just the buttons.
    assert client.post(f"/admin/cycles/{open_cycle.id}/remind").status_code == 403
    later = (date.today() + timedelta(days=30)).isoformat()
    response = client.post(f"/admin/cycles/{open_cycle.id}/deadline", data={"close_date": later})
    assert response.status_code == 403


# -- reminders ------------------------------------------------------------------------------


def test_send_reminders_now_queues_emails_and_says_how_many(app, client, open_cycle):
    with app.app_context():  # invited long enough ago to be due a reminder
        db.session.execute(
            update(Assignment)
            .where(Assignment.cycle_id == open_cycle.id)
            .values(invited_at=utcnow() - timedelta(days=10))
        )
        db.session.commit()
    sign_in(app, client)
    response = client.post(f"/admin/cycles/{open_cycle.id}/remind")
    # Back at the top of the page, where the message is (not scrolled past it).
    assert response.headers["Location"] == f"/admin/cycles/{open_cycle.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert _outbox(app, "reminder") == len(open_cycle.waiting) == 2
    assert "2 reminder emails queued." in page
    (event,) = audit_events(app, "cycle.remind")
    assert event.actor == "hr@example.com"
    assert event.detail == {"emails": 2}


def test_send_reminders_says_when_nobody_is_due(app, client, open_cycle):
    sign_in(app, client)  # everyone was invited moments ago
    page = client.post(f"/admin/cycles/{open_cycle.id}/remind", follow_redirects=True)
    assert "Nobody is due a reminder" in page.get_data(as_text=True)
    assert _outbox(app, "reminder") == 0


# -- extending the deadline -----------------------------------------------------------------


def test_extend_the_deadline(app, client, open_cycle):
    sign_in(app, client)
    later = open_cycle.close_date + timedelta(days=5)
    response = client.post(
        f"/admin/cycles/{open_cycle.id}/deadline",
        data={"close_date": later.isoformat()},
        follow_redirects=True,
    )
    assert f"The cycle now closes on {later:%d %B %Y}." in response.get_data(as_text=True)
    assert detached_cycle(app, open_cycle.id).close_date == later
    (event,) = audit_events(app, "cycle.extend_deadline")
    assert event.detail == {"from": open_cycle.close_date.isoformat(), "to": later.isoformat()}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter the new close date."),
        ("next tuesday", "Not a valid date value."),
        ("today", "must be after today"),
        ("current", "later than the current one"),
        ("earlier", "later than the current one"),
    ],
)
def test_extend_the_deadline_refuses_bad_dates_and_keeps_the_input(
    app, client, open_cycle, value, message
):
    value = {
        "today": utcnow().date().isoformat(),  # the app's today is UTC's
        "current": open_cycle.close_date.isoformat(),
        "earlier": (open_cycle.close_date - timedelta(days=2)).isoformat(),
    }.get(value, value)
    sign_in(app, client)
    response = client.post(f"/admin/cycles/{open_cycle.id}/deadline", data={"close_date": value})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page
    if value:
        assert f'value="{value}"' in page  # what was typed is still there
    assert detached_cycle(app, open_cycle.id).close_date == open_cycle.close_date
    assert audit_events(app, "cycle.extend_deadline") == []


# -- closing --------------------------------------------------------------------------------


def test_closing_needs_the_confirmation_box(app, client, open_cycle):
    sign_in(app, client)
    response = client.post(f"/admin/cycles/{open_cycle.id}/close", data={})
    assert response.status_code == 422
    assert "Tick the box to confirm that the cycle should close." in response.get_data(as_text=True)
    assert detached_cycle(app, open_cycle.id).state == CycleState.OPEN

    response = client.post(
        f"/admin/cycles/{open_cycle.id}/close", data={"confirm": "y"}, follow_redirects=True
    )
    assert "The cycle is closed with 3 responses." in response.get_data(as_text=True)
    assert detached_cycle(app, open_cycle.id).state == CycleState.CLOSED
    (event,) = audit_events(app, "cycle.close")
    assert event.detail == {"responses": 3}


# -- who has not answered, and the chart ----------------------------------------------------


def test_not_answered_yet_lists_names_and_roles_never_answers(app, client, open_cycle):
    sign_in(app, client)
    page = _page(client, open_cycle.id)
    section = page.split('id="waiting"')[1].split("</section>")[0]
    assert open_cycle.participant in section
    for name in open_cycle.waiting:
        assert f'<li>{name} <span class="admin-role">· Peer</span></li>' in section
    for name in open_cycle.answered:
        if name != open_cycle.participant:
            assert name not in section
    assert SECRET_COMMENT not in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}", section)  # no submission (or any) dates


def test_response_chart_is_an_accessible_svg_with_a_table(app, client, open_cycle):
    sign_in(app, client)
    page = _page(client, open_cycle.id)
    svg = re.search(r"<svg[^>]*>(.*?)</svg>", page, re.S)
    assert svg, "no chart"
    assert 'role="img"' in svg.group(0)
    assert 'aria-labelledby="responses-chart-title responses-chart-desc"' in svg.group(0)
    assert '<title id="responses-chart-title">Responses received over time</title>' in svg.group(1)
    assert "responses grew to 3" in svg.group(1)  # the <desc>
    assert "<polyline" in svg.group(1)
    table = page.split("<caption>Responses per day</caption>")[1].split("</table>")[0]
    today = utcnow().date().isoformat()  # responses are dated in UTC
    assert f'<th scope="row">{today}</th><td>3</td><td>3</td>' in table


# -- nominations ----------------------------------------------------------------------------


@pytest.fixture
def nominating(app):
    with app.app_context():
        session = db.session
        boss = f.employee(session, "B", "Bo Boss")
        ann = f.employee(session, "A", "Ann Lead", boss)
        peers = [
            f.employee(session, k, n, boss)
            for k, n in (("P1", "Bea"), ("P2", "Cal"), ("P3", "Dan"))
        ]
        cycle = f.cycle(session, [ann], nomination_mode="participant", peer_min=2, peer_max=3)
        cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
        participant = cycle.participants[0]
        nominations.submit_nominations(
            session, participant, [peers[0].id, peers[1].id], base_url="x"
        )
        session.commit()
        return SimpleNamespace(id=cycle.id, participant=participant.id, peers=[p.id for p in peers])


def _nominations(app, participant_id):
    with app.app_context():
        rows = db.session.scalars(
            select(Nomination).where(Nomination.participant_id == participant_id)
        ).all()
        return {n.nominee.name: (n.status, n.source) for n in rows}


def test_nominations_page_lists_peers_and_status(app, client, nominating):
    sign_in(app, client)
    page = _page(client, nominating.id)
    assert f'href="/admin/cycles/{nominating.id}/nominations"' in page
    listing = client.get(f"/admin/cycles/{nominating.id}/nominations").get_data(as_text=True)
    assert "Ann Lead" in listing
    assert "Bo Boss" in listing
    assert "awaiting approval" in listing
    assert 'Bea <span class="admin-role">· proposed</span>' in listing
    assert 'Approve<span class="admin-sr"> Ann Lead\'s list</span> for the manager' in listing


def test_hr_sets_a_participants_peers(app, client, nominating):
    sign_in(app, client)
    url = f"/admin/cycles/{nominating.id}/nominations/{nominating.participant}"
    editor = client.get(url).get_data(as_text=True)
    assert re.search(rf'value="{nominating.peers[0]}" checked', editor)
    assert not re.search(rf'value="{nominating.peers[2]}" checked', editor)

    chosen = [str(nominating.peers[1]), str(nominating.peers[2])]
    response = client.post(url, data={"nominee": chosen}, follow_redirects=True)
    assert "Set and approved 2 peers for Ann Lead." in response.get_data(as_text=True)
    assert _nominations(app, nominating.participant) == {
        "Bea": (NominationStatus.REJECTED, "participant"),
        "Cal": (NominationStatus.APPROVED, "participant"),
        "Dan": (NominationStatus.APPROVED, "hr"),
    }
    (event,) = audit_events(app, "nominations.override")
    assert event.detail == {"participant": "A", "peers": 2}


def test_hr_override_refuses_a_list_outside_the_rules(app, client, nominating):
    sign_in(app, client)
    url = f"/admin/cycles/{nominating.id}/nominations/{nominating.participant}"
    response = client.post(url, data={"nominee": [str(nominating.peers[2])]})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Please choose between 2 and 3 colleagues (you chose 1)." in page
    assert re.search(rf'value="{nominating.peers[2]}" checked', page)  # the choice is kept
    assert _nominations(app, nominating.participant) == {
        "Bea": (NominationStatus.PROPOSED, "participant"),
        "Cal": (NominationStatus.PROPOSED, "participant"),
    }
    assert audit_events(app, "nominations.override") == []


def test_hr_approves_for_the_manager(app, client, nominating):
    sign_in(app, client)
    url = f"/admin/cycles/{nominating.id}/nominations/{nominating.participant}/approve"
    response = client.post(url, follow_redirects=True)
    assert "Approved Ann Lead&#39;s 2 peers on their manager&#39;s behalf." in response.get_data(
        as_text=True
    )
    assert set(_nominations(app, nominating.participant).values()) == {
        (NominationStatus.APPROVED, "participant")
    }
    (event,) = audit_events(app, "nominations.approve")
    assert event.detail == {"participant": "A", "peers": 2}
    again = client.post(url, follow_redirects=True).get_data(as_text=True)
    assert "already approved" in again
    assert len(audit_events(app, "nominations.approve")) == 1


def test_nominations_of_another_cycle_are_404(app, client, nominating, open_cycle):
    sign_in(app, client)
    url = f"/admin/cycles/{open_cycle.id}/nominations/{nominating.participant}"
    # The open cycle has no nominations at all (org-chart mode): refused before lookup.
    assert client.get(url).status_code == 403
    url = f"/admin/cycles/{nominating.id}/nominations/999999"
    assert client.get(url).status_code == 404


# -- opening the surveys after nominations ---------------------------------------------------


def test_hr_opens_the_surveys_of_a_nominating_cycle(app, client, nominating):
    sign_in(app, client)
    page = _page(client, nominating.id)
    assert "Open the surveys" in page
    url = f"/admin/cycles/{nominating.id}/launch"

    unconfirmed = client.post(url, data={})
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm that the surveys should open." in unconfirmed.get_data(
        as_text=True
    )
    assert detached_cycle(app, nominating.id).state == CycleState.NOMINATING

    response = client.post(url, data={"confirm": "y"}, follow_redirects=True)
    assert "The surveys are open: " in response.get_data(as_text=True)
    assert detached_cycle(app, nominating.id).state == CycleState.OPEN
    assert _outbox(app, "invite") > 0
    (event,) = audit_events(app, "cycle.launch")
    assert event.detail["assignments"] >= 4  # self, manager and the two proposed peers
    assert client.post(url, data={"confirm": "y"}).status_code == 403  # only once


def test_opening_with_too_few_peers_names_who_and_needs_the_extra_tick(app, client):
    with app.app_context():
        session = db.session
        boss = f.employee(session, "B", "Bo Boss")
        ann = f.employee(session, "A", "Ann Lead", boss)
        cycle = f.cycle(session, [ann], nomination_mode="participant", peer_min=2, peer_max=3)
        cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
        session.commit()
        cycle_id = cycle.id
    sign_in(app, client)
    url = f"/admin/cycles/{cycle_id}/launch"
    refused = client.post(url, data={"confirm": "y"})
    assert refused.status_code == 422
    assert "Ann Lead (0)" in refused.get_data(as_text=True)
    assert detached_cycle(app, cycle_id).state == CycleState.NOMINATING
    assert audit_events(app, "cycle.launch") == []
    allowed = client.post(url, data={"confirm": "y", "allow_short": "y"})
    assert allowed.status_code == 302
    assert detached_cycle(app, cycle_id).state == CycleState.OPEN


def test_a_large_cycle_lists_its_participants_a_page_at_a_time(app, client, monkeypatch):
    """A 10,000-person cycle listed whole made a 17 MB page: both lists are paged."""
    from webapp.admin import cycle_actions

    monkeypatch.setattr(cycle_actions, "PEOPLE_PAGE_SIZE", 1)
    with app.app_context():
        cycle, _ = build_cycle(db.session, participants=2, peers_answering=1)
        cycle_id = cycle.id
        names = sorted(p.employee.name for p in cycle.participants)
    sign_in(app, client)

    def section(page: str, heading: str) -> str:
        start = page.index(f'id="{heading}"')
        return page[start : page.index("</section>", start)]

    first = client.get(f"/admin/cycles/{cycle_id}").get_data(as_text=True)
    people = section(first, "by-participant")
    assert names[0] in people
    assert names[1] not in people
    assert "1–1 of 2 participants" in people
    assert f'href="/admin/cycles/{cycle_id}?people=2&amp;waiting=1#by-participant"' in people
    assert "1–1 of 2 participants with raters to chase" in section(first, "waiting")

    second = client.get(f"/admin/cycles/{cycle_id}?people=2").get_data(as_text=True)
    people = section(second, "by-participant")
    assert names[1] in people
    assert names[0] not in people
    assert "2–2 of 2 participants" in people
    # Past the end (or nonsense): the nearest page there is.
    assert names[1] in section(
        client.get(f"/admin/cycles/{cycle_id}?people=99").get_data(as_text=True), "by-participant"
    )
    assert names[0] in section(
        client.get(f"/admin/cycles/{cycle_id}?people=abc").get_data(as_text=True), "by-participant"
    )
