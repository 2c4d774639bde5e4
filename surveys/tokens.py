"""Emailed links: 256-bit random tokens of which only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from surveys.errors import LinkClosed, NotFound
from surveys.models import AccessToken, Assignment, CycleState, Participant, TokenPurpose

TOKEN_BYTES = 32


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def new_token(purpose: TokenPurpose, **target: int | None) -> tuple[str, dict[str, object]]:
    """A raw token and the ``insert(AccessToken)`` row that stores its hash (bulk minting).

    ``target`` names what the link opens: ``cycle_id`` and ``assignment_id`` or
    ``participant_id``.
    """
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    return raw, {"token_hash": hash_token(raw), "purpose": purpose, **target}


def issue_token(
    session: Session,
    purpose: TokenPurpose,
    *,
    cycle_id: int,
    assignment: Assignment | None = None,
    participant: Participant | None = None,
) -> str:
    """Create a token row and return the raw token (to be put in an email, nowhere else)."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        AccessToken(
            token_hash=hash_token(raw),
            purpose=purpose,
            cycle_id=cycle_id,
            assignment=assignment,
            participant=participant,
        )
    )
    return raw


#: In which cycle states a link of each purpose works.
VALID_IN = {
    TokenPurpose.RATE: {CycleState.OPEN},
    TokenPurpose.NOMINATE: {CycleState.NOMINATING},
    TokenPurpose.APPROVE: {CycleState.NOMINATING},
    TokenPurpose.REPORT: {CycleState.RELEASED},
}


#: What can follow a token pasted from a sentence: anything outside its alphabet.
_PASTED_TAIL = re.compile(r"[^A-Za-z0-9_-]+$")


def resolve_token(session: Session, raw: str, purpose: TokenPurpose) -> AccessToken:
    """Find a live token of this purpose, or raise NotFound (one message for every cause;
    :class:`LinkClosed`, a NotFound, for a real one whose cycle has moved on)."""
    # A link copied from an email often takes the sentence's "." or ")" along; a token
    # never holds such characters.
    raw = _PASTED_TAIL.sub("", raw or "")
    if not raw or len(raw) > 100:
        raise NotFound("This link is not valid.")
    # One query for what every link page reads: the cycle, the assignment and whose it is.
    token = session.scalar(
        select(AccessToken)
        .where(AccessToken.token_hash == hash_token(raw))
        .options(
            joinedload(AccessToken.cycle),
            joinedload(AccessToken.assignment)
            .joinedload(Assignment.participant)
            .joinedload(Participant.employee),
        )
    )
    if token is None or token.purpose != purpose:
        raise NotFound("This link is not valid.")
    if token.cycle.state not in VALID_IN[purpose]:
        raise LinkClosed(token.cycle, token.assignment)
    return token
