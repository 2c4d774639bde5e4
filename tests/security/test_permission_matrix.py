"""Permission matrix: every route in ``app.url_map`` × every kind of visitor.

Routes are enumerated from the URL map, so a route added later is covered automatically;
one that belongs to no known family fails :func:`test_every_route_belongs_to_a_family`
with its name (add a rule to ``FAMILIES`` and an expectation below).

Actors: ``anonymous``; ``rater`` (a client that opened its valid /s/ link, no login);
``participant`` (a client that opened its valid /r/ report link); ``hr`` and ``admin``
(console session cookies). For the API, two more columns: ``hr token`` / ``admin token``
(a bearer token and no cookie).

Expected, by family:

* ``/admin/**`` (not the login page): anonymous, rater and participant are redirected
  to the login page, and a POST changes no row; ``hr`` gets 403 on user management
  (``USER_MANAGEMENT``) and neither 401 nor 403 elsewhere; ``admin`` never 401/403.
  Signed-in actors never get a 5xx or a login redirect.
* ``/api/v1/**`` (not the OpenAPI document): 401 without a bearer token, even with a
  console session cookie; with a token, never 401/403/5xx.
* link pages ``/s/ /n/ /a/ /r/``: 404 for a forged token and for every token of the wrong
  kind; a token of the right kind works (see also test_link_pages_accept_only_their_kind).
* ``/dev/**``: development only; absent when ``DEV_PAGES`` is False (production config).
* ``/`` and ``/healthz``: public.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.routing import Rule

from tests.conftest import TEST_CONFIG
from tests.security import world as w
from webapp import create_app
from webapp.config import from_env
from webapp.extensions import db

CONSOLE_ACTORS = ("anonymous", "rater", "participant", "hr", "admin")
API_ACTORS = (*CONSOLE_ACTORS, "hr token", "admin token")
#: Console views only ``admin`` accounts may use (``hr`` gets 403).
USER_MANAGEMENT = frozenset(
    {
        "admin.users",
        "admin.create_user",
        "admin.deactivate_user",
        "admin.reactivate_user",
        "admin.change_role",
    }
)


def is_user_management(rule: Rule) -> bool:
    """``admin.users*`` views and anything added under /admin/users later."""
    return rule.endpoint in USER_MANAGEMENT or rule.rule.startswith("/admin/users")


#: Link prefix → the kind of token it accepts.
LINK_KINDS = {"/s/": "survey", "/n/": "nomination", "/a/": "approval", "/r/": "report"}
#: Tokens that open nothing on any link page but their own: every kind, and worse.
TOKEN_KINDS = ("survey", "nomination", "approval", "report", "closed_survey")


def family(rule: Rule) -> str | None:
    """The route family that decides who may use ``rule`` (None: unknown, must fail)."""
    path = rule.rule
    if rule.endpoint == "admin.login":
        return "login"
    if path.startswith("/admin/"):
        return "console"
    if path == "/api/v1/openapi.json":
        return "api-doc"
    if path.startswith("/api/v1/"):
        return "api"
    if any(path.startswith(prefix) for prefix in LINK_KINDS):
        return "link"
    if path.startswith("/dev/"):
        return "dev"
    if path in ("/", "/healthz"):
        return "public"
    return None


@pytest.fixture
def world(app, database_url, monkeypatch) -> w.World:
    w.sqlite_only(database_url)
    app.config["LINK_GUESS_LIMIT"] = "100000 per minute"  # the matrix guesses on purpose
    app.config["API_RATELIMIT"] = "100000 per minute"
    app.config["API_TOKEN_GUESS_LIMIT"] = "100000 per minute"
    w.fast_pdfs(monkeypatch)
    return w.build(app, app.test_client)


@dataclass
class Cell:
    actor: str
    method: str
    url: str
    status: int
    location: str
    problem: str = ""

    @property
    def outcome(self) -> str:
        if self.status in (301, 302, 303, 307, 308) and "/admin/login" in self.location:
            return "login"
        return str(self.status)


def clients(app: Flask, world: w.World) -> dict[str, Callable]:
    """A client per actor; the signed-in ones are created once and reused."""
    rater = app.test_client()
    assert rater.get(f"/s/{world.links['survey']}").status_code == 200
    participant = app.test_client()
    assert participant.get(f"/r/{world.links['report']}").status_code == 200
    hr, admin = app.test_client(), app.test_client()
    w.sign_in(hr, w.HR_EMAIL)
    w.sign_in(admin, w.ADMIN_EMAIL)
    return {
        "anonymous": app.test_client(),
        "rater": rater,
        "participant": participant,
        "hr": hr,
        "admin": admin,
    }


def request(client, method: str, url: str, headers: dict | None = None):
    kwargs: dict = {"headers": headers or {}}
    if method in ("POST", "PUT", "PATCH") and url.startswith("/api/"):
        kwargs["json"] = {}
    return client.open(url, method=method, **kwargs)


def _order(rule_method: tuple[Rule, str]) -> tuple:
    """GETs first, then changes; signing out last (it ends the session the rest needs)."""
    rule, method = rule_method
    return (rule.endpoint == "admin.logout", method != "GET", rule.rule)


def _table(cells: list[Cell]) -> str:
    width = max((len(f"{c.method} {c.url}") for c in cells), default=10)
    lines = [f"{'route':<{width}}  actor         outcome  problem"]
    for c in cells:
        lines.append(
            f"{c.method + ' ' + c.url:<{width}}  {c.actor:<12}  {c.outcome:<7}  {c.problem}"
        )
    return "\n".join(lines)


def _report(cells: list[Cell]) -> None:
    print("\n" + _table(cells))
    bad = [c for c in cells if c.problem]
    assert not bad, f"{len(bad)} permission problems:\n" + _table(bad)


def test_every_route_belongs_to_a_family(app):
    unknown = [f"{r.endpoint} {r.rule}" for r in w.routes(app) if family(r) is None]
    assert not unknown, (
        "routes without a permission rule (add them to tests/security/"
        "test_permission_matrix.py:family and say who may use them):\n  " + "\n  ".join(unknown)
    )


def test_every_route_argument_can_be_filled(app):
    dummy = w.World(*range(1, 9), "E1", 9, {"target": 1}, {}, {"hr": 1})
    for rule in w.routes(app):
        w.url_values(rule, dummy, "admin")  # raises UnknownArgument with the route's name


def test_console_matrix(app, world):
    """/admin/**: login redirect for visitors (POSTs change nothing), 403 only where meant."""
    actors = clients(app, world)
    pairs = [
        (rule, method)
        for rule in w.routes(app)
        if family(rule) in ("console", "login")
        for method in w.methods(rule)
    ]
    cells = []
    for actor in CONSOLE_ACTORS:
        cells += _console_sweep(app, world, actor, actors[actor], sorted(pairs, key=_order))
    _report(cells)


def _console_sweep(app, world, actor, client, pairs, *, each: bool = False) -> list[Cell]:
    """One actor over every console route. Signed-out actors: the database is compared
    before and after the sweep, and when it changed, the sweep runs again comparing it
    around every request (``each``) to name the culprit."""
    signed_out = actor not in ("hr", "admin")
    start = w.fingerprint(app) if signed_out else ""
    cells = []
    for rule, method in pairs:
        url = w.build_url(app, rule, w.url_values(rule, world, actor))
        before = w.fingerprint(app) if each and method != "GET" else ""
        reply = request(client, method, url)
        cell = Cell(actor, method, url, reply.status_code, reply.headers.get("Location", ""))
        changed = bool(before) and w.fingerprint(app) != before
        cell.problem = _console_problem(rule, method, cell, changed)
        cells.append(cell)
        if rule.endpoint == "admin.logout" and not signed_out:
            w.sign_in(client, w.HR_EMAIL if actor == "hr" else w.ADMIN_EMAIL)
    if signed_out and not each and w.fingerprint(app) != start:
        cells = _console_sweep(app, world, actor, client, pairs, each=True)
        if not any(c.problem for c in cells):
            cells[-1].problem = "the database changed during the signed-out sweep"
    return cells


def _console_problem(rule: Rule, method: str, cell: Cell, changed: bool) -> str:
    if cell.status >= 500:
        return "server error"
    if rule.endpoint == "admin.login":
        return "login page refused" if cell.status in (401, 403) else ""
    if cell.actor in ("anonymous", "rater", "participant"):
        if cell.outcome != "login":
            return "expected a redirect to the login page"
        if changed:
            return "a signed-out POST changed the database"
        return ""
    if cell.outcome == "login" and rule.endpoint != "admin.logout":
        return "signed-in account sent to the login page"
    if cell.actor == "hr" and is_user_management(rule):
        return "" if cell.status == 403 else "hr must get 403 on user management"
    if cell.status in (401, 403):
        return f"{cell.actor} refused"
    return ""


def test_api_matrix(app, world):
    """/api/v1/**: a bearer token or 401 — a console cookie alone is never enough."""
    actors = clients(app, world)
    bearer = {
        "hr token": {"Authorization": f"Bearer {world.api_tokens['hr']}"},
        "admin token": {"Authorization": f"Bearer {world.api_tokens['admin']}"},
    }
    pairs = [
        (rule, method)
        for rule in w.routes(app)
        if family(rule) in ("api", "api-doc")
        for method in w.methods(rule)
    ]
    cells = []
    for actor in API_ACTORS:
        client = actors.get(actor) or app.test_client()
        for rule, method in sorted(pairs, key=_order):
            url = w.build_url(app, rule, w.url_values(rule, world, "admin"))
            reply = request(client, method, url, bearer.get(actor))
            cell = Cell(actor, method, url, reply.status_code, reply.headers.get("Location", ""))
            if cell.status >= 500:
                cell.problem = "server error"
            elif family(rule) == "api-doc":
                cell.problem = "" if cell.status == 200 else "the OpenAPI document is public"
            elif actor in bearer:
                cell.problem = f"{actor} refused" if cell.status in (401, 403) else ""
            elif cell.status != 401:
                cell.problem = "expected 401 without a bearer token"
            cells.append(cell)
    _report(cells)


def test_link_pages_accept_only_their_kind(app, world):
    """Each link route × each kind of token: only its own kind opens it, the rest is 404
    (a survey link of a closed cycle: 410, the page saying the review closed)."""
    cells = []
    for rule in w.routes(app):
        if family(rule) != "link":
            continue
        prefix = rule.rule[:3]
        for method in w.methods(rule):
            for kind in (*TOKEN_KINDS, "other_report", "forged"):
                token = w.FORGED if kind == "forged" else world.links[kind]
                url = w.build_url(app, rule, w.url_values(rule, world, "anonymous", token))
                reply = request(app.test_client(), method, url)
                cell = Cell(kind, method, url, reply.status_code, reply.headers.get("Location", ""))
                right = LINK_KINDS[prefix] == kind or (prefix == "/r/" and kind == "other_report")
                closed = prefix == "/s/" and kind == "closed_survey"
                if cell.status >= 500:
                    cell.problem = "server error"
                elif right and cell.status == 404:
                    cell.problem = "its own kind of token was refused"
                elif closed and cell.status != 410:
                    cell.problem = "expected 410: the survey's cycle has closed"
                elif not right and not closed and cell.status != 404:
                    cell.problem = "expected 404 for a token of another kind"
                cells.append(cell)
    _report(cells)


def test_a_report_link_shows_only_its_participant(app, world):
    """A participant's link opens their report; nothing names the other participant."""
    from surveys.models import Participant

    with app.app_context():
        mine = db.session.get(Participant, world.participant).employee.name
        theirs = db.session.get(Participant, world.other_participant).employee.name
    page = app.test_client().get(f"/r/{world.links['report']}").get_data(as_text=True)
    assert mine in page
    assert theirs not in page


def test_console_urls_refuse_a_participant_of_another_cycle(app, world):
    """Cycle and participant ids in console URLs must belong together (no id mixing)."""
    client = app.test_client()
    w.sign_in(client, w.ADMIN_EMAIL)
    other = world.nominating_participant  # not in the released cycle
    for url in (
        f"/admin/cycles/{world.released_cycle}/participants/{other}/report",
        f"/admin/cycles/{world.released_cycle}/participants/{other}/report.pdf",
        f"/admin/cycles/{world.nominating_cycle}/nominations/{world.participant}",
    ):
        assert client.get(url).status_code == 404, url


def test_link_and_public_pages_ignore_console_sessions(app, world):
    """A console cookie grants nothing on link pages: wrong-kind tokens stay 404."""
    actors = clients(app, world)
    for actor in ("hr", "admin"):
        for prefix, kind in LINK_KINDS.items():
            for other in TOKEN_KINDS:
                if other == kind:
                    continue
                url = f"{prefix}{world.links[other]}"
                closed = prefix == "/s/" and other == "closed_survey"
                assert actors[actor].get(url).status_code == (410 if closed else 404), (actor, url)
    for rule in w.routes(app):
        if family(rule) == "public":
            for actor, client in actors.items():
                assert client.get(rule.rule).status_code == 200, (actor, rule.rule)


def test_dev_pages_are_absent_in_a_production_configuration(tmp_path):
    """/dev/outbox lists every emailed link: it must not exist outside development."""
    env = {
        "FEEDBACK360_ENV": "production",
        "SECRET_KEY": "a-production-secret-of-at-least-32-characters",
        "MAIL_URL": "smtp://mail.example.com:587",
        "BASE_URL": "https://feedback.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "QUEUE_URL": "memory://",
    }
    config = from_env(tmp_path, env)
    assert config["DEV_PAGES"] is False
    prod = create_app({**config, "TESTING": True, "SERVER_NAME": "localhost"})
    try:
        dev_rules = [r.rule for r in prod.url_map.iter_rules() if r.rule.startswith("/dev")]
        assert dev_rules == []
        assert prod.test_client().get("/dev/outbox").status_code == 404
    finally:
        with prod.app_context():
            db.engine.dispose()


def test_dev_pages_exist_only_with_dev_pages(tmp_path):
    off = create_app(
        {**TEST_CONFIG, "DEV_PAGES": False, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    )
    try:
        assert not [r for r in off.url_map.iter_rules() if r.rule.startswith("/dev")]
    finally:
        with off.app_context():
            db.engine.dispose()


def test_every_form_post_needs_a_csrf_token(app, world):
    """With CSRF protection on (as in production), a POST without the token changes
    nothing, on console and link pages alike, even for a signed-in admin. The API is
    exempt: it reads no cookie, so a forged cross-site request has no credential."""
    admin = app.test_client()
    w.sign_in(admin, w.ADMIN_EMAIL)
    app.config["WTF_CSRF_ENABLED"] = True  # the app fixture restores the test setting
    before = w.fingerprint(app)
    cells = []
    for rule in w.routes(app):
        if family(rule) not in ("console", "login", "link"):
            continue
        token = world.links[LINK_KINDS[rule.rule[:3]]] if family(rule) == "link" else None
        for method in w.methods(rule):
            if method == "GET":
                continue
            url = w.build_url(app, rule, w.url_values(rule, world, "admin", token))
            reply = request(admin, method, url)
            cell = Cell("admin", method, url, reply.status_code, reply.headers.get("Location", ""))
            if cell.status != 400:
                cell.problem = "accepted a POST without a CSRF token"
            cells.append(cell)
    assert cells
    _report(cells)
    assert w.fingerprint(app) == before, "a POST without a CSRF token changed the database"


def test_hr_cannot_revoke_another_accounts_api_token(app, world):
    """Token ids are guessable integers: the owner check, not the URL, decides."""
    hr = app.test_client()
    w.sign_in(hr, w.HR_EMAIL)
    before = w.fingerprint(app)
    reply = hr.post(f"/admin/api-tokens/{world.revocable_tokens['admin']}/revoke")
    assert reply.status_code == 403
    assert w.fingerprint(app) == before


def test_guessing_api_tokens_is_slowed_down(app, database_url):
    """The API's own budget is per token, so each guessed token would get a fresh one:
    wrong tokens (401) must also spend a budget per client address, like unknown links."""
    w.sqlite_only(database_url)
    app.config["API_TOKEN_GUESS_LIMIT"] = "5 per 10 minutes"  # the app fixture restores it
    client = app.test_client()
    statuses = [
        client.get("/api/v1/cycles", headers={"Authorization": f"Bearer guess-{n}"}).status_code
        for n in range(7)
    ]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    other = client.get(
        "/api/v1/cycles",
        headers={"Authorization": "Bearer guess-x"},
        environ_overrides={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 401
