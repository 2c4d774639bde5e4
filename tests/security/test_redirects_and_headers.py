"""Open redirects, security headers on every route, and session cookie flags.

* Every place that redirects to a caller-supplied ``next`` stays on this site, for every
  trick browsers fall for (``//host``, ``/\\host``, schemes, tabs, encodings).
* Every GET route in ``app.url_map`` (plus error pages and static files), as a visitor and
  as a signed-in account, answers with a Content-Security-Policy, ``nosniff``,
  ``no-referrer`` and no framing (``frame-ancestors 'none'`` or ``X-Frame-Options: DENY``),
  and every page but the static files with ``Cache-Control: no-store``.
* The session cookie is HttpOnly and SameSite=Lax everywhere, and Secure in the
  production configuration built by ``webapp.config.from_env``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from urllib.parse import quote, urljoin, urlsplit

import flask_migrate
import pytest
from sqlalchemy import select

from surveys import accounts, cycles
from surveys.models import Employee, UserRole
from tests.security import world as w
from tests.security.test_permission_matrix import LINK_KINDS, family
from tests.webapp.console import PASSWORD, sign_in
from webapp import create_app
from webapp.config import from_env
from webapp.extensions import db

SITE = "localhost"
#: ``next`` values that would leave the site if followed blindly (raw, before URL encoding).
EVIL_NEXT = [
    "//evil.com",
    "///evil.com",
    "////evil.com/path",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "/\\/evil.com",
    "https://evil.com",
    "http://evil.com/admin/",
    "HTTPS://evil.com",
    "https:evil.com",
    "https:/evil.com",
    "//evil.com@localhost",
    "http://localhost@evil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    " //evil.com",
    "%2F%2Fevil.com",  # sent double-encoded below, so the app sees the %-escapes
    "/%2F%2Fevil.com",
    "/%5Cevil.com",
    "//evil%2Ecom",
    "//%65vil.com",
    "/admin/../\\evil.com",
    "evil.com",
    "@evil.com",
]


def assert_on_site(location: str, context: str) -> None:
    """The browser would stay on this site after following ``location``."""
    assert location, f"{context}: no Location"
    assert not any(c in location for c in "\\\t\r\n"), f"{context}: {location!r}"
    target = urlsplit(urljoin(f"http://{SITE}/admin/login", location))
    assert target.scheme in ("http", "https"), f"{context}: {location!r}"
    assert target.hostname == SITE, f"{context}: {location!r} leaves the site"


@pytest.fixture
def hr_client(app):
    client = app.test_client()
    sign_in(app, client)
    return client


def test_login_next_never_leaves_the_site(app, database_url):
    """Signing in (a few, each costs a password hash) and the signed-in login page (all)."""
    w.sqlite_only(database_url)
    with app.app_context():
        accounts.create_user(db.session, "next@example.com", "Next", PASSWORD)
        db.session.commit()
    values = [quote(t, safe="") for t in EVIL_NEXT]
    values += [quote(quote(t, safe=""), safe="") for t in EVIL_NEXT]  # double-encoded
    signed_in = app.test_client()
    for k, value in enumerate(values):
        if k % 6 == 0:  # a fresh sign-in now and then, through the POST path
            signed_in = app.test_client()
            reply = signed_in.post(
                f"/admin/login?next={value}",
                data={"email": "next@example.com", "password": PASSWORD},
            )
            assert reply.status_code == 302, value
            assert_on_site(reply.headers["Location"], f"login next={value}")
        # Already signed in: the login page redirects straight to ``next``.
        again = signed_in.get(f"/admin/login?next={value}")
        assert again.status_code == 302
        assert_on_site(again.headers["Location"], f"signed-in login next={value}")


def test_a_local_next_is_honoured(app, database_url):
    """The guard must not be so strict that it breaks the normal case."""
    w.sqlite_only(database_url)
    with app.app_context():
        accounts.create_user(db.session, "next@example.com", "Next", PASSWORD)
        db.session.commit()
    reply = app.test_client().post(
        "/admin/login?next=" + quote("/admin/people?q=a", safe=""),
        data={"email": "next@example.com", "password": PASSWORD},
    )
    assert reply.headers["Location"] == "/admin/people?q=a"


def test_form_next_fields_never_leave_the_site(app, session, hr_client, database_url):
    """The people page's actions post back a ``next`` (to keep the search): same rules."""
    w.sqlite_only(database_url)
    person = Employee(external_id="N1", name="Nora Next", email="n1@example.com")
    session.add(person)
    session.commit()
    for target in EVIL_NEXT[:20]:
        for action in ("deactivate", "reactivate"):
            reply = hr_client.post(f"/admin/people/{person.id}/{action}", data={"next": target})
            assert reply.status_code in (302, 303), (target, reply.status_code)
            assert_on_site(reply.headers["Location"], f"people {action} next={target!r}")


def test_signed_out_visits_redirect_to_the_login_page_on_site(app, database_url):
    w.sqlite_only(database_url)
    reply = app.test_client().get("/admin/people?q=" + quote("//evil.com"))
    assert reply.status_code == 302
    assert_on_site(reply.headers["Location"], "login redirect")
    assert urlsplit(reply.headers["Location"]).path == "/admin/login"


# -- headers ---------------------------------------------------------------------------------


def assert_security_headers(reply, context: str) -> None:
    headers = reply.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", context
    assert headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), context
    csp = headers.get("Content-Security-Policy", "")
    assert csp, f"{context}: no Content-Security-Policy"
    assert "unsafe-eval" not in csp, context
    script = [d for d in csp.split(";") if d.strip().startswith(("script-src", "default-src"))]
    assert not any("unsafe-inline" in d for d in script), f"{context}: inline scripts allowed"
    framing = "frame-ancestors 'none'" in csp or headers.get("X-Frame-Options") == "DENY"
    assert framing, f"{context}: the page may be framed"


def test_every_get_route_sends_the_security_headers(app, database_url, monkeypatch):
    """Visitor and signed-in account alike, on every page family, including errors."""
    w.sqlite_only(database_url)
    app.config["LINK_GUESS_LIMIT"] = "100000 per minute"
    w.fast_pdfs(monkeypatch)
    world = w.build(app, app.test_client)
    admin = app.test_client()
    w.sign_in(admin, w.ADMIN_EMAIL)
    bearer = {"Authorization": f"Bearer {world.api_tokens['admin']}"}
    checked = []
    for rule in w.routes(app):
        if "GET" not in w.methods(rule):
            continue
        token = None
        if family(rule) == "link":
            token = world.links[LINK_KINDS[rule.rule[:3]]]
        url = w.build_url(app, rule, w.url_values(rule, world, "admin", token))
        for who, client, headers in (("visitor", app.test_client(), {}), ("admin", admin, bearer)):
            reply = client.get(url, headers=headers)
            assert reply.status_code < 500, (who, url)
            assert_security_headers(reply, f"{who} GET {url} → {reply.status_code}")
            # Drafts, names, feedback: no page may sit in a browser's or proxy's cache.
            assert "no-store" in reply.headers.get("Cache-Control", ""), (who, url)
            reply.close()
            checked.append(url)
    for url in ("/static/app.css", "/no/such/page", "/s/forged", "/api/v1/nothing"):
        reply = app.test_client().get(url)
        assert_security_headers(reply, url)
        reply.close()
    wrong_method = app.test_client().delete("/admin/login")
    assert wrong_method.status_code == 405
    assert_security_headers(wrong_method, "405")
    assert len(set(checked)) >= 30


def test_error_pages_send_the_security_headers(app, database_url, monkeypatch):
    w.sqlite_only(database_url)
    from webapp.rater import routes

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(routes.responses, "open_assignment", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    reply = app.test_client().get("/s/anything")
    assert reply.status_code == 500
    assert_security_headers(reply, "500")
    assert "boom" not in reply.get_data(as_text=True)


# -- cookies ---------------------------------------------------------------------------------


def _session_cookies(reply) -> list[SimpleCookie]:
    found = []
    for header in reply.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        found.append((header, cookie))
    return found


def _assert_flags(reply, *, secure: bool, context: str) -> None:
    cookies = _session_cookies(reply)
    assert cookies, f"{context}: no cookie set"
    for header, cookie in cookies:
        for name, morsel in cookie.items():
            assert name != "remember_token", f"{context}: a remember-me cookie was set"
            assert morsel["httponly"], f"{context}: {header}"
            assert morsel["samesite"].lower() == "lax", f"{context}: {header}"
            assert bool(morsel["secure"]) is secure, f"{context}: {header}"


def test_session_cookie_flags_in_development(app, database_url):
    w.sqlite_only(database_url)
    with app.app_context():
        accounts.create_user(db.session, "c@example.com", "C", PASSWORD)
        db.session.commit()
    reply = app.test_client().post(
        "/admin/login", data={"email": "c@example.com", "password": PASSWORD}
    )
    assert reply.status_code == 302
    _assert_flags(reply, secure=False, context="development sign-in")


def test_session_cookie_is_secure_in_production(tmp_path):
    env = {
        "FEEDBACK360_ENV": "production",
        "SECRET_KEY": "a-production-secret-of-at-least-32-characters",
        "MAIL_URL": "smtp://mail.example.com:587",
        "BASE_URL": "https://feedback.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "QUEUE_URL": "memory://",
    }
    config = from_env(tmp_path, env)
    assert config["SESSION_COOKIE_SECURE"] is True
    prod = create_app({**config, "TESTING": True, "SERVER_NAME": SITE})
    try:
        with prod.app_context():
            flask_migrate.upgrade()
            accounts.create_user(db.session, "p@example.com", "P", PASSWORD, UserRole.ADMIN)
            db.session.commit()
        client = prod.test_client()
        page = client.get("/admin/login", base_url=f"https://{SITE}")
        _assert_flags(page, secure=True, context="production login page")
        token = page.get_data(as_text=True).split('name="csrf_token"')[1]
        token = token.split('value="')[1].split('"')[0]
        reply = client.post(
            "/admin/login",
            base_url=f"https://{SITE}",
            data={"email": "p@example.com", "password": PASSWORD, "csrf_token": token},
        )
        assert reply.status_code == 302, reply.get_data(as_text=True)[:500]
        _assert_flags(reply, secure=True, context="production sign-in")
        # The console session ends after a working day at most.
        for header, cookie in _session_cookies(reply):
            expires = cookie["session"]["expires"] if "session" in cookie else ""
            if expires:
                left = parsedate_to_datetime(expires) - datetime.now(UTC)
                assert left <= timedelta(hours=8, minutes=1), header
        assert reply.headers.get("Strict-Transport-Security")
        with prod.app_context():
            assert db.session.scalar(select(Employee)) is None  # nothing else was created
    finally:
        with prod.app_context():
            db.engine.dispose()


def test_download_names_cannot_inject_header_parameters(app, session, database_url, monkeypatch):
    """The console's PDF name carries the employee id, which an org-chart file sets freely:
    quotes must not add parameters (``filename*=…evil.html``) and non-Latin text must not
    break the header a real server writes in Latin-1."""
    w.sqlite_only(database_url)
    w.fast_pdfs(monkeypatch)
    from tests import factories as f

    boss = f.employee(session, "中文-0", "Boss")
    ids = ['中文"1', "x\"; filename*=UTF-8''evil.html", "p3", "p4"]
    team = [
        f.employee(session, i, f"N{k}", boss, email=f"n{k}@example.com") for k, i in enumerate(ids)
    ]
    cycle = f.launched(session, team[:2])
    cycles.close_cycle(session, cycle)  # reports are previewed once the cycle has closed
    session.commit()
    client = app.test_client()
    sign_in(app, client)
    for participant in cycle.participants:
        url = f"/admin/cycles/{cycle.id}/participants/{participant.id}/report.pdf"
        reply = client.get(url)
        assert reply.status_code == 200
        header = reply.headers["Content-Disposition"]
        header.encode("latin-1")  # what a WSGI server must be able to do
        assert header.count("filename=") == 1, header
        assert "filename*" not in header, header
        assert header.count('"') == 2, header
        assert header.startswith("attachment; "), header  # the page says "Download"
