"""A small but complete installation for the security suite: every kind of row and link.

One world per test (the ``app`` fixture empties the tables afterwards):

* a **released** cycle (team ``T``, two participants with report links),
* an **open** cycle (team ``U``, rating links),
* a **nominating** cycle (team ``V``, a nomination link and, once nominated, an approval
  link),
* a **draft** cycle (for the set-up wizard's URLs),
* console accounts ``hr``, ``admin`` and a ``target`` account for user-management URLs,
  each console account with two API tokens (one to use, one a route may revoke).

URL arguments of any route are filled by :func:`url_values` from these rows, so a new
route with the usual argument names is covered without touching the tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.routing.converters import NumberConverter

from surveys import accounts, cycles
from surveys.banks import get_bank
from surveys.db import Base
from surveys.models import Employee, Participant, UserRole
from tests import factories as f
from tests.webapp.console import PASSWORD
from tests.webapp.test_report_links import released_with_a_survey_link, report_links
from webapp.extensions import db

#: Console accounts of the matrix (email → role).
HR_EMAIL = "hr-matrix@example.com"
ADMIN_EMAIL = "admin-matrix@example.com"
TARGET_EMAIL = "target-matrix@example.com"
FORGED = "ForgedTokenThatMatchesNothing_0123456789abcd"


@dataclass
class World:
    released_cycle: int
    open_cycle: int
    nominating_cycle: int
    draft_cycle: int
    participant: int  # released cycle, has report_token
    other_participant: int  # released cycle, another person
    open_participant: int
    nominating_participant: int
    nominating_external_id: str
    employee: int
    users: dict[str, int]  # "hr" / "admin" / "target" → user id
    api_tokens: dict[str, str]  # "hr" / "admin" → raw bearer token
    revocable_tokens: dict[str, int]  # "hr" / "admin" → id of a token a route may revoke
    #: Raw link tokens by kind: survey (open cycle), nomination, approval, report, …
    links: dict[str, str] = field(default_factory=dict)


def build(app: Flask, client_factory) -> World:
    """Create the world's rows (committed); ``client_factory()`` gives a fresh test client."""
    with app.app_context():
        session = db.session
        rel_cycle, participant, closed_survey = released_with_a_survey_link(session, 2)
        reports = report_links(session)
        other = next(p for p in rel_cycle.participants if p.id != participant.id)

        _, team_u = f.team(session, 3, prefix="U", department="Ops")
        open_cycle = f.launched(session, team_u)
        survey = f.token_for(session, team_u[0])
        open_participant = session.scalar(
            select(Participant).where(
                Participant.cycle_id == open_cycle.id, Participant.employee_id == team_u[0].id
            )
        )

        boss = f.employee(session, "V0", "V Boss", department="Sales")
        nominee = f.employee(session, "V1", "V Lead", boss, "Sales")
        for k in range(2, 6):
            f.employee(session, f"V{k}", f"V Peer {k}", boss, "Sales")
        nominating = f.cycle(session, [nominee], nomination_mode="participant", peer_min=2)
        cycles.start_nominations(session, nominating, base_url=f.BASE_URL)
        session.commit()
        (nomination,) = f.links(session, "n")
        nominating_participant = nominating.participants[0]

        draft = cycles.create_cycle(
            session,
            name="Draft cycle",
            bank=get_bank("pulse"),
            participants=[],
            settings={"peer_min": 2, "peer_max": 4},
        )

        users, api_tokens, revocable = {}, {}, {}
        for key, email, role in (
            ("hr", HR_EMAIL, UserRole.HR),
            ("admin", ADMIN_EMAIL, UserRole.ADMIN),
            ("target", TARGET_EMAIL, UserRole.HR),
        ):
            user = accounts.create_user(session, email, key.title(), PASSWORD, role)
            users[key] = user.id
            if key != "target":
                _, api_tokens[key] = accounts.create_api_token(session, user, f"{key} matrix")
                token, _ = accounts.create_api_token(session, user, f"{key} revocable")
                revocable[key] = token.id
        session.commit()
        world = World(
            released_cycle=rel_cycle.id,
            open_cycle=open_cycle.id,
            nominating_cycle=nominating.id,
            draft_cycle=draft.id,
            participant=participant.id,
            other_participant=other.id,
            open_participant=open_participant.id,
            nominating_participant=nominating_participant.id,
            nominating_external_id=nominee.external_id,
            employee=team_u[1].id,
            users=users,
            api_tokens=api_tokens,
            revocable_tokens=revocable,
        )
        world.links.update(
            survey=survey,
            closed_survey=closed_survey,
            nomination=nomination,
            report=reports[participant.id],
            other_report=reports[other.id],
        )
    # The manager's approval link exists once the participant has nominated.
    peers = _peer_ids(app)
    reply = client_factory().post(f"/n/{nomination}", data={"nominee": [str(p) for p in peers]})
    assert reply.status_code in (200, 302, 303), reply.status_code
    with app.app_context():
        approvals = f.links(db.session, "a")
        assert approvals, "nominating did not queue an approval link"
        world.links["approval"] = approvals[-1]
    return world


def _peer_ids(app: Flask) -> list[int]:
    """Three of the nominating participant's colleagues (V2–V4)."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(Employee.id).where(Employee.external_id.in_(["V2", "V3", "V4"]))
            )
        )


def cycle_for(rule: str, world: World) -> tuple[int, int]:
    """(cycle id, participant id) that makes sense for ``rule``'s kind of page."""
    if "/cycles/new/" in rule:
        return world.draft_cycle, world.nominating_participant
    if "nominations" in rule or (rule.startswith("/admin/") and rule.endswith("/launch")):
        return world.nominating_cycle, world.nominating_participant
    if any(word in rule for word in ("release", "export", "participants", "scores")):
        return world.released_cycle, world.participant
    return world.open_cycle, world.open_participant


class UnknownArgument(LookupError):
    """A route argument this suite does not know how to fill (add it to url_values)."""


def url_values(rule: Rule, world: World, actor: str, link_token: str | None = None) -> dict:
    """Values for every argument of ``rule``, from real rows, as ``actor`` would use them."""
    cycle_id, participant_id = cycle_for(rule.rule, world)
    values: dict[str, object] = {}
    for name in rule.arguments:
        if name == "cycle_id":
            values[name] = cycle_id
        elif name == "participant_id":
            values[name] = participant_id
        elif name == "employee_id":
            # Console: an int row id; API: the external (org chart) id.
            is_int = isinstance(rule._converters[name], NumberConverter)
            values[name] = world.employee if is_int else world.nominating_external_id
        elif name == "user_id":
            values[name] = world.users["target"]
        elif name == "token_id":
            values[name] = world.revocable_tokens.get(actor, world.revocable_tokens["hr"])
        elif name == "key":
            values[name] = "pulse"
        elif name == "step":
            values[name] = "basics"
        elif name == "token":
            values[name] = link_token or FORGED
        else:
            raise UnknownArgument(
                f"{rule.endpoint} {rule.rule}: no value for <{name}>; "
                "teach tests/security/world.py:url_values about it"
            )
    return values


def build_url(app: Flask, rule: Rule, values: dict) -> str:
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        return adapter.build(rule.endpoint, values, method=next(iter(methods(rule))))


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def routes(app: Flask) -> list[Rule]:
    """Every rule but static files, in a stable order."""
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"),
        key=lambda r: (r.rule, r.endpoint),
    )


def sign_in(client: FlaskClient, email: str) -> None:
    reply = client.post("/admin/login", data={"email": email, "password": PASSWORD})
    assert reply.status_code == 302, f"sign-in of {email} failed: {reply.status_code}"


def fingerprint(app: Flask) -> str:
    """A digest of every row of every table: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                rows = conn.execute(sa.select(table)).all()
                digest.update(table.name.encode())
                for row in sorted(repr(tuple(r)) for r in rows):
                    digest.update(row.encode())
    return digest.hexdigest()


def sqlite_only(database_url: str) -> None:
    """Who may open what does not depend on the database: one backend keeps the suite fast."""
    import pytest

    if not database_url.startswith("sqlite"):
        pytest.skip("backend-independent check; runs on SQLite only")


def fast_pdfs(monkeypatch) -> None:
    """PDF routes answer a stub document: the matrix checks who gets one, not its layout
    (rendering is tested in tests/webapp/test_reports.py and test_xss.py)."""
    from webapp.reports import routes

    monkeypatch.setattr(routes, "report_pdf", lambda report, app: b"%PDF-1.7 stub")
