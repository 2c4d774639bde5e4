"""HR's view of a cycle: extending the deadline, who to chase, responses per day, and
HR's override of nominations (issue #5 §5, §6)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from surveys import cycles, nominations
from surveys.errors import DomainError
from surveys.models import (
    Assignment,
    AssignmentStatus,
    CycleState,
    Nomination,
    NominationStatus,
    Response,
)
from surveys.status import responses_by_day, waiting_raters
from tests import factories as f
from tests.surveys.test_reports import build_cycle

TODAY = date(2026, 3, 10)


# -- extend_deadline ------------------------------------------------------------------------


@pytest.fixture
def open_cycle(session):
    _, people = f.team(session, 4)
    cycle = f.launched(session, people)
    cycle.close_date = date(2026, 3, 20)  # launched before it (these tests' TODAY)
    session.commit()
    return cycle


def test_extend_deadline_moves_the_close_date_later(session, open_cycle):
    previous = cycles.extend_deadline(session, open_cycle, date(2026, 3, 27), today=TODAY)
    assert previous == date(2026, 3, 20)
    assert open_cycle.close_date == date(2026, 3, 27)


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (date(2026, 3, 20), "later than the current one"),
        (date(2026, 3, 15), "later than the current one"),
        (TODAY, "after today"),
        (date(2026, 3, 1), "after today"),
        (date(9999, 12, 31), "9999-12-31 is more than a year away; check the year"),
        (date(2027, 3, 12), "more than a year away"),
    ],
)
def test_extend_deadline_refuses_a_date_not_later(session, open_cycle, new, message):
    with pytest.raises(DomainError, match=message):
        cycles.extend_deadline(session, open_cycle, new, today=TODAY)
    assert open_cycle.close_date == date(2026, 3, 20)


def test_extend_deadline_sets_a_first_close_date(session):
    _, people = f.team(session, 3)
    cycle = f.launched(session, people)
    assert cycle.close_date is None
    assert cycles.extend_deadline(session, cycle, TODAY + timedelta(days=1), today=TODAY) is None
    assert cycle.close_date == TODAY + timedelta(days=1)


@pytest.mark.parametrize("state", [CycleState.DRAFT, CycleState.CLOSED, CycleState.RELEASED])
def test_extend_deadline_only_while_raters_can_answer(session, open_cycle, state):
    open_cycle.state = state
    with pytest.raises(DomainError, match=f"is {state.value}"):
        cycles.extend_deadline(session, open_cycle, date(2026, 4, 1), today=TODAY)


# -- who has not answered yet ---------------------------------------------------------------


def test_waiting_raters_names_the_unanswered_raters_per_participant(session):
    cycle, participant = build_cycle(session, peers_answering=1)
    # One of the two waiting peers has started (a draft): still waiting; declined is not.
    peers = session.scalars(
        select(Assignment)
        .where(Assignment.participant_id == participant.id, Assignment.status != "submitted")
        .order_by(Assignment.id)
    ).all()
    assert len(peers) == 2
    peers[0].status = AssignmentStatus.IN_PROGRESS
    session.flush()
    (entry,) = waiting_raters(session, cycle)
    assert entry.name == participant.employee.name
    assert sorted(r.name for r in entry.raters) == sorted(a.rater.name for a in peers)
    assert {r.relationship for r in entry.raters} == {"peer"}
    # Names and roles only: nothing about answers or times can be in it.
    fields = {x.name for x in dataclasses.fields(entry.raters[0])}
    assert fields == {"name", "relationship"}

    peers[1].status = AssignmentStatus.DECLINED
    session.flush()
    (entry,) = waiting_raters(session, cycle)
    assert [r.name for r in entry.raters] == [peers[0].rater.name]


def test_waiting_raters_leaves_out_participants_with_everyone_answered(session):
    cycle, _ = build_cycle(session, peers_answering=3)
    assert waiting_raters(session, cycle) == []


# -- responses per day ----------------------------------------------------------------------


def test_responses_by_day_counts_cumulatively_and_fills_quiet_days(session):
    cycle, _ = build_cycle(session, peers_answering=3)  # 5 responses
    launch = datetime(2026, 3, 1, 9, tzinfo=UTC)
    cycle.launched_at = launch
    ids = session.scalars(select(Response.id).order_by(Response.id)).all()
    days = [
        date(2026, 3, 1),
        date(2026, 3, 1),
        date(2026, 3, 3),
        date(2026, 3, 4),
        date(2026, 3, 4),
    ]
    for rid, day in zip(ids, days, strict=True):
        session.execute(update(Response).where(Response.id == rid).values(submitted_on=day))
    session.flush()

    series = responses_by_day(session, cycle, today=date(2026, 3, 5))
    assert [(d.day.day, d.responses, d.cumulative) for d in series] == [
        (1, 2, 2),
        (2, 0, 2),
        (3, 1, 3),
        (4, 2, 5),
        (5, 0, 5),
    ]


def test_responses_by_day_is_empty_before_launch(session):
    _, people = f.team(session, 3)
    cycle = f.cycle(session, people)
    assert responses_by_day(session, cycle) == []


def test_responses_by_day_stops_at_the_close(session):
    cycle, _ = build_cycle(session)
    cycles.close_cycle(session, cycle)
    series = responses_by_day(session, cycle, today=date.today() + timedelta(days=30))
    assert series[-1].day == cycle.closed_at.date()
    assert series[-1].cumulative == 5


# -- nominations: HR's overview and override ------------------------------------------------


@pytest.fixture
def nominating(session):
    """Ann (manager Bo) nominates among Bea, Cal, Dan; a participant-mode cycle."""
    boss = f.employee(session, "B", "Bo Boss")
    ann = f.employee(session, "A", "Ann Lead", boss)
    peers = [
        f.employee(session, k, n, boss) for k, n in (("P1", "Bea"), ("P2", "Cal"), ("P3", "Dan"))
    ]
    cycle = f.cycle(session, [ann], nomination_mode="participant", peer_min=2, peer_max=3)
    cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
    session.commit()
    return cycle, cycle.participants[0], peers


def test_overview_shows_each_list_and_its_state(session, nominating):
    cycle, participant, peers = nominating
    (entry,) = nominations.nominations_overview(session, cycle)
    assert (entry.name, entry.manager, entry.state, entry.peers) == (
        "Ann Lead",
        "Bo Boss",
        "not submitted",
        [],
    )
    nominations.submit_nominations(session, participant, [peers[0].id, peers[1].id], base_url="x")
    (entry,) = nominations.nominations_overview(session, cycle)
    assert entry.state == "awaiting approval"
    assert [(p.name, p.status, p.source) for p in entry.peers] == [
        ("Bea", "proposed", "participant"),
        ("Cal", "proposed", "participant"),
    ]


def test_hr_override_sets_and_approves_the_list(session, nominating):
    cycle, participant, peers = nominating
    nominations.submit_nominations(session, participant, [peers[0].id, peers[1].id], base_url="x")
    nominations.override_nominations(session, participant, [peers[1].id, peers[2].id])
    found = {n.nominee.name: (n.status, n.source) for n in participant.nominations}
    assert found == {
        "Bea": (NominationStatus.REJECTED, "participant"),
        "Cal": (NominationStatus.APPROVED, "participant"),
        "Dan": (NominationStatus.APPROVED, "hr"),
    }
    assert participant.nominations_approved_at is not None
    (entry,) = nominations.nominations_overview(session, cycle)
    assert entry.state == "approved"


def test_hr_override_keeps_the_cycle_rules(session, nominating):
    _, participant, peers = nominating
    with pytest.raises(DomainError, match="between 2 and 3"):
        nominations.override_nominations(session, participant, [peers[0].id])
    with pytest.raises(DomainError, match="manager"):
        nominations.override_nominations(
            session, participant, [peers[0].id, participant.employee.manager_id]
        )
    assert participant.nominations == []


def test_hr_approves_the_proposed_list_for_the_manager(session, nominating):
    _, participant, peers = nominating
    with pytest.raises(DomainError, match="not submitted"):
        nominations.approve_on_behalf(session, participant)
    nominations.submit_nominations(session, participant, [peers[0].id, peers[2].id], base_url="x")
    assert nominations.approve_on_behalf(session, participant) == 2
    rows = session.scalars(select(Nomination).order_by(Nomination.id)).all()
    assert [(n.nominee.name, n.status, n.source) for n in rows] == [
        ("Bea", NominationStatus.APPROVED, "participant"),
        ("Dan", NominationStatus.APPROVED, "participant"),
    ]
    with pytest.raises(DomainError, match="already approved"):
        nominations.approve_on_behalf(session, participant)
