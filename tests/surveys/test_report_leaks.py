"""Report figures that once told more than the anonymity plan allows (found in review):
a plain score's margin gave away how each rater scored across items, and a group the
response counts fold into "All others" showed on its own where it skipped."""

from __future__ import annotations

from sqlalchemy import select

from surveys import cycles, responses
from surveys.anonymity import COMPLEMENTARY, NOT_SHOWN_SEPARATELY
from surveys.models import Assignment, Participant, Relationship
from surveys.reports import build_report
from tests import factories as f


def _assignments(session, participant):
    return session.scalars(
        select(Assignment)
        .where(Assignment.participant_id == participant.id)
        .order_by(Assignment.id)
    ).all()


def _one_participant(session, prefix="T", include_self=False, **settings):
    """One participant with a manager and three peers."""
    _, team = f.team(session, 4, prefix=prefix)
    cycle = f.launched(
        session, team[:1], peer_min=3, peer_max=3, include_self=include_self, **settings
    )
    participant = session.scalar(select(Participant).where(Participant.employee_id == team[0].id))
    return cycle, participant


def _submit(session, assignment, ratings, comments=None):
    responses.save_draft(session, assignment, responses.Answers(ratings, comments or {}))
    responses.submit(session, assignment)


def _peers_report(session, prefix, value_of):
    """The report when peer k rates item j ``value_of(k, j)`` and the participant gives
    themselves 5s (the manager answers nothing)."""
    cycle, participant = _one_participant(session, prefix, include_self=True, show_manager=True)
    bank = responses.cycle_bank(cycle)
    mine = _assignments(session, participant)
    peers = [a for a in mine if a.relationship == Relationship.PEER]
    for k, assignment in enumerate(peers):
        _submit(session, assignment, {i.id: value_of(k, j) for j, i in enumerate(bank.items)})
    (own,) = [a for a in mine if a.relationship == Relationship.SELF]
    _submit(session, own, {i.id: 5 for i in bank.items})
    cycles.close_cycle(session, cycle)
    session.commit()
    return build_report(session, participant)


def test_a_plain_score_does_not_tell_one_harsh_rater_from_lows_spread_over_raters(session):
    # Every statement gets one 1 and two 5s from the three peers: in A one peer gave all
    # the 1s, in B they are spread. Everything published per statement is the same, so
    # nothing else may differ either (the scores are plain: one participant, no model):
    # not the intervals, and not the blind spots judged against them (from the spread of
    # rater means, B's ±0 made every competency a blind spot, A's none).
    a = _peers_report(session, "A", lambda k, j: 1 if k == 0 else 5)
    b = _peers_report(session, "B", lambda k, j: 1 if k == j % 3 else 5)
    assert a.reliability.method == b.reliability.method != "adjusted"
    items_a = [(i.others.mean, i.distribution) for c in a.competencies for i in c.items]
    assert items_a == [(i.others.mean, i.distribution) for c in b.competencies for i in c.items]

    def figures(report):
        rows = [*report.competencies, report.overall]
        return [(c.adjusted, c.ci_low, c.ci_high) for c in rows], report.reliability.text

    assert figures(a) == figures(b)
    assert a.gaps == b.gaps
    low, high = a.overall.ci_low, a.overall.ci_high
    assert low < a.overall.adjusted < high  # the answers' spread: a real interval, not ±0


def folded_manager_report(session, prefix="M"):
    """The report of a participant whose manager (not shown on their own in this cycle)
    and three peers answered; the manager could not judge the first statement."""
    cycle, participant = _one_participant(session, prefix, show_manager=False)
    bank = responses.cycle_bank(cycle)
    for assignment in _assignments(session, participant):
        ratings = {i.id: 4 for i in bank.items}
        if assignment.relationship == Relationship.MANAGER:
            ratings[bank.items[0].id] = responses.NA
        _submit(session, assignment, ratings)
    cycles.close_cycle(session, cycle)
    session.commit()
    return build_report(session, participant)


def test_a_folded_managers_not_able_to_judge_is_not_published(session):
    report = folded_manager_report(session)
    skipped = report.competencies[0].items[0].id
    # Peers are hidden in the counts (showing them beside All others would show the manager).
    assert {c.group for c in report.counts} == {"others"}
    items = [i for c in report.competencies for i in c.items]
    # ...and so on every statement: where the manager skipped, Peers 3 beside All others 3
    # would say the manager was the one who could not judge it.
    assert all(i.groups == () for i in items)
    assert {i.id: i.others.n for i in items if i.others}[skipped] == 3
    assert report.merged_notes == (
        f"Manager: counted in “All others” only ({NOT_SHOWN_SEPARATELY})",
        f"Peers: counted in “All others” only ({COMPLEMENTARY})",
    )


def test_a_folded_manager_writing_nothing_is_not_published(session):
    cycle, participant = _one_participant(session, show_manager=False)
    bank = responses.cycle_bank(cycle)
    question = bank.open_questions[0].id
    for k, assignment in enumerate(_assignments(session, participant)):
        is_manager = assignment.relationship == Relationship.MANAGER
        _submit(
            session,
            assignment,
            {i.id: 4 for i in bank.items},
            {} if is_manager else {question: f"comment {k}"},
        )
    cycles.close_cycle(session, cycle)
    session.commit()
    report = build_report(session, participant)
    (group,) = report.comments
    # "Peers" ×3 would say the manager wrote nothing.
    assert [label for label, _ in group.comments] == ["All others"] * 3
