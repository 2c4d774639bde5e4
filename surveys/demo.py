"""A demo organisation with an open cycle, some answers already in, for newcomers to click."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveys import accounts, audit, cycles, releases, responses
from surveys.banks import get_bank
from surveys.db import utcnow
from surveys.models import (
    AccessToken,
    Assignment,
    AssignmentStatus,
    Cycle,
    Employee,
    OutboxMessage,
    Relationship,
    UserRole,
)
from surveys.tokens import hash_token

DEMO_CYCLE = "Demo 360 – Autumn 2026"
#: An earlier, released cycle: its reports can be opened at once, and the autumn reports
#: show the change since then (the trend section).
EARLIER_CYCLE = "Demo 360 – Spring 2026"
#: The console account the demo creates on development machines (never in production).
DEMO_ADMIN_EMAIL = "admin@demo.example"
DEMO_ADMIN_PASSWORD = "demo-admin-password"  # noqa: S105 - printed to the newcomer on purpose

#: (id, name, manager id, department)
PEOPLE = [
    ("D001", "Amara Okafor", None, "Leadership"),
    ("D002", "Lukas Becker", "D001", "Engineering"),
    ("D003", "Mei Chen", "D002", "Engineering"),
    ("D004", "Diego Alvarez", "D002", "Engineering"),
    ("D005", "Priya Raman", "D002", "Engineering"),
    ("D006", "Sofia Rossi", "D002", "Engineering"),
    ("D007", "Kwame Mensah", "D002", "Engineering"),
    ("D008", "Hannah Schmidt", "D001", "Product"),
    ("D009", "Yuki Tanaka", "D008", "Product"),
    ("D010", "Tomás Silva", "D008", "Product"),
    ("D011", "Fatima Zahra", "D008", "Product"),
    ("D012", "Erik Larsen", "D008", "Product"),
    ("D013", "Aisha Bello", "D001", "People"),
    ("D014", "Ravi Patel", "D013", "People"),
    ("D015", "Olivia Brown", "D013", "People"),
    ("D016", "Noah Williams", "D013", "People"),
]


@dataclass
class DemoResult:
    cycle: Cycle
    created: bool
    open_links: list[tuple[str, str]] = field(default_factory=list)


def load_demo(session: Session, *, base_url: str, seed: int = 360) -> DemoResult:
    """Create the demo org and cycle once; later calls only list the open links again."""
    existing = session.scalar(select(Cycle).where(Cycle.name == DEMO_CYCLE))
    if existing is not None:
        return DemoResult(existing, False, open_links(session, existing))
    by_id: dict[str, Employee] = {
        e.external_id: e
        for e in session.scalars(
            select(Employee).where(Employee.external_id.in_([p[0] for p in PEOPLE]))
        )
    }
    for external_id, name, manager_id, department in PEOPLE:
        person = by_id.get(external_id) or Employee(external_id=external_id, name=name)
        person.email = _email(name)
        person.department = department
        person.manager = by_id.get(manager_id) if manager_id else None
        session.add(person)
        by_id[external_id] = person
    session.flush()
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    _released_cycle(session, list(by_id.values()), base_url, rng)
    cycle = cycles.create_cycle(
        session,
        name=DEMO_CYCLE,
        bank=get_bank("individual_contributor"),
        participants=list(by_id.values()),
        settings={
            "peer_min": 2,
            "peer_max": 4,
            "close_date": (utcnow() + timedelta(days=21)).date().isoformat(),
        },
    )
    # The CEO has no peers in a 16-person company; the demo launches anyway.
    cycles.launch_cycle(session, cycle, base_url=base_url, allow_short=True)
    _answer_some(session, cycle, rng)
    return DemoResult(cycle, True, open_links(session, cycle))


def _released_cycle(
    session: Session, people: list[Employee], base_url: str, rng: random.Random
) -> Cycle:
    """The spring cycle, answered by nearly everyone, closed and released."""
    cycle = cycles.create_cycle(
        session,
        name=EARLIER_CYCLE,
        bank=get_bank("individual_contributor"),
        participants=people,
        settings={"peer_min": 2, "peer_max": 4},
    )
    cycles.launch_cycle(session, cycle, base_url=base_url, allow_short=True)
    _answer_some(session, cycle, rng, share=0.95)
    cycles.close_cycle(session, cycle)
    releases.release_cycle(session, cycle, base_url=base_url)
    return cycle


def report_links(session: Session, cycle: Cycle) -> list[tuple[str, str]]:
    """(participant name, URL) of the report links emailed at release."""
    found = []
    link = re.compile(r"https?://\S+/r/(\S+)")
    for message in session.scalars(
        select(OutboxMessage).where(OutboxMessage.cycle_id == cycle.id).order_by(OutboxMessage.id)
    ):
        found += [(message.to_name, m.group(0)) for m in link.finditer(message.body or "")]
    return found


def _email(name: str) -> str:
    local = re.sub(r"[^a-z.]", "", name.lower().replace(" ", ".").replace("á", "a"))
    return f"{local}@demo.example"


def _answer_some(session: Session, cycle: Cycle, rng: random.Random, share: float = 0.6) -> None:
    """Submit about ``share`` of the surveys with plausible answers (leaves the rest to
    click); see :func:`_chosen`."""
    bank = responses.cycle_bank(cycle)
    talent = {p.id: rng.gauss(0, 0.6) for p in cycle.participants}
    assignments = session.scalars(
        select(Assignment).where(Assignment.cycle_id == cycle.id).order_by(Assignment.id)
    ).all()
    chosen = _chosen(assignments, rng, share)
    lenient: dict[int, float] = {}
    for assignment in assignments:
        if assignment.id not in chosen:
            continue
        bias = lenient.setdefault(assignment.rater_id, rng.gauss(0.2, 0.4))
        ratings: dict[str, int | str] = {}
        for item in bank.items:
            if rng.random() < 0.05:
                ratings[item.id] = responses.NA
                continue
            value = 3.4 + talent[assignment.participant_id] + bias + rng.gauss(0, 0.7)
            ratings[item.id] = min(bank.scale.max, max(bank.scale.min, round(value)))
        comments = {}
        if bank.open_questions and rng.random() < 0.7:
            question, theirs, own = rng.choice(COMMENTS)
            known = {q.id for q in bank.open_questions}
            question = question if question in known else bank.open_questions[0].id
            is_self = assignment.relationship == Relationship.SELF
            comments[question] = own if is_self else theirs
        responses.save_draft(session, assignment, responses.Answers(ratings, comments))
        responses.submit(session, assignment)


def _chosen(assignments: Sequence[Assignment], rng: random.Random, share: float) -> set[int]:
    """Ids of the assignments to answer: ``share`` of each participant's peers, direct
    reports and others, at least three where there are (two for every fifth participant
    when ``share`` is below 0.9, to show what the anonymity rules hide), and self and
    manager at random."""
    by_participant: dict[int, list[Assignment]] = {}
    for assignment in assignments:
        by_participant.setdefault(assignment.participant_id, []).append(assignment)
    chosen: set[int] = set()
    for k, (_, theirs) in enumerate(sorted(by_participant.items())):
        alone = (Relationship.SELF, Relationship.MANAGER)
        colleagues = [a for a in theirs if a.relationship not in alone]
        rng.shuffle(colleagues)
        few = share < 0.9 and k % 5 == 4  # not in the nearly complete spring cycle
        wanted = 2 if few else max(3, round(share * len(colleagues)))
        chosen.update(a.id for a in colleagues[:wanted])
        chosen.update(a.id for a in theirs if a.relationship in alone and rng.random() < share)
    return chosen


#: (open question id, a colleague's comment, the participant's own) — the bundled banks'
#: ``strengths`` and ``development`` questions.
COMMENTS = [
    (
        "strengths",
        "Always explains the why behind a decision, which makes it easy to follow.",
        "I explain the reasons behind my decisions so people can follow them.",
    ),
    (
        "strengths",
        "Very reliable: when something is promised, it gets done.",
        "I keep my promises and finish what I start.",
    ),
    (
        "strengths",
        "Great at unblocking others, sometimes at the cost of their own focus time.",
        "I unblock colleagues quickly, even when it costs me focus time.",
    ),
    (
        "strengths",
        "Asks good questions in reviews and shares credit generously.",
        "I ask good questions in reviews and give credit where it is due.",
    ),
    (
        "development",
        "Could share progress earlier; we sometimes learn about problems late.",
        "I could share progress earlier, before problems grow.",
    ),
]


def open_links(session: Session, cycle: Cycle) -> list[tuple[str, str]]:
    """(description, URL) of survey links still waiting in the outbox for unanswered surveys."""
    found = []
    link = re.compile(r"(https?://\S+/s/(\S+))")
    for message in session.scalars(
        select(OutboxMessage).where(OutboxMessage.cycle_id == cycle.id).order_by(OutboxMessage.id)
    ):
        for url, raw in link.findall(message.body or ""):
            assignment = _assignment_for(session, raw)
            if assignment is not None and assignment.status in (
                AssignmentStatus.PENDING,
                AssignmentStatus.IN_PROGRESS,
            ):
                who = (
                    "self-assessment"
                    if assignment.relationship.value == "self"
                    else (f"feedback for {assignment.participant.employee.name}")
                )
                found.append((f"{message.to_name}: {who} ({assignment.relationship.label})", url))
    return found


def _assignment_for(session: Session, raw: str) -> Assignment | None:
    token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
    return token.assignment if token is not None else None


def ensure_demo_admin(session: Session) -> bool:
    """Create the demo console account if missing; ``True`` when it was created."""
    if accounts.find_user(session, DEMO_ADMIN_EMAIL) is not None:
        return False
    accounts.create_user(
        session, DEMO_ADMIN_EMAIL, "Demo Admin", DEMO_ADMIN_PASSWORD, role=UserRole.ADMIN
    )
    audit.record(
        session, audit.COMMAND_LINE, "user.create", f"user:{DEMO_ADMIN_EMAIL}", {"demo": True}
    )
    return True
