"""Browser tests: a live server on a free port and Chromium driven through Playwright.

The whole directory skips (and says why) when Chromium or the ``playwright`` package is
missing; no browser is ever downloaded. Set ``CHROMIUM_PATH`` to use another binary.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import flask_migrate
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from surveys import responses
from surveys.models import Response
from tests import factories
from tests.conftest import TEST_CONFIG
from webapp import create_app
from webapp.extensions import db

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Screenshots are for people to look at, not for the repository.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/work/scratch"))


def _chromium() -> str | None:
    if path := os.environ.get("CHROMIUM_PATH"):
        return path if Path(path).is_file() else None
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if _chromium() is None:
        return "no Chromium found (install Debian's chromium or set CHROMIUM_PATH)"
    return None


_REASON = _skip_reason()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            if _REASON:
                item.add_marker(pytest.mark.skip(reason=_REASON))


@dataclass(frozen=True)
class LiveServer:
    app: object
    url: str


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real app (SQLite file, CSRF on) served over HTTP from a daemon thread."""
    if _REASON:
        pytest.skip(_REASON)
    database = tmp_path_factory.mktemp("browser-db") / "live.db"
    config = {
        **TEST_CONFIG,
        "TESTING": False,  # behave like production: CSRF, real error pages
        "WTF_CSRF_ENABLED": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
    }
    config.pop("SERVER_NAME")  # the host is 127.0.0.1:<port>, not localhost
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(app=app, url=url)
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()
    with app.app_context():
        db.engine.dispose()


_prefixes = (f"B{n}x" for n in itertools.count())


@dataclass(frozen=True)
class Survey:
    """Rating links of one freshly launched pulse cycle (one participant, own team)."""

    participant: str
    peer: str
    self_: str
    manager: str


@pytest.fixture
def survey(live_server) -> Survey:
    with live_server.app.app_context():
        session = db.session
        _boss, reports = factories.team(session, 4, prefix=next(_prefixes))
        participant = reports[0]
        factories.launched(session, [participant])

        def link(relationship):
            token = factories.token_for(session, participant, relationship)
            return f"{live_server.url}/s/{token}"

        result = Survey(
            participant=participant.name,
            peer=link("peer"),
            self_=link("self"),
            manager=link("manager"),
        )
        session.remove()
    return result


def seed_draft(live_server: LiveServer, url: str, ratings=None, comments=None) -> None:
    """Save answers into the draft behind a survey link, as an earlier visit would have."""
    with live_server.app.app_context():
        assignment = responses.open_assignment(db.session, url.rsplit("/", 1)[1])
        answers = responses.Answers(ratings=dict(ratings or {}), comments=dict(comments or {}))
        responses.save_draft(db.session, assignment, answers)
        db.session.commit()
        db.session.remove()


def saved_draft(live_server: LiveServer, url: str) -> responses.Answers:
    with live_server.app.app_context():
        assignment = responses.open_assignment(db.session, url.rsplit("/", 1)[1])
        answers = responses.load_draft(db.session, assignment)
        db.session.remove()
    return answers


def stored_response(live_server: LiveServer, url: str) -> responses.Answers | None:
    """What was submitted through a survey link (found by pseudonym), or None."""
    with live_server.app.app_context():
        assignment = responses.open_assignment(db.session, url.rsplit("/", 1)[1])
        response = db.session.scalar(
            select(Response).where(
                Response.participant_id == assignment.participant_id,
                Response.rater_pseudonym
                == responses.pseudonym(assignment.cycle, assignment.rater_id),
            )
        )
        result = None
        if response is not None:
            result = responses.Answers(
                ratings={i.item_id: i.value for i in response.items},
                comments={c.question_id: c.text for c in response.comments},
            )
        db.session.remove()
    return result


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context_factory(browser):
    """Make browser contexts (own cookies = another device); all closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(5_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(context_factory):
    """A desktop page in a fresh context with JavaScript on."""
    return context_factory().new_page()
