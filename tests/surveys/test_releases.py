"""Release and re-release: reports frozen as versions, no rater revealed by comparison."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date

import numpy as np
import pytest
from sqlalchemy import func, select

from surveys import cycles, exports, releases, responses
from surveys.assignments import add_rater
from surveys.errors import DomainError, IllegalTransition
from surveys.models import (
    DEFAULT_THRESHOLDS,
    AccessToken,
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    OutboxMessage,
    Participant,
    Relationship,
    ReportVersion,
    Response,
    ResponseItem,
    TokenPurpose,
)
from surveys.releases import (
    accept_late_response,
    latest_version,
    release_cycle,
    rerelease_cycle,
    rerelease_participant,
    rerelease_refusal,
)
from surveys.reports import (
    build_report,
    report_from_json,
    report_scores_from_json,
    report_to_json,
)
from surveys.responses import Answers, cycle_bank
from surveys.tokens import hash_token, resolve_token
from tests import factories as f
from tests.surveys.test_reports import build_cycle


def released(session, participants=1):
    """build_cycle's cycle (self 5, manager 4, peers 2, 3, 4), closed and released."""
    cycle, participant = build_cycle(session, participants=participants)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    return cycle, participant


def late_response(session, participant, relationship, value):
    """A response HR accepted after release (stored like any other, under a pseudonym)."""
    bank = cycle_bank(participant.cycle)
    session.add(
        Response(
            cycle_id=participant.cycle_id,
            participant_id=participant.id,
            relationship=Relationship(relationship),
            rater_pseudonym=uuid.uuid4().hex,
            submitted_on=date.today(),
            items=[ResponseItem(item_id=item.id, value=value) for item in bank.items],
        )
    )
    session.flush()


def test_release_freezes_every_report_and_destroys_the_pseudonym_key(session):
    cycle, _ = build_cycle(session, participants=3)
    cycles.close_cycle(session, cycle)
    expected = {p.id: build_report(session, p) for p in cycle.participants}
    assert cycle.pseudonym_key is not None

    summary = release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    session.expire_all()

    assert (summary.reports, summary.emails) == (3, 3)
    cycle = session.get(Cycle, cycle.id)
    assert cycle.state == CycleState.RELEASED
    assert cycle.released_at is not None
    assert cycle.pseudonym_key is None
    for participant in cycle.participants:
        versions = session.scalars(
            select(ReportVersion).where(ReportVersion.participant_id == participant.id)
        ).all()
        assert [v.version for v in versions] == [1]
        # Read back from the database, the frozen report is exactly what was built,
        # stamped with its version and release date.
        frozen = report_from_json(versions[0].data)
        assert frozen == dataclasses.replace(
            expected[participant.id],
            version=1,
            released_on=cycle.released_at.date().isoformat(),
        )
        assert len(versions[0].content_hash) == 64
    first = latest_version(session, cycle.participants[0])
    assert first.response_counts == {
        "self": 1,
        "manager": 1,
        "peer": 3,
        "direct_report": 0,
        "other": 0,
    }


@pytest.mark.parametrize("per_query", [1, 500])
def test_latest_versions_are_each_participants_newest(session, monkeypatch, per_query):
    monkeypatch.setattr(releases, "IDS_PER_QUERY", per_query)
    cycle, participant = released(session, participants=3)
    first = latest_version(session, participant)
    session.add(
        ReportVersion(
            participant_id=participant.id,
            version=2,
            data=first.data,
            content_hash=first.content_hash,
            response_counts=first.response_counts,
        )
    )
    session.flush()
    found = releases.latest_versions(session, cycle.participants)
    assert found == {p.id: latest_version(session, p) for p in cycle.participants}
    assert found[participant.id].version == 2
    assert {v.version for pid, v in found.items() if pid != participant.id} == {1}


def test_report_json_round_trip_is_exact(session):
    _, participant = build_cycle(session)
    report = build_report(session, participant)
    data = json.loads(json.dumps(report_to_json(report), allow_nan=False))
    assert report_from_json(data) == report


def test_a_frozen_reports_scores_read_alone_are_its_scores(session):
    _, participant = released(session)
    full = report_from_json(latest_version(session, participant).data)
    scores = report_scores_from_json(latest_version(session, participant).data)
    assert full.competencies[0].items  # there is detail to leave out
    assert scores == dataclasses.replace(
        full,
        competencies=tuple(dataclasses.replace(c, items=()) for c in full.competencies),
        overall=dataclasses.replace(full.overall, items=()),
        top_items=(),
        bottom_items=(),
        gaps=(),
        comments=(),
        trend=None,
    )


def test_a_report_frozen_before_a_field_was_added_still_reads(session):
    _, participant = build_cycle(session)
    report = build_report(session, participant)
    data = json.loads(json.dumps(report_to_json(report)))
    for field in ("trend", "version", "released_on"):  # added with defaults over time
        del data[field]
    old = report_from_json(data)
    assert (old.trend, old.version, old.released_on) == (None, None, None)
    assert dataclasses.replace(old, trend=report.trend) == dataclasses.replace(
        report, version=None, released_on=None
    )
    del data["participant_name"]  # a field without a default is never optional
    with pytest.raises(KeyError, match="participant_name"):
        report_from_json(data)


def test_report_json_takes_numpy_scalars_and_refuses_what_json_cannot_hold(session):
    _, participant = build_cycle(session)
    report = build_report(session, participant)
    as_numpy = dataclasses.replace(
        report, responded=np.int64(report.responded), confidence=np.float32(0.5)
    )
    data = report_to_json(as_numpy)
    assert (type(data["responded"]), data["responded"]) == (int, report.responded)
    assert (type(data["confidence"]), data["confidence"]) == (float, 0.5)
    for bad in (float("nan"), np.float64("inf")):
        with pytest.raises(ValueError, match="no JSON form"):
            report_to_json(dataclasses.replace(report, confidence=bad))
    with pytest.raises(TypeError, match="cannot freeze dict"):
        report_to_json(dataclasses.replace(report, confidence={}))


def test_a_released_report_does_not_change_when_the_data_does(session):
    _, participant = released(session)
    before = latest_version(session, participant).data
    for item in session.scalars(select(ResponseItem)):
        item.value = 1
    session.commit()
    session.expire_all()
    assert latest_version(session, participant).data == before
    assert report_from_json(before) != build_report(session, session.get(Participant, 1))


def test_one_email_per_participant_whose_link_opens_only_their_report(session):
    cycle, _ = released(session, participants=3)
    emails = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "report")).all()
    assert sorted(m.to_address for m in emails) == sorted(
        p.employee.email for p in cycle.participants
    )
    for message in emails:
        (token,) = [t for k, t in f.LINK.findall(message.body) if k == "r"]
        assert f"{f.BASE_URL}/r/{token}" in message.body
        assert "$" not in message.body + message.subject  # every placeholder filled
        access = resolve_token(session, token, TokenPurpose.REPORT)
        assert access.participant.employee.email == message.to_address
    tokens = session.scalars(
        select(AccessToken).where(AccessToken.purpose == TokenPurpose.REPORT)
    ).all()
    assert len({t.participant_id for t in tokens}) == len(tokens) == 3


def test_release_refuses_an_open_cycle_and_changes_nothing(session):
    cycle, _ = build_cycle(session)
    with pytest.raises(IllegalTransition, match="open; it cannot move to released"):
        release_cycle(session, cycle, base_url=f.BASE_URL)
    assert cycle.pseudonym_key is not None
    assert session.scalars(select(ReportVersion)).all() == []
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "report")).all() == []


def test_release_happens_once(session):
    cycle, _ = released(session)
    with pytest.raises(IllegalTransition):
        release_cycle(session, cycle, base_url=f.BASE_URL)


def test_rerelease_refuses_a_single_late_rater(session):
    _, participant = released(session)
    late_response(session, participant, "peer", 1)
    with pytest.raises(DomainError, match=r"Peers changed by 1 rater.*at least 3 needed"):
        rerelease_participant(session, participant, base_url=f.BASE_URL)
    assert latest_version(session, participant).version == 1


def test_rerelease_refuses_fewer_late_raters_than_the_threshold(session):
    _, participant = released(session)
    late_response(session, participant, "peer", 1)
    late_response(session, participant, "peer", 2)
    with pytest.raises(DomainError, match="Peers changed by 2 raters"):
        rerelease_participant(session, participant, base_url=f.BASE_URL)


def test_rerelease_refuses_a_late_rater_of_a_hidden_group(session):
    # One "other" colleague is below threshold and folded into "All others": the move of
    # "All others" between the versions would still be that one person's answers.
    _, participant = released(session)
    late_response(session, participant, "other", 1)
    with pytest.raises(DomainError, match="Other colleagues changed by 1 rater"):
        rerelease_participant(session, participant, base_url=f.BASE_URL)


def test_rerelease_with_enough_late_raters_makes_new_versions(session):
    _, participant = released(session)
    for value in (1, 1, 1):
        late_response(session, participant, "peer", value)
    v2 = rerelease_participant(session, participant, base_url=f.BASE_URL)
    session.commit()
    assert v2.version == 2
    assert v2.response_counts["peer"] == 6
    report = report_from_json(v2.data)
    assert {c.group: c.n for c in report.counts}["peer"] == 6
    # Version 1 is kept as it was.
    v1 = session.scalar(select(ReportVersion).where(ReportVersion.version == 1))
    assert {c.group: c.n for c in report_from_json(v1.data).counts}["peer"] == 3

    with pytest.raises(DomainError, match="no responses were added"):
        rerelease_participant(session, participant, base_url=f.BASE_URL)
    for value in (5, 5, 5):
        late_response(session, participant, "peer", value)
    v3 = rerelease_participant(session, participant, base_url=f.BASE_URL)
    session.commit()
    assert v3.version == 3
    assert latest_version(session, participant).id == v3.id

    emails = session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "report").order_by(OutboxMessage.id)
    ).all()
    assert len(emails) == 3
    assert "updated: version 3" in emails[-1].body
    # Every link ever sent opens the latest version.
    for raw in f.links(session, "r"):
        token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
        assert token.participant_id == participant.id


def test_rerelease_needs_a_released_cycle(session):
    cycle, participant = build_cycle(session)
    cycles.close_cycle(session, cycle)
    with pytest.raises(DomainError, match="only released reports can be re-released"):
        rerelease_participant(session, participant, base_url=f.BASE_URL)


def _cycle(**settings):
    return Cycle(thresholds={**DEFAULT_THRESHOLDS, **settings.pop("thresholds", {})}, **settings)


BEFORE = {"self": 1, "manager": 1, "peer": 3, "direct_report": 3, "other": 0}


@pytest.mark.parametrize(
    ("change", "show_manager", "refused"),
    [
        ({"peer": 1}, True, "Peers changed by 1 rater"),
        ({"peer": -1}, True, "Peers changed by 1 rater"),  # a response withdrawn
        ({"direct_report": 2}, True, "Direct reports changed by 2 raters"),
        ({"peer": 3, "other": 1}, True, "Other colleagues changed by 1 rater"),
        ({"manager": 1}, False, "All others changed by 1 rater"),  # merged into others
        ({}, True, "no responses were added"),
        ({"peer": 3}, True, None),
        ({"peer": 3, "direct_report": 4}, True, None),
        ({"self": 1}, True, None),  # the participant's own answers
        ({"manager": 1}, True, None),  # shown by name by design
    ],
)
def test_rerelease_rule(change, show_manager, refused):
    after = {g: BEFORE[g] + change.get(g, 0) for g in BEFORE}
    reason = rerelease_refusal(_cycle(show_manager=show_manager), BEFORE, after)
    if refused is None:
        assert reason is None
    else:
        assert refused in reason


def test_rerelease_rule_needs_all_others_threshold_across_groups():
    # Peers and others may each pass a low threshold, but together they move "All others"
    # by fewer raters than its threshold.
    cycle = _cycle(thresholds={"peer": 2, "other": 2, "others": 5})
    assert "All others changed by 4 raters" in rerelease_refusal(
        cycle, BEFORE, {**BEFORE, "peer": 5, "other": 2}
    )
    assert rerelease_refusal(cycle, BEFORE, {**BEFORE, "peer": 6, "other": 2}) is None


def test_release_cuts_every_link_between_responses_and_raters(session):
    """After release no pseudonym repeats, ids are new, and the answers are all still there."""
    from collections import Counter

    from surveys.models import ResponseComment
    from surveys.responses import SELF_PSEUDONYM

    cycle, _ = build_cycle(session, participants=2)
    before_ids = set(session.scalars(select(Response.id)))
    before_values = Counter(
        (r.participant_id, r.relationship, i.item_id, i.value)
        for r in session.scalars(select(Response))
        for i in r.items
    )
    comments_before = Counter(session.scalars(select(ResponseComment.text)))
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    rows = session.scalars(select(Response)).all()
    assert not before_ids & {r.id for r in rows}
    others = [r.rater_pseudonym for r in rows if r.rater_pseudonym != SELF_PSEUDONYM]
    assert len(others) == len(set(others))  # nobody's responses can be joined any more
    after_values = Counter(
        (r.participant_id, r.relationship, i.item_id, i.value) for r in rows for i in r.items
    )
    assert after_values == before_values
    assert Counter(session.scalars(select(ResponseComment.text))) == comments_before


# -- version stamp, late responses, re-releasing a cycle --------------------------------------


def test_a_released_version_says_which_version_it_is_and_when(session):
    from datetime import UTC, datetime

    cycle, participant = build_cycle(session)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL, now=datetime(2026, 12, 3, 9, tzinfo=UTC))
    report = report_from_json(latest_version(session, participant).data)
    assert (report.version, report.released_on) == (1, "2026-12-03")
    assert report.released_label == "Version 1, released 3 December 2026"
    assert build_report(session, participant).released_label is None  # a preview


def test_reports_frozen_before_the_stamp_existed_still_load(session):
    _, participant = released(session)
    data = dict(latest_version(session, participant).data)
    for key in ("version", "released_on", "trend"):
        data.pop(key)
    report = report_from_json(data)
    assert report.version is None
    assert report.trend is None


def late_team(session, *, peers=6, answering=3):
    """Member 1 of a team of ``peers + 1``: self, manager and ``answering`` peers answer."""
    from tests.surveys.test_reports import answer

    _, team = f.team(session, peers + 1)
    cycle = f.launched(session, team[:1], peer_min=peers, peer_max=peers)
    participant = cycle.participants[0]
    assignments = sorted(
        session.scalars(select(Assignment).where(Assignment.participant_id == participant.id)),
        key=lambda a: a.id,
    )
    peer_assignments = [a for a in assignments if a.relationship == Relationship.PEER]
    assert len(peer_assignments) == peers
    for a in assignments:
        if a.relationship != Relationship.PEER:
            answer(session, a, 4)
    for a in peer_assignments[:answering]:
        answer(session, a, 3)
    session.commit()
    return cycle, participant, peer_assignments[answering:]


def all_items(participant, value):
    bank = cycle_bank(participant.cycle)
    return Answers({item.id: value for item in bank.items})


def test_late_responses_accepted_then_rereleased_as_a_new_version(session):
    cycle, participant, late = late_team(session)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()

    for a in late:
        accept_late_response(session, a, all_items(participant, 1))
    session.commit()
    assert {a.status for a in late} == {AssignmentStatus.SUBMITTED}
    pseudonyms = session.scalars(
        select(Response.rater_pseudonym).where(Response.participant_id == participant.id)
    ).all()
    assert len(set(pseudonyms)) == len(pseudonyms)  # random, never linkable
    # Still version 1 until HR re-releases.
    assert latest_version(session, participant).version == 1

    (outcome,) = rerelease_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    assert (outcome.version, outcome.refusal) == (2, None)
    report = report_from_json(latest_version(session, participant).data)
    assert {c.group: c.n for c in report.counts}["peer"] == 6
    peers = next(g for g in report.competencies[0].groups if g.group == "peer")
    assert peers.mean == pytest.approx((3 * 3 + 3 * 1) / 6)
    assert report.released_label.startswith("Version 2, released ")


def test_a_late_response_with_nothing_answered_is_refused(session):
    cycle, _, late = late_team(session)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    bank = cycle_bank(cycle)
    with pytest.raises(DomainError, match="nothing is answered"):
        accept_late_response(
            session, late[0], Answers(dict.fromkeys((i.id for i in bank.items), "na"))
        )
    assert late[0].status != AssignmentStatus.SUBMITTED


def test_late_responses_are_refused_before_release(session):
    """While closed, HR previews and exports live figures: two previews around one
    accepted response would show that rater's answers."""
    cycle, participant, late = late_team(session, peers=3, answering=2)
    cycles.close_cycle(session, cycle)
    with pytest.raises(DomainError, match="accepted once it is released"):
        accept_late_response(session, late[0], all_items(participant, 5))


def test_a_late_response_looks_like_every_released_response(session):
    cycle, participant, late = late_team(session, peers=3, answering=2)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    response_id = accept_late_response(session, late[0], all_items(participant, 5))
    session.commit()
    stored = session.get(Response, response_id)
    assert stored.submitted_on == cycle.closed_at.date()  # not the day HR typed it in
    others = session.scalars(
        select(Response.rater_pseudonym).where(
            Response.cycle_id == cycle.id, Response.id != response_id
        )
    ).all()
    assert len(stored.rater_pseudonym) == 64
    assert stored.rater_pseudonym not in others  # random, like every released response


def test_exports_of_a_released_cycle_are_the_released_reports(session):
    """A late response accepted but not re-released changes no exported figure: the
    export publishes the released versions, never fresh figures to compare them with."""
    cycle, participant, late = late_team(session, peers=4, answering=3)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    before = exports.scores_csv(session, cycle)
    accept_late_response(session, late[0], all_items(participant, 1))
    session.commit()
    assert exports.scores_csv(session, cycle) == before
    others = [r for r in exports.score_rows(session, cycle).rows if r.relationship == "others"]
    assert others
    assert {r.n_raters for r in others} == {4}  # manager and three peers, not 5


def test_a_single_late_rater_after_release_is_refused_by_name_of_the_rule(session):
    cycle, participant, late = late_team(session, peers=4, answering=3)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    accept_late_response(session, late[0], all_items(participant, 1))
    session.commit()
    (outcome,) = rerelease_cycle(
        session, cycle, base_url=f.BASE_URL, participant_ids=[participant.id]
    )
    assert outcome.version is None
    assert "Peers changed by 1 rater" in outcome.refusal
    assert latest_version(session, participant).version == 1


def test_accept_late_response_refuses_what_it_must(session):
    cycle, participant, late = late_team(session, peers=4, answering=3)
    with pytest.raises(DomainError, match="while open, the rater answers through their link"):
        accept_late_response(session, late[0], all_items(participant, 3))
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    submitted = session.scalar(
        select(Assignment).where(
            Assignment.participant_id == participant.id,
            Assignment.status == AssignmentStatus.SUBMITTED,
            Assignment.relationship == Relationship.PEER,
        )
    )
    with pytest.raises(DomainError, match="already submitted"):
        accept_late_response(session, submitted, all_items(participant, 3))
    with pytest.raises(DomainError, match="unknown questions: nope"):
        accept_late_response(
            session, late[0], Answers({**all_items(participant, 3).ratings, "nope": 1})
        )
    assert late[0].status != AssignmentStatus.SUBMITTED
    assert session.scalar(select(func.count(Response.id))) == 5


def test_rerelease_cycle_needs_a_released_cycle_and_its_own_participants(session):
    cycle, _participant, _ = late_team(session, peers=4, answering=3)
    cycles.close_cycle(session, cycle)
    with pytest.raises(DomainError, match="only released reports"):
        rerelease_cycle(session, cycle, base_url=f.BASE_URL)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    with pytest.raises(DomainError, match="not participants"):
        rerelease_cycle(session, cycle, base_url=f.BASE_URL, participant_ids=[424242])


# -- versions read side by side (anonymity rule 7) -------------------------------------------


def _team_with_outsiders(session, *, peers, outsiders):
    """A participant with ``peers`` peers and ``outsiders`` "other" raters, no self and no
    manager: (participant, peer assignments, other assignments)."""
    _, team = f.team(session, peers + 1)
    cycle = f.launched(
        session,
        [team[0]],
        peer_min=peers,
        peer_max=peers,
        include_manager=False,
        include_self=False,
    )
    participant = cycle.participants[0]
    _, ops = f.team(session, outsiders, prefix="X", department="Ops")
    for person in ops:
        add_rater(session, cycle, participant, person, Relationship.OTHER)
    session.commit()
    mine = sorted(
        session.scalars(select(Assignment).where(Assignment.participant_id == participant.id)),
        key=lambda a: a.id,
    )
    peer = [a for a in mine if a.relationship == Relationship.PEER]
    other = [a for a in mine if a.relationship == Relationship.OTHER]
    return participant, peer, other


def _submit(session, assignment, ratings, comment=None):
    bank = cycle_bank(assignment.cycle)
    comments = {bank.open_questions[0].id: comment} if comment else {}
    responses.save_draft(session, assignment, Answers(ratings, comments))
    responses.submit(session, assignment)


def _every_group_shown(report) -> set[str]:
    cells = [*report.competencies, *([report.overall] if report.overall else [])]
    cells += [i for c in report.competencies for i in c.items]
    return {g.group for c in cells for g in c.groups} | {c.group for c in report.counts}


def test_a_group_the_first_version_merged_stays_merged_when_late_raters_come(session):
    """Version 1 shows only "All others" (2 peers + 3 others: the peers are too few, so
    the others are hidden too). Three late peers would let version 2 show peers (5) and
    others (3) apart; "All others" of version 1 minus version 2's others would then be
    the two early peers. Version 2 keeps both merged."""
    participant, peers, others = _team_with_outsiders(session, peers=5, outsiders=3)
    bank = cycle_bank(participant.cycle)
    for a, value in zip(peers[:2], (1, 2), strict=True):
        _submit(session, a, {i.id: value for i in bank.items})
    for a in others:
        _submit(session, a, {i.id: 5 for i in bank.items})
    cycles.close_cycle(session, participant.cycle)
    release_cycle(session, participant.cycle, base_url=f.BASE_URL)
    session.commit()
    first = report_from_json(latest_version(session, participant).data)
    assert _every_group_shown(first) == {"others"}

    for a in peers[2:]:
        accept_late_response(session, a, all_items(participant, 4))
    version = releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    session.commit()
    second = report_from_json(version.data)
    assert version.version == 2
    assert _every_group_shown(second) == {"others"}
    assert second.overall.others.n == 8
    assert "Peers: counted in “All others” only (hidden as in the earlier version" in " ".join(
        second.merged_notes
    )


def test_a_late_rater_alone_on_an_item_is_refused(session):
    """Three late peers, two of whom could not judge one item: that item's figures would
    move by one rater, whose answer the two versions would give away."""
    participant, peers, _ = _team_with_outsiders(session, peers=6, outsiders=0)
    bank = cycle_bank(participant.cycle)
    target = bank.items[1]
    for a in peers[:3]:
        _submit(session, a, {i.id: 3 for i in bank.items})
    cycles.close_cycle(session, participant.cycle)
    release_cycle(session, participant.cycle, base_url=f.BASE_URL)
    session.commit()
    skipped = {i.id: 3 for i in bank.items} | {target.id: responses.NA}
    answered = {i.id: 3 for i in bank.items} | {target.id: 1}
    for a, answers in zip(peers[3:], (skipped, skipped, answered), strict=True):
        accept_late_response(session, a, Answers(answers))
    session.commit()
    with pytest.raises(DomainError) as refused:
        releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    message = str(refused.value)
    assert "comparing it with version 1 would show late raters' answers" in message
    assert "item “" in message
    assert "peer raters changed by 1 rater (at least 3 needed)" in message
    assert latest_version(session, participant).version == 1


def test_comments_merged_in_the_first_version_stay_under_all_others(session):
    participant, peers, others = _team_with_outsiders(session, peers=5, outsiders=3)
    bank = cycle_bank(participant.cycle)
    early = {}
    for k, a in enumerate([*peers[:2], *others]):
        early[a.id] = f"Early comment {k}"
        _submit(session, a, {i.id: 4 for i in bank.items}, early[a.id])
    cycles.close_cycle(session, participant.cycle)
    release_cycle(session, participant.cycle, base_url=f.BASE_URL)
    session.commit()
    first = report_from_json(latest_version(session, participant).data)
    assert {label for g in first.comments for label, _ in g.comments} == {"All others"}
    for k, a in enumerate(peers[2:]):
        accept_late_response(
            session,
            a,
            Answers(
                {i.id: 4 for i in bank.items}, {bank.open_questions[0].id: f"Late comment {k}"}
            ),
        )
    version = releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    second = report_from_json(version.data)
    (group,) = second.comments
    assert group.question_id == bank.open_questions[0].id
    assert len(group.comments) == 8
    # Five peers and three others would be shown apart; the early two peers' comments
    # would then be told from the others' by their new label.
    assert {label for label, _ in group.comments} == {"All others"}


def _released_with_four_peer_comments(session):
    """Released: four of seven peers answered, each with a comment; three "other" raters
    and three peers left to answer late. (participant, peers, others, bank)"""
    participant, peers, others = _team_with_outsiders(session, peers=7, outsiders=3)
    bank = cycle_bank(participant.cycle)
    for k, a in enumerate(peers[:4]):
        _submit(session, a, {i.id: 4 for i in bank.items}, f"Peer comment {k}")
    cycles.close_cycle(session, participant.cycle)
    release_cycle(session, participant.cycle, base_url=f.BASE_URL)
    session.commit()
    return participant, peers, others, bank


@pytest.mark.parametrize("late", ["other", "peer"])
def test_a_late_rater_alone_in_the_comments_is_refused(session, late):
    """Version 1 shows four peers' comments. Three late raters all answer, but only one
    writes a comment: version 2's comments minus version 1's would be that one rater's
    words (and, for late "other" raters, the group version 2 merges into "All others").
    Comment questions are compared between versions like items."""
    participant, peers, others, bank = _released_with_four_peer_comments(session)
    first = report_from_json(latest_version(session, participant).data)
    assert {label for g in first.comments for label, _ in g.comments} == {"Peers"}
    question = bank.open_questions[0].id
    for k, a in enumerate(others if late == "other" else peers[4:]):
        said = {question: "Only I wrote something"} if k == 0 else {}
        accept_late_response(session, a, Answers({i.id: 2 for i in bank.items}, said))
    with pytest.raises(DomainError, match=r"comments on .* changed by 1 rater"):
        releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    assert latest_version(session, participant).version == 1


def _frozen_without_question_ids(session, participant):
    """Rewrite the latest version as versions were frozen before question ids were kept."""
    version = latest_version(session, participant)
    data = json.loads(json.dumps(version.data))
    for group in data["comments"]:
        group.pop("question_id", None)
    version.data = data
    session.commit()


@pytest.mark.parametrize("late", ["other", "peer"])
def test_a_late_comment_is_refused_next_to_a_version_frozen_before_question_ids(session, late):
    participant, peers, others, bank = _released_with_four_peer_comments(session)
    _frozen_without_question_ids(session, participant)
    question = bank.open_questions[0].id
    for k, a in enumerate(others if late == "other" else peers[4:]):
        said = {question: "Only I wrote something"} if k == 0 else {}
        accept_late_response(session, a, Answers({i.id: 2 for i in bank.items}, said))
    with pytest.raises(DomainError, match=r"comments on .* changed by 1 rater"):
        releases.rerelease_participant(session, participant, base_url=f.BASE_URL)


def test_comments_that_no_longer_match_a_question_refuse_the_re_release(session):
    """Renamed since: the earlier version's comment groups (named by text only) match no
    question, so nothing can be compared and the re-release is refused."""
    participant, peers, _, bank = _released_with_four_peer_comments(session)
    _frozen_without_question_ids(session, participant)
    participant.employee.name = "Renamed Person"
    session.commit()
    question = bank.open_questions[0].id
    for k, a in enumerate(peers[4:]):
        accept_late_response(
            session, a, Answers({i.id: 2 for i in bank.items}, {question: f"L{k}"})
        )
    with pytest.raises(DomainError, match="can't be matched to their questions"):
        releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    assert latest_version(session, participant).version == 1


def test_late_comments_from_enough_raters_are_released(session):
    participant, peers, _, bank = _released_with_four_peer_comments(session)
    question = bank.open_questions[0].id
    for k, a in enumerate(peers[4:]):
        accept_late_response(
            session, a, Answers({i.id: 2 for i in bank.items}, {question: f"L{k}"})
        )
    version = releases.rerelease_participant(session, participant, base_url=f.BASE_URL)
    assert version.version == 2
    (group,) = report_from_json(version.data).comments
    assert sorted(text for _, text in group.comments) == sorted(
        [*(f"Peer comment {k}" for k in range(4)), "L0", "L1", "L2"]
    )


# -- holding a report back at release -------------------------------------------------------


def _report_emails(session):
    return session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "report").order_by(OutboxMessage.id)
    ).all()


def test_a_held_report_is_frozen_at_release_but_its_link_waits_until_shared(session):
    cycle, _ = build_cycle(session, participants=3)
    cycles.close_cycle(session, cycle)
    held, *others = sorted(cycle.participants, key=lambda p: p.id)
    releases.hold_report(session, held)
    summary = release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()

    assert (summary.reports, summary.emails, summary.held) == (3, 2, 1)
    assert latest_version(session, held).version == 1  # frozen like the others
    assert sorted(m.to_address for m in _report_emails(session)) == sorted(
        p.employee.email for p in others
    )
    tokens = session.scalars(select(AccessToken).where(AccessToken.purpose == TokenPurpose.REPORT))
    assert held.id not in {t.participant_id for t in tokens}  # no link opens it yet

    releases.share_report(session, held, base_url=f.BASE_URL)
    session.commit()
    last = _report_emails(session)[-1]
    assert last.to_address == held.employee.email
    assert "updated" not in last.body  # the first link they get
    (token,) = [t for k, t in f.LINK.findall(last.body) if k == "r"]
    assert resolve_token(session, token, TokenPurpose.REPORT).participant_id == held.id
    assert not held.report_held
    with pytest.raises(DomainError, match="already been sent"):
        releases.share_report(session, held, base_url=f.BASE_URL)


def test_holding_back_can_be_undone_before_release_and_not_after(session):
    cycle, participant = build_cycle(session)
    releases.hold_report(session, participant)
    releases.hold_report(session, participant, held=False)
    cycles.close_cycle(session, cycle)
    with pytest.raises(DomainError, match="shared after the release"):
        releases.share_report(session, participant, base_url=f.BASE_URL)
    summary = release_cycle(session, cycle, base_url=f.BASE_URL)
    assert (summary.emails, summary.held) == (1, 0)
    with pytest.raises(DomainError, match="are released; a held report is sent by sharing it"):
        releases.hold_report(session, participant)
    assert not participant.report_held


def test_hold_refused_while_the_release_is_under_way(session):
    cycle, participant = build_cycle(session)
    cycles.close_cycle(session, cycle)
    releases.request_release(session, cycle)
    with pytest.raises(DomainError, match="release of this cycle is under way"):
        releases.hold_report(session, participant)
    assert not participant.report_held


def test_a_held_report_re_released_before_sharing_sends_nothing_until_shared(session):
    cycle, participant = build_cycle(session)
    cycles.close_cycle(session, cycle)
    releases.hold_report(session, participant)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    for value in (1, 1, 1):
        late_response(session, participant, "peer", value)
    assert rerelease_participant(session, participant, base_url=f.BASE_URL).version == 2
    assert _report_emails(session) == []
    releases.share_report(session, participant, base_url=f.BASE_URL)
    (message,) = _report_emails(session)
    (token,) = [t for k, t in f.LINK.findall(message.body) if k == "r"]
    access = resolve_token(session, token, TokenPurpose.REPORT)
    assert latest_version(session, access.participant_id).version == 2
