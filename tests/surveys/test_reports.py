"""Report data: known answers in, the right (and only the publishable) numbers out."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy import select

from scoring import Ratings, score_ratings
from surveys import reports, responses
from surveys.models import Assignment, Participant, Relationship, Response, ResponseItem
from surveys.reports import ReportData, build_report, score_cycle
from tests import factories as f

PEER_VALUES = (2, 3, 4)
SELF_VALUE, MANAGER_VALUE = 5, 4


def answer(session, assignment, value, comment=None):
    bank = responses.cycle_bank(assignment.cycle)
    comments = {bank.open_questions[0].id: comment} if comment else {}
    responses.save_draft(
        session, assignment, responses.Answers({i.id: value for i in bank.items}, comments)
    )
    responses.submit(session, assignment)


def build_cycle(session, *, peers_answering=3, comments=None, participants=1):
    """One team of four; member 1 is rated by self (5), manager (4) and peers (2, 3, 4).

    ``comments`` maps a relationship (``self``, ``manager``, ``peer``) to the comment that
    rater (every peer, numbered) writes. Returns (cycle, participant of member 1).
    """
    comments = comments or {}
    _, team = f.team(session, 4)
    cycle = f.launched(session, team[:participants], peer_min=3, peer_max=3)
    target = team[0]
    participant = session.scalar(select(Participant).where(Participant.employee_id == target.id))
    assignments = session.scalars(
        select(Assignment)
        .where(Assignment.participant_id == participant.id)
        .order_by(Assignment.id)
    ).all()
    peers = [a for a in assignments if a.relationship == Relationship.PEER]
    assert len(peers) == 3
    for a in assignments:
        if a.relationship == Relationship.SELF:
            answer(session, a, SELF_VALUE, comments.get("self"))
        elif a.relationship == Relationship.MANAGER:
            answer(session, a, MANAGER_VALUE, comments.get("manager"))
    for k, (a, value) in enumerate(zip(peers[:peers_answering], PEER_VALUES, strict=False)):
        text = comments.get("peer")
        answer(session, a, value, f"{text} #{k}" if text else None)
    session.commit()
    return cycle, participant


def _all_values(obj):
    """Every leaf value of a report (for "this never appears anywhere" checks)."""
    if dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            yield from _all_values(getattr(obj, field.name))
    elif isinstance(obj, tuple | list):
        for x in obj:
            yield from _all_values(x)
    else:
        yield obj


def _groups(report: ReportData) -> set[str]:
    found = set()
    for c in (*report.competencies, report.overall):
        found.update(g.group for g in c.groups)
        for item in c.items:
            found.update(g.group for g in item.groups)
    found.update(c.group for c in report.counts)
    return found


def test_known_answers_give_known_numbers(session):
    cycle, participant = build_cycle(session)
    report = build_report(session, participant)

    assert report.participant_name == participant.employee.name
    assert report.cycle_name == cycle.name
    assert [(c.group, c.n) for c in report.counts] == [("manager", 1), ("peer", 3), ("others", 4)]
    assert (report.invited, report.responded, report.response_rate) == (4, 4, 1.0)
    assert report.self_done
    others_mean = (MANAGER_VALUE + sum(PEER_VALUES)) / 4
    for c in report.competencies:
        assert c.self_score == SELF_VALUE
        assert {g.group: (g.mean, g.n) for g in c.groups} == {
            "manager": (MANAGER_VALUE, 1),
            "peer": (3.0, 3),
        }
        assert c.others.mean == pytest.approx(others_mean)
        assert c.others.n == 4
        assert c.ci_low <= c.adjusted <= c.ci_high
        for item in c.items:
            assert item.self_value == SELF_VALUE
            assert item.others.mean == pytest.approx(others_mean)
            assert dict(item.distribution) == {1: 0, 2: 1, 3: 1, 4: 2, 5: 0}
    assert report.overall.others.mean == pytest.approx(others_mean)
    # Self (5) is far above others (3.25) everywhere: blind spots, never hidden strengths.
    assert report.gaps
    assert {g.kind for g in report.gaps} == {"blind_spot"}
    assert "higher" in report.gaps[0].explanation
    for gap in report.gaps:  # the figure quoted is the one the tables show beside it
        competency = next(
            c
            for c in report.competencies
            if c.title == gap.title or any(i.text == gap.title for i in c.items)
        )
        if gap.level == "competency":
            adjusted = f"{competency.adjusted:.1f}"
            note = (
                ", adjusted for lenient and strict raters"
                if report.reliability.method == "adjusted"
                else ""
            )
            assert f"({adjusted}{note})" in gap.explanation
        else:
            item = next(i for i in competency.items if i.text == gap.title)
            assert f"than others rated you ({item.others.mean:.1f})." in gap.explanation
    assert len(report.top_items) == len(report.bottom_items) == 5
    assert report.reliability.n_raters == 4
    assert report.reliability.text
    assert report.how_to_read


def test_scoring_the_cycle_once_gives_the_same_report(session):
    _, participant = build_cycle(session)
    scored = score_cycle(session, participant.cycle)
    assert build_report(session, participant, cycle_scores=scored) == build_report(
        session, participant
    )


def test_suppressed_group_and_its_comments_appear_nowhere(session):
    # Two peers answer: below the threshold of 3. With the manager shown, "others" minus
    # the manager would reveal the two peers, so "others" must go too.
    _, participant = build_cycle(
        session,
        peers_answering=2,
        comments={"peer": "PEER-SECRET", "manager": "Manager says hi", "self": "My view"},
    )
    report = build_report(session, participant)

    assert "peer" not in _groups(report)
    assert all(c.others is None and c.adjusted is None for c in report.competencies)
    assert report.top_items == report.bottom_items == ()
    texts = [str(v) for v in _all_values(report)]
    assert not any("PEER-SECRET" in t for t in texts)
    labels = {label for group in report.comments for label, _ in group.comments}
    assert labels == {"Self", "Manager"}
    assert any("Peers" in note for note in report.merged_notes)


def test_comments_are_grouped_labelled_and_shuffled_reproducibly(session):
    _, participant = build_cycle(session, comments={"peer": "Peer note", "manager": "Boss note"})
    first = build_report(session, participant).comments
    assert len(first) == 1
    assert sorted(first[0].comments) == [
        ("Manager", "Boss note"),
        ("Peers", "Peer note #0"),
        ("Peers", "Peer note #1"),
        ("Peers", "Peer note #2"),
    ]
    assert build_report(session, participant).comments == first


def test_participant_without_any_response_gets_a_report(session):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team, peer_min=3, peer_max=3)
    participant = cycle.participants[0]
    report = build_report(session, participant)
    assert not report.has_feedback
    assert report.counts == ()
    assert report.responded == 0
    assert report.invited == 4
    assert report.overall is None
    assert all(c.self_score is None and c.others is None for c in report.competencies)
    assert report.gaps == report.comments == report.top_items == ()
    assert report.reliability.text


def test_participant_without_responses_in_a_cycle_with_some(session):
    cycle, _ = build_cycle(session, participants=2)
    other = next(p for p in cycle.participants if p.employee.name.endswith("2"))
    report = build_report(session, other)
    assert report.has_feedback is False
    assert report.overall is None


# -- distributions per shown group, competency figures pooled from the items -----------------


def add_response(session, participant, relationship, values):
    """A response stored straight into the tables; ``values`` maps item id -> value/None."""
    import uuid
    from datetime import date

    session.add(
        Response(
            cycle_id=participant.cycle_id,
            participant_id=participant.id,
            relationship=Relationship(relationship),
            rater_pseudonym=uuid.uuid4().hex,
            submitted_on=date.today(),
            items=[ResponseItem(item_id=i, value=v) for i, v in values.items()],
        )
    )
    session.flush()


def test_item_distributions_are_given_per_shown_group(session):
    _, participant = build_cycle(session)
    report = build_report(session, participant)
    for c in report.competencies:
        for item in c.items:
            by_group = {g.group: dict(g.distribution) for g in item.groups}
            assert by_group == {
                "manager": {1: 0, 2: 0, 3: 0, 4: 1, 5: 0},
                "peer": {1: 0, 2: 1, 3: 1, 4: 1, 5: 0},
            }
            assert item.others.distribution == item.distribution
        # Competency rows carry no distribution.
        assert all(g.distribution == () for g in c.groups)


def test_merged_groups_have_no_distribution_and_the_remainder_is_large_enough(session):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team[:1], peer_min=3, peer_max=3)
    participant = cycle.participants[0]
    items = [i.id for i in responses.cycle_bank(cycle).items]
    groups = ["self", "manager"] + ["peer"] * 4 + ["direct_report"] * 2 + ["other"]
    for k, group in enumerate(groups):
        add_response(session, participant, group, {i: 1 + (k + j) % 5 for j, i in enumerate(items)})
    session.commit()
    report = build_report(session, participant)
    for c in report.competencies:
        for item in c.items:
            shown = {g.group: g for g in item.groups}
            assert set(shown) == {"manager", "peer"}
            assert item.others.n == 8
            remainder = {
                v: n - sum(dict(g.distribution)[v] for g in shown.values())
                for v, n in item.others.distribution
            }
            # What subtraction gives is the direct reports and the other colleague
            # together: three raters, never a group below its threshold.
            assert sum(remainder.values()) == 3
            assert min(remainder.values()) >= 0


def test_competency_figures_pool_the_item_answers(session):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team[:1], peer_min=3, peer_max=3)
    participant = cycle.participants[0]
    bank = responses.cycle_bank(cycle)
    items = [i.id for i in bank.items]
    # Peers skip different numbers of items (N/A): a mean of each rater's mean would
    # weight them unevenly; the report pools the answers instead.
    add_response(session, participant, "manager", dict.fromkeys(items, 4))
    for value in (5, 4, 5):
        add_response(session, participant, "peer", dict.fromkeys(items, value))
    odd = {i: (1 if k % 2 else None) for k, i in enumerate(items)}
    first_two = {i: (2 if k < 2 else None) for k, i in enumerate(items)}
    add_response(session, participant, "peer", odd)
    add_response(session, participant, "peer", first_two)
    session.commit()
    report = build_report(session, participant)
    for c in (*report.competencies, report.overall):
        item_ids = {i.id for i in c.items} if c.items else set(items)
        details = [i for comp in report.competencies for i in comp.items if i.id in item_ids]
        for group in c.groups:
            figures = [g for i in details for g in i.groups if g.group == group.group]
            total = sum(g.mean * g.n for g in figures)
            assert group.mean == pytest.approx(total / sum(g.n for g in figures))
        assert c.others is not None
        total = sum(i.others.mean * i.others.n for i in details)
        assert c.others.mean == pytest.approx(total / sum(i.others.n for i in details))
        # One participant: nobody rated several people, so no leniency adjustment. The
        # headline is then the pooled mean too, never a mean of rater means (rule 6).
        assert report.reliability.method == "raw"
        assert c.adjusted == pytest.approx(c.others.mean)
        assert c.ci_low < c.adjusted < c.ci_high
        assert c.adjusted - c.ci_low == pytest.approx(c.ci_high - c.adjusted)
    overall_peers = next(g for g in report.overall.groups if g.group == "peer")
    assert overall_peers.n == 5  # every peer who answered anything
    # A mean of each peer's own mean would be (5 + 4 + 5 + 1 + 2) / 5 = 3.4.
    answers = [5, 4, 5] * len(items) + [1] * (len(items) // 2) + [2, 2]
    assert overall_peers.mean == pytest.approx(sum(answers) / len(answers))
    assert overall_peers.mean != pytest.approx(3.4)


@pytest.mark.parametrize("slice_size", [7, 100_000])
def test_score_cycle_scores_exactly_the_stored_answers(session, monkeypatch, slice_size):
    """score_cycle reads answers in slices, as codes; the same answers read row by row
    through the ORM and scored as a plain long table must give the same figures."""
    monkeypatch.setattr(reports, "SCORING_SLICE", slice_size)
    cycle = f.generated_cycle(session, 3, size=9, na=0.2, peer_min=4, peer_max=6)
    scored = score_cycle(session, cycle)
    known = scored.bank.item_competency
    rows = f.stored_answers(session, cycle)
    raters, ratees, items, rels, values = zip(*rows, strict=True)
    reference = score_ratings(
        Ratings.from_arrays(
            raters,
            ratees,
            items,
            [r.value for r in rels],
            [math.nan if v is None else v for v in values],
            item_competency=known,
            scale=(scored.bank.scale.min, scored.bank.scale.max),
        )
    )
    assert scored.scores.method == reference.method == "adjusted"
    assert sorted(scored.rows) == sorted(int(p) for p in reference.ratee_ids)
    assert set(scored.scores.competency_ids) == set(reference.competency_ids)
    for pid, row in scored.rows.items():
        ref_row = list(reference.ratee_ids).index(pid)
        for c, competency in enumerate(scored.scores.competency_ids):
            ref_c = reference.competency_ids.index(competency)
            for name in ("score", "se", "ci_low", "ci_high"):
                got = getattr(scored.scores, name)[row, c]
                want = getattr(reference, name)[ref_row, ref_c]
                assert got == pytest.approx(want, rel=1e-9, nan_ok=True), (pid, competency, name)


def test_the_model_headlines_a_competency_only_where_every_item_shows_all_others(session):
    """The adjusted score is fitted on every answer. Where "All others" is hidden on one
    of a competency's items, the headline is the pooled mean of the items shown with a
    plain interval, and no competency blind spot or hidden strength is flagged."""
    cycle = f.generated_cycle(session, 0, size=10, na=0.4)
    scored = score_cycle(session, cycle)
    assert scored.scores is not None
    assert scored.scores.method == "adjusted"
    partial = whole = 0
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        row = scored.rows.get(participant.id)
        for c in report.competencies:
            if c.others is None:
                continue
            k = scored.scores.competency_ids.index(c.id)
            if all(i.others is not None for i in c.items):
                whole += 1
                assert c.adjusted == pytest.approx(scored.scores.score[row, k])
                continue
            partial += 1
            assert c.adjusted == c.others.mean
            assert c.adjusted != pytest.approx(scored.scores.score[row, k])
            if c.ci_low is not None:
                assert c.ci_low < c.adjusted < c.ci_high
            assert not any(g.level == "competency" and g.title == c.title for g in report.gaps)
    assert partial  # the sample reaches both cases
    assert whole


def test_a_partial_competency_is_marked_in_the_report(session, app):
    """The headline that is not the model's carries a mark explained under the table."""
    from webapp.reports.render import report_html

    cycle = f.generated_cycle(session, 0, size=10, na=0.4)
    scored = score_cycle(session, cycle)
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        partial = [c for c in report.competencies if c.partial and c.others]
        whole = [c for c in report.competencies if not c.partial and c.others]
        if partial and whole:
            break
    else:
        pytest.fail("no report with both kinds of competency")
    with app.test_request_context():
        html = report_html(report)
    assert f"{partial[0].adjusted:.1f}*</strong>" in html
    assert f"{whole[0].adjusted:.1f}</strong>" in html
    assert "* Not adjusted: too few colleagues answered one of its statements" in html
    assert "plain average (not adjusted)" in html  # the chart's text alternative too


def test_a_competency_figure_says_when_it_leaves_out_statements_a_group_answered(session, app):
    """A group's competency figure pools only the statements that show the group; it is
    marked partial exactly when the group answered a statement that hides it, and the
    report marks that figure with † and says why."""
    from webapp.reports.render import report_html

    cycle = f.generated_cycle(session, 0, size=10, na=0.4)
    scored = score_cycle(session, cycle)
    answered: dict[tuple[int, str], set[str]] = {}
    for _, participant_id, item_id, relationship, value in f.stored_answers(session, cycle):
        if value is not None and relationship != Relationship.SELF:
            for group in (relationship.value, "others"):
                answered.setdefault((participant_id, item_id), set()).add(group)
    seen = {True: 0, False: 0}
    marked = None
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        for c in report.competencies:
            figures = [*c.groups, *([c.others] if c.others else [])]
            for g in figures:
                left_out = any(
                    g.group in answered.get((participant.id, item.id), set())
                    and g.group not in {x.group for x in (*item.groups, item.others) if x}
                    for item in c.items
                )
                assert g.partial == left_out, (participant.id, c.id, g.group)
                seen[left_out] += 1
            if c.leaves_out_items and marked is None:
                marked = report, c
    assert seen[True]  # the sample reaches both cases
    assert seen[False]
    assert marked is not None
    report, c = marked
    with app.test_request_context():
        html = report_html(report)
    figure = next(g for g in (*c.groups, c.others) if g and g.partial)
    assert f"{figure.mean:.1f}†" in html
    assert "† Leaves out statements where this group's answers can't be shown" in html
    assert "† Leaves out the statements below where that group's answers can't be shown" in html
    # Where the headline is the plain mean, the detail does not call it adjusted.
    summaries = [s.split("</p>", 1)[0] for s in html.split('<p class="summary">')[1:]]
    assert len(summaries) == len(report.competencies)
    for summary, competency in zip(summaries, report.competencies, strict=True):
        assert ("Adjusted" in summary) == (competency.others is not None and not competency.partial)


def test_intervals_are_shown_cut_at_the_ends_of_the_scale(session, app):
    """A t interval around a mean near the top of the scale runs past it; the report
    (table and reliability note) shows it cut at the scale's ends."""
    import re

    from webapp.reports.render import report_html

    cycle = f.generated_cycle(session, 1, size=10, na=0.4)
    scored = score_cycle(session, cycle)
    past = 0
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        rows = [c for c in (*report.competencies, report.overall) if c and c.ci_low is not None]
        past += sum(c.ci_low < report.scale_min or c.ci_high > report.scale_max for c in rows)
        with app.test_request_context():
            html = report_html(report)
        shown = re.findall(r'<span class="ci">\(([\d.]+)–([\d.]+)\)</span>', html)
        assert len(shown) == len(rows)
        for low, high in shown:
            assert report.scale_min <= float(low) <= float(high) <= report.scale_max
        for line in report.reliability.text:
            for low, high in re.findall(r"runs from ([\d.]+) to ([\d.]+)", line):
                assert report.scale_min <= float(low) <= float(high) <= report.scale_max
    assert past  # the sample reaches intervals past the scale


def test_each_note_says_where_a_group_not_counted_on_its_own_shows(session):
    """A group the response counts fold away is never shown on its own on any statement
    either; the note says whether it is counted in "All others" or not shown at all."""
    from surveys.reports import GROUP_LABELS
    from tests.surveys.test_report_leaks import folded_manager_report

    seen = set()
    cycle = f.generated_cycle(session, 3, size=10, na=0.4)
    scored = score_cycle(session, cycle)
    reports = [build_report(session, p, cycle_scores=scored) for p in cycle.participants]
    for report in [*reports, folded_manager_report(session)]:
        items = [i for c in report.competencies for i in c.items]
        on_items = {g.group for i in items for g in i.groups}
        others_anywhere = any(i.others for i in items)
        for note in report.merged_notes:
            label, _, rest = note.partition(": ")
            group = next((g for g, name in GROUP_LABELS.items() if name == label), None)
            if group in (None, "others"):
                continue
            assert group not in on_items
            if rest.startswith("counted in “All others” only"):
                assert others_anywhere
                seen.add("others")
            else:
                assert rest.startswith("not shown")
                assert not others_anywhere
                seen.add("none")
    assert seen == {"others", "none"}  # the samples reach both notes
