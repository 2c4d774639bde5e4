"""A late response accepted after release must not be its participant's newest row.

Rows are stored in insertion order (SQLite's rowid, PostgreSQL's ctid), and HR knows
whose late answers they typed in: the newest row would be that rater's answers.
"""

from __future__ import annotations

from sqlalchemy import select, text

from surveys import cycles, releases
from surveys.models import Response
from surveys.releases import accept_late_response, release_cycle
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
