"""Test data builders (plain functions over a session; they flush, tests commit)."""

from __future__ import annotations

import random
import re

from sqlalchemy import select

from surveys import cycles, responses
from surveys.banks import get_bank
from surveys.models import (
    AccessToken,
    Assignment,
    Employee,
    OutboxMessage,
    Relationship,
    Response,
    ResponseItem,
)
from surveys.tokens import hash_token

BASE_URL = "http://localhost"


def employee(session, external_id, name=None, manager=None, department=None, email=None):
    person = Employee(
        external_id=external_id,
        name=name or f"Person {external_id}",
        email=email or f"{external_id.lower()}@example.com",
        manager=manager,
        department=department,
    )
    session.add(person)
    session.flush()
    return person


def team(session, size=5, department="Eng", prefix="T"):
    """A manager with ``size`` reports; returns (manager, reports)."""
    boss = employee(session, f"{prefix}0", f"{prefix} Boss", department=department)
    reports = [
        employee(session, f"{prefix}{i}", f"{prefix} Member {i}", boss, department)
        for i in range(1, size + 1)
    ]
    return boss, reports


def cycle(session, participants, bank="pulse", **settings):
    settings.setdefault("peer_min", 2)
    settings.setdefault("peer_max", 4)
    return cycles.create_cycle(
        session,
        name="Test cycle",
        bank=get_bank(bank),
        participants=participants,
        settings=settings,
    )


def launched(session, participants, bank="pulse", **settings):
    c = cycle(session, participants, bank=bank, **settings)
    cycles.launch_cycle(session, c, base_url=BASE_URL)
    session.commit()
    return c


LINK = re.compile(r"https?://\S+?/(s|n|a|r)/([A-Za-z0-9_-]+)")


def links(session, kind="s"):
    """Every raw token of ``kind`` found in the outbox bodies, newest last."""
    found = []
    for message in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
        found += [tok for k, tok in LINK.findall(message.body or "") if k == kind]
    return found


def token_for(session, participant, relationship=None, rater=None):
    """The raw rating token of one assignment, read back from the outbox."""
    for raw in links(session, "s"):
        token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
        a: Assignment = token.assignment
        if a.participant.employee_id != participant.id:
            continue
        if relationship is not None and a.relationship != Relationship(relationship):
            continue
        if rater is not None and a.rater_id != rater.id:
            continue
        return raw
    raise LookupError("no such link in the outbox")


def generated_cycle(session, seed: int, *, size: int = 8, na: float = 0.3, **settings):
    """A team of ``size`` rating each other with uneven N/A answers (each answer N/A with
    probability ``na``); some raters never answer."""
    rng = random.Random(seed)
    _, members = team(session, size)
    settings = {"peer_min": 3, "peer_max": 5, **settings}
    cycle = launched(session, members, **settings)
    bank = responses.cycle_bank(cycle)
    for assignment in session.scalars(
        select(Assignment).where(Assignment.cycle_id == cycle.id).order_by(Assignment.id)
    ).all():
        if rng.random() < 0.15:
            continue  # never answered
        lenient = rng.choice([0, 0, 1])
        ratings: dict[str, int | str] = {
            item.id: responses.NA if rng.random() < na else min(5, rng.randint(1, 4) + lenient)
            for item in bank.items
        }
        responses.save_draft(session, assignment, responses.Answers(ratings, {}))
        responses.submit(session, assignment)
    cycles.close_cycle(session, cycle)
    session.commit()
    return cycle


def stored_answers(session, cycle) -> list[tuple]:
    """The cycle's stored answers row by row through the ORM, as a long table:
    (rater pseudonym, participant id, item id, relationship, value or None)."""
    return session.execute(
        select(
            Response.rater_pseudonym,
            Response.participant_id,
            ResponseItem.item_id,
            Response.relationship,
            ResponseItem.value,
        )
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Response.cycle_id == cycle.id)
    ).all()
