"""Filling in a survey: drafts (autosave), submission into an anonymous Response, declining.

A submission is one transaction: a conditional UPDATE claims the assignment (so a double
submit, a second tab or a retry finds it already submitted), the response and its answers
are inserted with Core bulk inserts, the draft is deleted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import CursorResult, delete, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from surveys.banks import Bank
from surveys.db import utcnow
from surveys.errors import DomainError
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
    TokenPurpose,
)
from surveys.models.response import new_response_id
from surveys.tokens import resolve_token

#: Longest comment we keep; longer ones are refused with a message, never truncated.
MAX_COMMENT_CHARS = 10_000
NA = "na"


class AlreadySubmitted(DomainError):
    """The assignment was submitted before (double click, second tab, retry)."""


class Declined(DomainError):
    """The rater declined; answers are refused until they reopen the survey."""


def cycle_bank(cycle: Cycle) -> Bank:
    """The cycle's frozen bank in the cycle's language (parsed once per process).

    The snapshot never changes after the cycle is created, so the cycle's identity is the
    cache key (no need to hash the snapshot on every request). The creation time and bank
    are part of the key because ids restart in a re-created database.
    """
    key = (cycle.id, cycle.created_at, cycle.bank_key, cycle.bank_version, cycle.language)
    bank = _banks.get(key)
    if bank is None:
        if len(_banks) > 64:
            _banks.clear()
        bank = _banks[key] = Bank.from_snapshot(cycle.bank_snapshot).localized(cycle.language)
    return bank


_banks: dict[tuple[int, datetime, str, str, str], Bank] = {}


def open_assignment(session: Session, raw_token: str) -> Assignment:
    """The assignment behind a rating link, or NotFound (forged, other purpose, closed)."""
    token = resolve_token(session, raw_token, TokenPurpose.RATE)
    assert token.assignment is not None
    # The token query loaded the cycle, but the session holds it only weakly: hand it to
    # the assignment, or the first ``assignment.cycle`` selects it again.
    set_committed_value(token.assignment, "cycle", token.cycle)
    return token.assignment


@dataclass
class Answers:
    """Answers as posted or as saved: item id -> value (int) or NA; question id -> text."""

    ratings: dict[str, int | str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)


@dataclass
class Validation:
    answers: Answers
    #: field name (item or question id) -> message shown next to it
    errors: dict[str, str] = field(default_factory=dict)


def clean_answers(bank: Bank, ratings: dict[str, str], comments: dict[str, str]) -> Validation:
    """Validate raw strings from a form or API against the bank; keep everything valid."""
    items = {item.id: item for item in bank.items}
    questions = {q.id: q for q in bank.open_questions}
    result = Validation(Answers())
    for item_id, raw in ratings.items():
        if item_id not in items:
            result.errors[item_id] = "Unknown question."
            continue
        value = (raw or "").strip().lower()
        if not value:
            continue
        if value == NA:
            result.answers.ratings[item_id] = NA
            continue
        try:
            number = int(value)
        except ValueError:
            result.errors[item_id] = "Choose one of the options."
            continue
        if number not in bank.scale.values:
            result.errors[item_id] = (
                f"Choose a value from {bank.scale.min} to {bank.scale.max}, or N/A."
            )
            continue
        result.answers.ratings[item_id] = number
    for question_id, text in comments.items():
        if question_id not in questions:
            result.errors[question_id] = "Unknown question."
            continue
        # PostgreSQL text cannot hold NUL; one pasted NUL would make every submit fail.
        text = (text or "").replace("\r\n", "\n").replace("\x00", "").strip()
        if len(text) > MAX_COMMENT_CHARS:
            result.errors[question_id] = (
                f"Please keep this to {MAX_COMMENT_CHARS:,} characters or fewer"
                f" (it has {len(text):,})."
            )
            continue
        result.answers.comments[question_id] = text
    return result


def load_draft(session: Session, assignment: Assignment) -> Answers:
    draft = session.get(Draft, assignment.id)
    if draft is None:
        return Answers()
    return Answers(ratings=dict(draft.answers), comments=dict(draft.comments))


def save_draft(session: Session, assignment: Assignment, answers: Answers) -> Answers:
    """Merge answers into the draft (two tabs editing different sections both keep theirs).

    An empty comment clears the saved one; unanswered items stay as they were. The
    assignment row is updated (and so locked) first: a concurrent submit has either
    finished, and this save is refused, or waits until it commits, so a draft, which
    names its rater, never outlives the anonymous response.
    """
    _require_open(assignment)
    _move(session, assignment, AssignmentStatus.IN_PROGRESS)
    draft = session.scalar(
        select(Draft).where(Draft.assignment_id == assignment.id).with_for_update()
    )
    if draft is None:
        draft = Draft(assignment_id=assignment.id, answers={}, comments={})
        session.add(draft)
    saved = _merged(Answers(dict(draft.answers), dict(draft.comments)), answers)
    draft.answers, draft.comments = saved.ratings, saved.comments
    draft.updated_at = utcnow()
    session.flush()
    return Answers(ratings=dict(draft.answers), comments=dict(draft.comments))


def _merged(saved: Answers, new: Answers) -> Answers:
    """``new`` over ``saved``: new ratings win, an empty comment clears the saved one."""
    comments = {**saved.comments, **new.comments}
    return Answers(
        ratings={**saved.ratings, **new.ratings},
        comments={k: v for k, v in comments.items() if v},
    )


def _move(session: Session, assignment: Assignment, target: AssignmentStatus) -> None:
    """Conditionally move an unanswered assignment to ``target`` in one UPDATE.

    Raises AlreadySubmitted or Declined, read fresh from the database, when it is not
    (or no longer) pending or in progress. The same statement checks that the cycle is
    still open: the request read its state a moment ago, and a close committed since
    must win (no response after the close, no draft outliving it).
    """
    still_open = (
        select(Cycle.id)
        .where(Cycle.id == Assignment.cycle_id, Cycle.state == CycleState.OPEN)
        .exists()
    )
    moved: CursorResult = session.execute(  # type: ignore[assignment]
        update(Assignment)
        .where(
            Assignment.id == assignment.id,
            Assignment.status.in_([AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS]),
            still_open,
        )
        .values(status=target)
        .execution_options(synchronize_session=False)
    )
    session.expire(assignment, ["status"])
    if moved.rowcount == 1:
        return
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise AlreadySubmitted("This survey has already been submitted.")
    if assignment.status == AssignmentStatus.DECLINED:
        raise Declined('You declined this survey. Choose "I changed my mind" to answer after all.')
    raise DomainError(CLOSED)


def missing_required(bank: Bank, answers: Answers) -> list[str]:
    """Ids of required items and questions without an answer (N/A counts as an answer)."""
    missing = [i.id for i in bank.items if i.required and i.id not in answers.ratings]
    missing += [q.id for q in bank.open_questions if q.required and not answers.comments.get(q.id)]
    return missing


SELF_PSEUDONYM = "self"


def surveys_left(session: Session, assignment: Assignment) -> int:
    """How many other surveys of this cycle the same rater has still to answer (what the
    thank-you page tells them; nobody else sees it)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.cycle_id == assignment.cycle_id,
                Assignment.rater_id == assignment.rater_id,
                Assignment.id != assignment.id,
                Assignment.status.in_([AssignmentStatus.PENDING, AssignmentStatus.IN_PROGRESS]),
            )
        )
        or 0
    )


def pseudonym(cycle: Cycle, rater_id: int) -> str:
    """HMAC-SHA256 of the rater id under the cycle's secret key (DESIGN §3).

    Self responses are stored as ``SELF_PSEUDONYM`` instead: the self rater is the
    participant, so their HMAC would name every rating they gave others.
    """
    if cycle.pseudonym_key is None:
        raise DomainError("this cycle no longer accepts responses")
    return hmac.new(cycle.pseudonym_key, str(rater_id).encode(), hashlib.sha256).hexdigest()


class Incomplete(DomainError):
    """Required questions are unanswered; nothing was submitted."""


def said_anything(answers: Answers) -> bool:
    """Whether there is a rating other than "not able to judge" or a comment: a survey
    with neither is a click on Submit by mistake (declining says so instead)."""
    return any(v != NA for v in answers.ratings.values()) or any(
        text.strip() for text in answers.comments.values()
    )


def submit(
    session: Session,
    assignment: Assignment,
    posted: Answers | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Turn the draft, with ``posted`` answers over it, into an anonymous Response.

    Returns the response id. The assignment is claimed first (a conditional UPDATE), so of
    two racing submits one wins and the other gets AlreadySubmitted, and the draft read
    afterwards includes every autosave that committed before. Raises Incomplete when
    required answers are missing or nothing is answered at all (the claim is released;
    the caller saves ``posted`` as the draft so nothing typed is lost) or DomainError
    when the cycle is not open.
    """
    _require_open(assignment)
    _move(session, assignment, AssignmentStatus.SUBMITTED)
    bank = cycle_bank(assignment.cycle)
    answers = load_draft(session, assignment)
    if posted is not None:
        answers = _merged(answers, posted)
    missing = missing_required(bank, answers)
    if missing or not said_anything(answers):
        session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id)
            .values(status=AssignmentStatus.IN_PROGRESS)
            .execution_options(synchronize_session=False)
        )
        session.expire(assignment, ["status"])
        if missing:
            raise Incomplete(f"{len(missing)} required question(s) still need an answer.")
        raise Incomplete(
            "Nothing is answered yet: rate at least one statement or write a comment"
            " (if you can't give feedback, say so with the link at the bottom of the survey)."
        )
    response_id = _store_response(session, assignment, bank, answers, now or utcnow())
    session.execute(delete(Draft).where(Draft.assignment_id == assignment.id))
    return response_id


def _store_response(
    session: Session, assignment: Assignment, bank: Bank, answers: Answers, now: datetime
) -> str:
    response_id = new_response_id()
    response = {
        "id": response_id,
        "cycle_id": assignment.cycle_id,
        "participant_id": assignment.participant_id,
        "relationship": assignment.relationship,
        "rater_pseudonym": (
            SELF_PSEUDONYM
            if assignment.relationship == Relationship.SELF
            else pseudonym(assignment.cycle, assignment.rater_id)
        ),
        "submitted_on": now.date(),
    }
    session.execute(insert(Response), [response])
    rows = [
        {
            "response_id": response["id"],
            "item_id": item.id,
            "value": None if answers.ratings[item.id] == NA else int(answers.ratings[item.id]),
        }
        for item in bank.items
        if item.id in answers.ratings
    ]
    if rows:
        session.execute(insert(ResponseItem), rows)
    comments = [
        {"response_id": response["id"], "question_id": qid, "text": text}
        for qid, text in answers.comments.items()
        if text
    ]
    if comments:
        session.execute(insert(ResponseComment), comments)
    return response_id


def decline(session: Session, assignment: Assignment) -> None:
    """The rater says no. Their draft is discarded; they may still change their mind."""
    _require_open(assignment)
    _move(session, assignment, AssignmentStatus.DECLINED)  # never over a submission
    session.execute(delete(Draft).where(Draft.assignment_id == assignment.id))
    session.flush()


def reopen_declined(session: Session, assignment: Assignment) -> None:
    _require_open(assignment)
    session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == AssignmentStatus.DECLINED)
        .values(status=AssignmentStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    session.expire(assignment, ["status"])


CLOSED = "This review cycle is closed; answers can no longer be changed."


def _require_open(assignment: Assignment) -> None:
    if assignment.cycle.state != CycleState.OPEN:
        raise DomainError(CLOSED)


def role_of(assignment: Assignment) -> str:
    """Which wording the bank uses for this rater: 'self' or 'others'."""
    return "self" if assignment.relationship == Relationship.SELF else "others"
