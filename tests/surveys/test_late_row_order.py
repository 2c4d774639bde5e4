"""Released responses carry nothing that tells whose they are: not their row order, not
their day; and a late response accepted after release is shuffled in among them.

A late response must not be its participant's newest row.

Rows are stored in insertion order (SQLite's rowid, PostgreSQL's ctid), and HR knows
whose late answers they typed in: the newest row would be that rater's answers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select, text, update

from surveys import cycles, releases
from surveys.models import Relationship, Response
from surveys.releases import accept_late_response, release_cycle
from surveys.status import responses_by_day
from tests import factories as f
from tests.surveys.test_releases import all_items, late_team


class Reversing:
    """Stands in for ``secrets.SystemRandom``: a shuffle that reverses, so the test knows
    where every row must land."""

    def shuffle(self, rows: list) -> None:
        rows.reverse()


def stored_order(session, cycle_id: int) -> list[str]:
    physical = "ctid" if session.get_bind().dialect.name == "postgresql" else "rowid"
    return list(
        session.scalars(
            text(f"SELECT id FROM responses WHERE cycle_id = :c ORDER BY {physical}"),
            {"c": cycle_id},
        )
    )


def test_a_late_response_is_shuffled_in_among_the_released_ones(session, monkeypatch):
    cycle, participant, late = late_team(session, peers=4, answering=3)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    before = stored_order(session, cycle.id)

    monkeypatch.setattr(releases.secrets, "SystemRandom", Reversing)
    late_id = accept_late_response(session, late[0], all_items(participant, 1))
    session.commit()

    after = stored_order(session, cycle.id)
    assert len(after) == len(before) + 1
    assert not set(before) & set(after), "every response was written again under a new id"
    assert after[0] == late_id, "inserted last, the reversing shuffle put it first"
    stored = session.get(Response, late_id)
    assert {i.value for i in stored.items} == {1}
    assert stored.participant_id == participant.id
    assert len(session.scalars(select(Response.id)).all()) == len(after)


def _spread_days(session, cycle) -> None:
    """Give the submitted responses different days, as a real cycle's would have."""
    ids = sorted(session.scalars(select(Response.id).where(Response.cycle_id == cycle.id)))
    for n, rid in enumerate(ids):
        session.execute(
            update(Response).where(Response.id == rid).values(submitted_on=date(2026, 3, 1 + n))
        )
    cycle.launched_at = datetime(2026, 3, 1, 9, tzinfo=UTC)
    session.flush()


def test_release_replaces_each_responses_day_by_the_close_date_and_keeps_the_chart(session):
    """HR watched who was still waiting each day, so a response's day narrows down whose
    it is; after release no row keeps its own day, yet HR's progress chart is unchanged."""
    cycle, participant, late = late_team(session, peers=4, answering=3)
    _spread_days(session, cycle)
    cycles.close_cycle(session, cycle)
    chart = responses_by_day(session, cycle)
    assert len({d.responses for d in chart}) > 1, "the days differ before release"

    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    days = set(session.scalars(select(Response.submitted_on).where(Response.cycle_id == cycle.id)))
    assert days == {cycle.closed_at.date()}
    assert responses_by_day(session, cycle) == chart

    accept_late_response(session, late[0], all_items(participant, 1))
    session.commit()
    days = set(session.scalars(select(Response.submitted_on).where(Response.cycle_id == cycle.id)))
    assert days == {cycle.closed_at.date()}, "the late row has the same day as every other"
    after = responses_by_day(session, cycle)
    assert after[-1].day == cycle.closed_at.date()
    assert after[-1].responses == chart[-1].responses + 1
    assert [d.responses for d in after[:-1]] == [d.responses for d in chart[:-1]]


def test_a_late_response_differs_from_the_others_only_in_its_answers(session):
    cycle, participant, late = late_team(session, peers=4, answering=3)
    _spread_days(session, cycle)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    late_id = accept_late_response(session, late[0], all_items(participant, 3))
    session.commit()

    def shape(row):
        return (row.cycle_id, row.participant_id, row.relationship, row.submitted_on)

    peers = session.scalars(
        select(Response).where(
            Response.participant_id == participant.id, Response.relationship == Relationship.PEER
        )
    ).all()
    mine = session.get(Response, late_id)
    assert len(peers) == 4
    assert all(shape(row) == shape(mine) for row in peers)
    assert len({row.rater_pseudonym for row in peers}) == 4
