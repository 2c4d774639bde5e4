"""Peer nominations over HTTP: the participant's /n/ page and the manager's /a/ page."""

from __future__ import annotations

import re
from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from surveys import cycles
from surveys.models import (
    Assignment,
    Nomination,
    NominationStatus,
    OutboxMessage,
    Relationship,
)
from tests import factories as f

CHECKBOX = re.compile(r'<input type="checkbox" name="nominee" value="(\d+)"\s*(checked)?\s*>')


def listed(reply) -> dict[int, bool]:
    """Employee id -> ticked, for every nominee checkbox on the page."""
    assert reply.status_code in (200, 422), reply.status_code
    return {int(i): bool(c) for i, c in CHECKBOX.findall(reply.get_data(as_text=True))}


@pytest.fixture
def org(session):
    """Boss > Ann (a participant, who manages Rob and Rae), Bea, Cal, Dan; Sue in Sales."""
    boss = f.employee(session, "B", "Bo Boss", department="Eng")
    ann = f.employee(session, "A", "Ann Lead", boss, "Eng")
    peers = [f.employee(session, k, n, boss, "Eng") for k, n in (("P1", "Bea"), ("P2", "Cal"))]
    peers.append(f.employee(session, "P3", "Dan", boss, "Eng"))
    reports = [f.employee(session, k, n, ann, "Eng") for k, n in (("R1", "Rob"), ("R2", "Rae"))]
    sue = f.employee(session, "S1", "Sue", department="Sales")
    cycle = f.cycle(session, [ann], nomination_mode="participant", peer_min=2, peer_max=3)
    cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
    session.commit()
    (link,) = f.links(session, "n")
    return SimpleNamespace(
        cycle=cycle, boss=boss, ann=ann, peers=peers, reports=reports, sue=sue, link=link
    )


def nominate(client, org, people):
    return client.post(f"/n/{org.link}", data={"nominee": [str(p.id) for p in people]})


def approval_emails(session, org) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "approve")))


def test_page_lists_colleagues_but_not_self_manager_or_reports(client, org):
    page = listed(client.get(f"/n/{org.link}"))
    assert set(page) == {p.id for p in org.peers} | {org.sue.id}
    assert not any(page.values())
    excluded = {org.ann.id, org.boss.id} | {r.id for r in org.reports}
    assert not excluded & set(page)


@pytest.mark.parametrize(("query", "who"), [("sales", ["sue"]), ("Cal", [1]), ("zzz", [])])
def test_search_filters_the_list(client, org, query, who):
    expected = {org.sue.id if w == "sue" else org.peers[w].id for w in who}
    reply = client.get(f"/n/{org.link}", query_string={"q": query})
    assert set(listed(reply)) == expected
    if not who:
        assert "Nobody matches “zzz”." in reply.get_data(as_text=True)


def test_search_is_plain_text_not_a_pattern(client, org):
    for query in ("%", "_", "Bea\x00"):  # NUL used to be a 500 on PostgreSQL
        reply = client.get(f"/n/{org.link}", query_string={"q": query})
        assert reply.status_code == 200, repr(query)
    assert listed(client.get(f"/n/{org.link}", query_string={"q": "%"})) == {}
    assert set(listed(client.get(f"/n/{org.link}", query_string={"q": "Bea\x00"}))) == {
        org.peers[0].id
    }


def test_forged_or_repeated_ids_are_not_a_500(session, client, org):
    bea, cal, _ = org.peers
    for junk in ("²", "9" * 30, "-1", "x"):
        reply = client.post(f"/n/{org.link}", data={"nominee": [junk, str(bea.id)]})
        assert reply.status_code == 422, junk
        assert "(you chose 1)" in reply.get_data(as_text=True)
    reply = client.post(f"/n/{org.link}", data={"nominee": [str(bea.id), str(bea.id), str(cal.id)]})
    assert reply.status_code == 302
    session.expire_all()
    assert sorted(session.scalars(select(Nomination.nominee_id))) == [bea.id, cal.id]


@pytest.mark.parametrize("count", [1, 4])
def test_too_few_or_too_many_is_422_and_nothing_is_saved(session, client, org, count):
    people = [*org.peers, org.sue][:count]
    reply = nominate(client, org, people)
    assert reply.status_code == 422
    assert f"Please choose between 2 and 3 colleagues (you chose {count})." in reply.get_data(
        as_text=True
    )
    assert {i for i, ticked in listed(reply).items() if ticked} == {p.id for p in people}
    session.expire_all()
    assert session.scalars(select(Nomination)).all() == []
    assert approval_emails(session, org) == []


def test_cannot_sneak_in_a_report_or_the_manager(session, client, org):
    for person in (org.reports[0], org.boss):
        reply = nominate(client, org, [org.peers[0], person])
        assert reply.status_code == 422
        assert "already rates you as such" in reply.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(select(Nomination)).all() == []


def test_nominate_approve_edit_and_launch_with_the_approved_peers(app, session, client, org):
    bea, cal, dan = org.peers
    reply = nominate(client, org, [bea, cal])
    assert reply.status_code == 302
    assert "sent to your manager for approval" in client.get(reply.location).get_data(as_text=True)
    (email,) = approval_emails(session, org)
    assert email.to_address == org.boss.email
    (approve_link,) = f.links(session, "a")
    assert f"{f.BASE_URL}/a/{approve_link}" in email.body

    page = listed(app.test_client().get(f"/a/{approve_link}"))  # the manager's own browser
    assert {i for i, ticked in page.items() if ticked} == {bea.id, cal.id}
    assert dan.id in page
    assert org.sue.id in page

    manager = app.test_client()
    assert manager.post(f"/a/{approve_link}", data={"nominee": [str(bea.id)]}).status_code == 422
    edited = manager.post(
        f"/a/{approve_link}", data={"nominee": [str(cal.id), str(dan.id), str(dan.id)]}
    )
    assert edited.status_code == 302
    assert "Approved 2 raters for Ann Lead." in manager.get(edited.location).get_data(as_text=True)
    session.expire_all()
    statuses = {n.nominee_id: n.status for n in session.scalars(select(Nomination))}
    assert statuses == {
        bea.id: NominationStatus.REJECTED,
        cal.id: NominationStatus.APPROVED,
        dan.id: NominationStatus.APPROVED,
    }
    assert {i for i, t in listed(manager.get(f"/a/{approve_link}")).items() if t} == {
        cal.id,
        dan.id,
    }

    cycle = cycles.get_cycle(session, org.cycle.id)
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    raters = dict(
        session.execute(
            select(Assignment.rater_id, Assignment.relationship).where(
                Assignment.cycle_id == cycle.id
            )
        ).all()
    )
    assert raters == {
        org.ann.id: Relationship.SELF,
        org.boss.id: Relationship.MANAGER,
        org.reports[0].id: Relationship.DIRECT_REPORT,
        org.reports[1].id: Relationship.DIRECT_REPORT,
        cal.id: Relationship.PEER,
        dan.id: Relationship.PEER,
    }

    # once the cycle is open, both nomination links are dead
    for url in (f"/n/{org.link}", f"/a/{approve_link}"):
        assert client.get(url).status_code == 404, url
        assert client.post(url, data={"nominee": [str(bea.id)]}).status_code == 404, url
    session.expire_all()
    after = {n.nominee_id: n.status for n in session.scalars(select(Nomination))}
    assert after == statuses


def test_csrf_is_enforced_on_nominations(app, client, org):
    app.config["WTF_CSRF_ENABLED"] = True
    bea, cal, _ = org.peers
    data = {"nominee": [str(bea.id), str(cal.id)]}
    assert client.post(f"/n/{org.link}", data=data).status_code == 400
    page = client.get(f"/n/{org.link}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/n/{org.link}", data={**data, "csrf_token": token}).status_code == 302


def test_participant_cannot_override_an_approved_list(session):
    from surveys import cycles, nominations
    from surveys.errors import DomainError
    from tests import factories as f

    _, team = f.team(session, 5)
    cycle = f.cycle(session, team[:1], nomination_mode="participant")
    cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
    participant = cycle.participants[0]
    chosen = [p.id for p in team[1:4]]
    nominations.submit_nominations(session, participant, chosen, base_url=f.BASE_URL)
    nominations.approve_nominations(session, participant, [p.id for p in team[2:5]])
    with pytest.raises(DomainError, match="already approved"):
        nominations.submit_nominations(session, participant, chosen, base_url=f.BASE_URL)


def test_searching_keeps_everyone_ticked_so_far(client, org):
    """The search posts the ticks along: a colleague ticked before a search stays ticked
    even when the search no longer lists them, and nothing is saved by searching."""
    bea = org.peers[0]
    reply = client.post(
        f"/n/{org.link}", data={"action": "search", "q": "sales", "nominee": [str(bea.id)]}
    )
    assert reply.status_code == 200
    ticked = listed(reply)
    assert ticked[bea.id] is True  # kept, though "sales" does not match Bea
    assert ticked[org.sue.id] is False
    assert client.get(f"/n/{org.link}").status_code == 200
    assert not any(listed(client.get(f"/n/{org.link}")).values())  # nothing was saved


def test_the_pages_say_where_the_list_stands(app, session, client, org):
    """Before: the deadline. Proposed: with the manager, still editable. Approved: the
    participant sees the final list and no form; the manager sees when they approved."""

    def text(reply):
        return " ".join(re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True)).split())

    org.cycle.nomination_deadline = date(2099, 3, 6)
    session.commit()
    first = text(client.get(f"/n/{org.link}"))
    assert "Please choose by 6 March 2099." in first
    assert "with your manager" not in first
    bea, cal, dan = org.peers
    assert nominate(client, org, [bea, cal]).status_code == 302
    proposed = text(client.get(f"/n/{org.link}"))
    assert "Your list is with your manager for approval. You can still change it" in proposed
    (approve_link,) = f.links(session, "a")
    (email,) = approval_emails(session, org)
    assert "Please respond by 6 March 2099." in email.body
    manager = app.test_client()
    assert "Please approve by 6 March 2099." in text(manager.get(f"/a/{approve_link}"))
    ids = [str(cal.id), str(dan.id)]
    assert manager.post(f"/a/{approve_link}", data={"nominee": ids}).status_code == 302
    approved = client.get(f"/n/{org.link}")
    assert "Your manager approved your list on" in text(approved)
    assert "Please choose by" not in text(approved)
    assert "Your answers are anonymous" not in text(approved)  # nobody answers anything here
    assert "Save the changed list" in text(manager.get(f"/a/{approve_link}"))
    assert listed(approved) == {}  # no form to change it
    assert "Cal" in text(approved)
    assert "Dan" in text(approved)
    assert "Bea" not in text(approved)
    assert "You approved this list on" in text(manager.get(f"/a/{approve_link}"))
