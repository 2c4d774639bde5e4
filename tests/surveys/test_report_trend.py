"""Trend: change per competency since the same person's earlier released report."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from sqlalchemy import select

from surveys import cycles
from surveys.banks import get_bank
from surveys.models import Assignment, Relationship, Response
from surveys.releases import latest_version, release_cycle
from surveys.reports import CompetencyReport, _trend_row, build_report, report_from_json
from tests import factories as f
from tests.surveys.test_reports import answer


def run_cycle(session, team, name, *, peers, bank="pulse", release=True, created_at=None):
    """Member 1 of ``team`` rated by self (3), manager (3) and peers with ``peers`` values."""
    cycle = cycles.create_cycle(
        session,
        name=name,
        bank=get_bank(bank),
        participants=team[:1],
        settings={"peer_min": len(peers), "peer_max": len(peers)},
    )
    if created_at is not None:
        cycle.created_at = created_at
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    participant = cycle.participants[0]
    assignments = sorted(
        session.scalars(select(Assignment).where(Assignment.participant_id == participant.id)),
        key=lambda a: a.id,
    )
    peer_assignments = [a for a in assignments if a.relationship == Relationship.PEER]
    for a in assignments:
        if a.relationship != Relationship.PEER:
            answer(session, a, 3)
    for a, value in zip(peer_assignments, peers, strict=True):
        answer(session, a, value)
    session.commit()
    if release:
        cycles.close_cycle(session, cycle)
        release_cycle(session, cycle, base_url=f.BASE_URL)
        session.commit()
    return cycle, participant


@pytest.fixture
def two_cycles(session):
    _, team = f.team(session, 4)
    first, p1 = run_cycle(session, team, "Spring 2026", peers=(2, 2, 2))
    second, p2 = run_cycle(
        session,
        team,
        "Autumn 2026",
        peers=(5, 5, 5),
        release=False,
        created_at=first.created_at + timedelta(days=180),
    )
    return team, (first, p1), (second, p2)


def test_trend_compares_with_the_earlier_frozen_report(session, two_cycles):
    _, (first, p1), (_, p2) = two_cycles
    earlier = report_from_json(latest_version(session, p1).data)
    report = build_report(session, p2)

    trend = report.trend
    assert trend is not None
    assert trend.earlier_cycle == "Spring 2026"
    assert trend.earlier_released_on == first.released_at.date().isoformat()
    rows = {r.id: r for r in trend.rows}
    assert set(rows) == {c.id for c in report.competencies} | {"ALL"}
    for now in report.competencies:
        then = next(c for c in earlier.competencies if c.id == now.id)
        row = rows[now.id]
        assert row.before == then.adjusted
        assert row.after == now.adjusted
        assert row.change == pytest.approx(now.adjusted - then.adjusted)
        half = math.sqrt(
            ((then.ci_high - then.ci_low) / 2) ** 2 + ((now.ci_high - now.ci_low) / 2) ** 2
        )
        assert row.margin == pytest.approx(half)
        # Peers went from 2 to 5 on every item: a rise far beyond the noise.
        assert row.change > 0
        assert (row.direction, row.label) == ("up", "Clear rise")
    assert trend.missing == ()


def test_trend_reads_the_frozen_version_not_the_current_answers(session, two_cycles):
    _, (_, p1), (_, p2) = two_cycles
    before = build_report(session, p2).trend
    # Rewrite every answer of the released cycle: its frozen report must win.
    for response in session.scalars(select(Response).where(Response.participant_id == p1.id)):
        for item in response.items:
            item.value = 5
    session.commit()
    assert build_report(session, p2).trend == before


def test_no_trend_without_an_earlier_released_cycle_of_the_same_bank(session):
    _, team = f.team(session, 4)
    first, _ = run_cycle(session, team, "Spring", peers=(2, 2, 2), release=False)
    _, p2 = run_cycle(
        session,
        team,
        "Autumn",
        peers=(5, 5, 5),
        release=False,
        created_at=first.created_at + timedelta(days=1),
    )
    assert build_report(session, p2).trend is None  # the earlier cycle is not released

    _, other_team = f.team(session, 4, prefix="U")
    first, _ = run_cycle(session, other_team, "Spring", peers=(2, 2, 2), bank="leadership")
    _, p3 = run_cycle(
        session,
        other_team,
        "Autumn",
        peers=(5, 5, 5),
        release=False,
        created_at=first.created_at + timedelta(days=1),
    )
    assert build_report(session, p3).trend is None  # another bank


def test_a_later_cycle_is_never_the_earlier_one(session, two_cycles):
    _, (_, p1), _ = two_cycles
    assert build_report(session, p1).trend is None


def test_competencies_without_scores_in_one_cycle_are_listed_not_compared(session):
    _, team = f.team(session, 4)
    first, _ = run_cycle(session, team, "Spring", peers=(2, 2, 2))
    # Two peers: below the threshold, and "others" is suppressed with them.
    _, p2 = run_cycle(
        session,
        team,
        "Autumn",
        peers=(5, 5),
        release=False,
        created_at=first.created_at + timedelta(days=1),
    )
    report = build_report(session, p2)
    assert report.trend.rows == ()
    assert set(report.trend.missing) == {c.title for c in report.competencies} | {"All items"}


def _competency(adjusted, low, high):
    return CompetencyReport("c", "C", "", None, (), None, adjusted, low, high, ())


@pytest.mark.parametrize(
    ("then", "now", "direction", "margin"),
    [
        ((3.0, 2.7, 3.3), (3.45, 3.05, 3.85), "same", 0.5),  # change 0.45 < margin
        ((3.0, 2.7, 3.3), (3.6, 3.2, 4.0), "up", 0.5),
        ((3.0, 2.7, 3.3), (2.4, 2.0, 2.8), "down", 0.5),
        ((3.0, 2.7, 3.3), (3.2, 2.8, 3.6), "same", 0.5),
    ],
)
def test_trend_row_rule(then, now, direction, margin):
    row = _trend_row(_competency(*then), _competency(*now))
    assert row.margin == pytest.approx(margin)  # sqrt(0.3² + 0.4²)
    assert row.direction == direction
    assert (
        row.label == {"up": "Clear rise", "down": "Clear drop", "same": "Within noise"}[direction]
    )
    assert row.change == pytest.approx(now[0] - then[0])


def test_trend_row_needs_both_intervals():
    assert _trend_row(_competency(3.0, None, None), _competency(3.5, 3.1, 3.9)) is None
    assert _trend_row(_competency(None, None, None), _competency(3.5, 3.1, 3.9)) is None
