import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from surveys import cycles, responses
from surveys.errors import DomainError, NotFound
from surveys.models import (
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    Draft,
    Relationship,
    Response,
    ResponseComment,
    ResponseItem,
)
from tests import factories as f


@pytest.fixture
def open_cycle(session):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team)
    return cycle, team


def assignment(session, participant, rater):
    return session.scalar(
        select(Assignment).where(
            Assignment.rater_id == rater.id, Assignment.participant.has(employee_id=participant.id)
        )
    )


def fill(session, a, value=4):
    bank = responses.cycle_bank(a.cycle)
    answers = responses.Answers(
        {i.id: value for i in bank.items}, {q.id: "Good <b>work</b>" for q in bank.open_questions}
    )
    responses.save_draft(session, a, answers)
    return answers


def test_submit_stores_answers_against_a_pseudonym_not_the_rater(session, open_cycle):
    cycle, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a, 4)
    response_id = responses.submit(session, a)
    session.commit()
    response = session.get(Response, response_id)
    assert response.relationship == Relationship.PEER
    assert response.rater_pseudonym == responses.pseudonym(cycle, team[1].id)
    assert len(response.rater_pseudonym) == 64
    columns = {c.key for c in inspect(Response).columns}
    assert not {"rater_id", "assignment_id", "submitted_at"} & columns
    assert type(response.submitted_on).__name__ == "date"  # coarsened to the day
    values = session.scalars(
        select(ResponseItem.value).where(ResponseItem.response_id == response_id)
    )
    assert set(values) == {4}
    assert session.get(Draft, a.id) is None
    assert a.status == AssignmentStatus.SUBMITTED


def test_same_rater_has_one_pseudonym_per_cycle(session, open_cycle):
    _cycle, team = open_cycle
    for participant in team[1:3]:
        a = assignment(session, participant, team[0])
        fill(session, a)
        responses.submit(session, a)
    session.commit()
    pseudonyms = session.scalars(
        select(Response.rater_pseudonym).where(Response.relationship == Relationship.PEER)
    ).all()
    assert len(pseudonyms) == 2
    assert len(set(pseudonyms)) == 1


def test_double_submit_is_refused_and_keeps_one_response(session, open_cycle):
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a)
    responses.submit(session, a)
    session.commit()
    with pytest.raises(responses.AlreadySubmitted):
        responses.submit(session, a)
    with pytest.raises(responses.AlreadySubmitted):
        responses.save_draft(session, a, responses.Answers({}, {}))
    assert session.scalar(select(func.count(Response.id))) == 1


def test_racing_submits_create_exactly_one_response(app, session, open_cycle):
    """Two requests submit the same assignment at once (two tabs, a retry)."""
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a)
    session.commit()
    assignment_id = a.id
    engine = session.get_bind()
    barrier = threading.Barrier(2, timeout=30)
    outcomes = []

    def submit():
        with app.app_context(), Session(engine) as s:
            mine = s.get(Assignment, assignment_id)
            barrier.wait()
            try:
                responses.submit(s, mine)
                s.commit()
                outcomes.append("ok")
            except responses.AlreadySubmitted:
                s.rollback()
                outcomes.append("already")
            except Exception as error:  # SQLite may report the lock instead of waiting
                s.rollback()
                outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    session.expire_all()
    assert session.scalar(select(func.count(Response.id))) == 1
    assert session.scalar(select(func.count()).select_from(ResponseItem)) == len(
        responses.cycle_bank(a.cycle).items
    )


def test_clean_answers_keeps_valid_and_reports_each_bad_value(session, open_cycle):
    cycle, _ = open_cycle
    bank = responses.cycle_bank(cycle)
    first, second, third = (i.id for i in bank.items[:3])
    question = bank.open_questions[0].id
    checked = responses.clean_answers(
        bank,
        {first: "9", second: "abc", third: "NA", "nope": "3"},
        {question: "x" * (responses.MAX_COMMENT_CHARS + 1)},
    )
    assert checked.answers.ratings == {third: "na"}
    assert "from 1 to 5" in checked.errors[first]
    assert checked.errors[second] == "Choose one of the options."
    assert checked.errors["nope"] == "Unknown question."
    assert "to 10,000 characters or fewer" in checked.errors[question]


def test_a_comment_of_exactly_the_limit_is_kept_and_one_more_character_is_not(session, open_cycle):
    cycle, team = open_cycle
    bank = responses.cycle_bank(cycle)
    question = bank.open_questions[0].id
    limit = responses.MAX_COMMENT_CHARS
    # Counted as characters (an emoji is one), after line endings are made "\n" and the
    # ends trimmed, as stored.
    exact = "😀\r\n" + "y" * (limit - 2)
    checked = responses.clean_answers(bank, {}, {question: f"  {exact}  "})
    assert checked.errors == {}
    assert checked.answers.comments[question] == "😀\n" + "y" * (limit - 2)
    a = assignment(session, team[0], team[1])
    responses.save_draft(session, a, checked.answers)
    assert len(responses.load_draft(session, a).comments[question]) == limit
    over = responses.clean_answers(bank, {}, {question: exact + "y"})
    assert over.errors[question] == (
        f"Please keep this to {limit:,} characters or fewer (it has {limit + 1:,})."
    )


def test_a_survey_with_nothing_answered_is_not_submitted(session, open_cycle):
    """Every statement "not able to judge" and no comment: a Submit by mistake (the rater
    can decline instead); nothing is stored and the draft stays."""
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    bank = responses.cycle_bank(a.cycle)
    nothing = responses.Answers(dict.fromkeys((i.id for i in bank.items), responses.NA), {})
    responses.save_draft(session, a, nothing)
    with pytest.raises(responses.Incomplete, match="Nothing is answered yet"):
        responses.submit(session, a)
    assert a.status == AssignmentStatus.IN_PROGRESS
    assert session.scalar(select(func.count()).select_from(Response)) == 0
    assert session.get(Draft, a.id) is not None
    # One real answer, or one comment, is enough.
    one = responses.Answers({**nothing.ratings, bank.items[0].id: 2}, {})
    responses.submit(session, a, one)
    assert a.status == AssignmentStatus.SUBMITTED


def test_required_items_must_be_answered_before_submit(session, open_cycle):
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    bank = responses.cycle_bank(a.cycle)
    required = [i.id for i in bank.items if i.required]
    assert required, "the pulse bank marks some items required"
    responses.save_draft(session, a, responses.Answers({bank.items[-1].id: 3}, {}))
    with pytest.raises(DomainError, match="required question"):
        responses.submit(session, a)
    assert a.status == AssignmentStatus.IN_PROGRESS
    responses.save_draft(session, a, responses.Answers(dict.fromkeys(required, "na"), {}))
    responses.submit(session, a)  # N/A counts as an answer


def test_drafts_merge_across_tabs_and_empty_comments_clear(session, open_cycle):
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    bank = responses.cycle_bank(a.cycle)
    one, two = bank.items[0].id, bank.items[5].id
    q = bank.open_questions[0].id
    responses.save_draft(session, a, responses.Answers({one: 2}, {q: "hello"}))
    merged = responses.save_draft(session, a, responses.Answers({two: 5}, {}))
    assert merged.ratings == {one: 2, two: 5}
    assert merged.comments == {q: "hello"}
    cleared = responses.save_draft(session, a, responses.Answers({}, {q: ""}))
    assert cleared.comments == {}


def test_closed_cycle_refuses_links_and_answers(session, open_cycle):
    cycle, team = open_cycle
    raw = f.token_for(session, team[0], "peer")
    assert responses.open_assignment(session, raw).cycle_id == cycle.id
    cycles.close_cycle(session, cycle)
    with pytest.raises(NotFound):
        responses.open_assignment(session, raw)
    a = assignment(session, team[0], team[1])
    with pytest.raises(DomainError, match="closed"):
        responses.save_draft(session, a, responses.Answers({}, {}))


def test_a_close_committed_after_the_link_was_read_wins(session, open_cycle):
    """The request read the cycle as open; HR closed it a moment later. Neither a
    response nor a draft (which names its rater) may land after the close."""
    cycle, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a)
    session.commit()
    assert a.cycle.state == CycleState.OPEN  # what the request read
    session.execute(
        update(Cycle)
        .where(Cycle.id == cycle.id)
        .values(state=CycleState.CLOSED)
        .execution_options(synchronize_session=False)
    )
    assert a.cycle.state == CycleState.OPEN  # still, in this request's memory
    for attempt in (
        lambda: responses.submit(session, a),
        lambda: responses.save_draft(session, a, responses.Answers({}, {"x": "late"})),
        lambda: responses.decline(session, a),
    ):
        with pytest.raises(DomainError, match="closed"):
            attempt()
    assert session.scalar(select(func.count(Response.id))) == 0
    assert a.status == AssignmentStatus.IN_PROGRESS


def test_decline_discards_the_draft_and_can_be_undone(session, open_cycle):
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a)
    responses.decline(session, a)
    assert a.status == AssignmentStatus.DECLINED
    assert session.get(Draft, a.id) is None
    with pytest.raises(responses.Declined):  # a stale tab's autosave must not undo it
        responses.save_draft(session, a, responses.Answers({}, {"x": "late"}))
    with pytest.raises(responses.Declined):
        responses.submit(session, a)
    responses.reopen_declined(session, a)
    assert a.status == AssignmentStatus.PENDING


def test_comments_are_stored_verbatim(session, open_cycle):
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    fill(session, a)
    rid = responses.submit(session, a)
    text = session.scalar(select(ResponseComment.text).where(ResponseComment.response_id == rid))
    assert text == "Good <b>work</b>"  # escaping is the renderer's job, storage is verbatim


@contextmanager
def loaded_then_submitted_elsewhere(app, session, a):
    """Yield (stale session, its copy of ``a``) loaded before another request submitted ``a``."""
    fill(session, a)
    session.commit()
    assignment_id = a.id
    engine = session.get_bind()
    with app.app_context(), Session(engine) as stale:
        old = stale.get(Assignment, assignment_id)
        assert old.status == AssignmentStatus.IN_PROGRESS
        with Session(engine) as other:
            responses.submit(other, other.get(Assignment, assignment_id))
            other.commit()
        yield stale, old
        stale.rollback()
    session.expire_all()


def test_a_late_autosave_never_recreates_a_draft_after_submit(app, session, open_cycle):
    """Autosave loaded the assignment before another request submitted it."""
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    assignment_id = a.id
    with (
        loaded_then_submitted_elsewhere(app, session, a) as (stale, old),
        pytest.raises(responses.AlreadySubmitted),
    ):
        responses.save_draft(stale, old, responses.Answers({}, {"keep_doing": "late"}))
    assert session.get(Draft, assignment_id) is None


def test_decline_never_overwrites_a_submission(app, session, open_cycle):
    """Tab B declines after tab A submitted: refused, the submission stands."""
    _, team = open_cycle
    a = assignment(session, team[0], team[1])
    assignment_id = a.id
    with (
        loaded_then_submitted_elsewhere(app, session, a) as (stale, old),
        pytest.raises(responses.AlreadySubmitted),
    ):
        responses.decline(stale, old)
    assert session.get(Assignment, assignment_id).status == AssignmentStatus.SUBMITTED


def test_self_responses_do_not_carry_the_raters_pseudonym(session, open_cycle):
    """The self rater is the participant: their HMAC would name their ratings of others."""
    cycle, team = open_cycle
    own = assignment(session, team[0], team[0])
    fill(session, own)
    responses.submit(session, own)
    peer = assignment(session, team[1], team[0])
    fill(session, peer)
    responses.submit(session, peer)
    stored = dict(session.execute(select(Response.relationship, Response.rater_pseudonym)).all())
    assert stored[Relationship.SELF] == responses.SELF_PSEUDONYM
    assert stored[Relationship.PEER] == responses.pseudonym(cycle, team[0].id)


def test_closing_deletes_unsubmitted_drafts(session, open_cycle):
    cycle, team = open_cycle
    started = assignment(session, team[0], team[1])
    fill(session, started)
    assert session.scalar(select(func.count()).select_from(Draft)) == 1
    assert started.status == AssignmentStatus.IN_PROGRESS
    cycles.close_cycle(session, cycle)
    assert session.scalar(select(func.count()).select_from(Draft)) == 0
    # Its answers are gone: the survey was not answered, not "in progress" for ever.
    session.expire_all()
    assert started.status == AssignmentStatus.PENDING
