"""Helpers for the browser end-to-end story (tests/browser/test_end_to_end.py).

A live server of its own (empty database, CSRF on) whose emails really go out over SMTP
to a local test server, a mailbox that finds the links in those emails, the org chart
the story imports, and the ways its raters fill in a survey: clicking, tapping on a
phone, keyboard only.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import flask_migrate
import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from surveys import accounts
from surveys.banks import Bank
from tests.browser.conftest import LiveServer
from tests.conftest import TEST_CONFIG
from webapp import create_app, jobs
from webapp.extensions import db

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.conftest import SmtpServer

HR_EMAIL = "hana.hr@example.com"
HR_PASSWORD = "correct horse battery staple"

#: The org chart HR uploads: a manager, the participant, five colleagues of theirs and
#: two people in another department (who must not turn up in the participant's search).
ORG_CSV = """employee_id,name,email,manager_id,department
E100,Maria Manager,maria@example.com,,Platform
E101,Pat Participant,pat@example.com,E100,Platform
E102,Alice Andersen,alice@example.com,E100,Platform
E103,Bruno Barros,bruno@example.com,E100,Platform
E104,Chen Cheng,chen@example.com,E100,Platform
E105,Dana Doyle,dana@example.com,E100,Platform
E106,Emil Eriksen,emil@example.com,E100,Platform
E200,Sam Sales,sam@example.com,,Sales
E201,Sky Seller,sky@example.com,E200,Sales
"""
ORG_SIZE = ORG_CSV.count("\n") - 1

#: Phone-sized browser context (an iPhone 12-ish screen).
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
#: A decimal number as reports print them ("4.0", "3.5").
NUMBER = re.compile(r"\b\d+\.\d\b")
THANKS = re.compile("your feedback has been submitted", re.I)


# -- a server whose mail goes out -------------------------------------------------------


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'e2e.db'}"


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A PostgreSQL database of the story's own, dropped afterwards (skips without a server).

    Not the suite's shared scratch database: the story's data must not meet the tables
    other tests empty after themselves.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set (point it at a PostgreSQL server)")
    base = make_url(url)
    name = f"{base.database or 'test'}_e2e_{os.getpid()}"
    server = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        server.dispose()
        pytest.skip(f"PostgreSQL at {base.render_as_string()} unreachable: {error.orig}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@contextmanager
def serve_app(database_url: str, mail_url: str) -> Iterator[LiveServer]:
    """The real app on a free port with its own database and ``MAIL_URL``.

    With ``QUEUE_URL=memory://`` the app delivers its outbox inline right after each
    commit that wrote mail (``webapp.jobs``), so an email is in the SMTP server by the
    time the page that caused it has loaded. The jobs module remembers the last app
    created; it is given back the previous one afterwards.
    """
    config = {
        **TEST_CONFIG,
        "TESTING": False,  # CSRF, real error pages: as in production
        "WTF_CSRF_ENABLED": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAIL_URL": mail_url,
    }
    config.pop("SERVER_NAME")
    previous = jobs._app
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=url)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
        jobs._app = previous


def create_hr_account(server: LiveServer) -> None:
    """The console account HR signs in with (accounts are made on the command line)."""
    with server.app.app_context():
        accounts.create_user(db.session, HR_EMAIL, "Hana HR", HR_PASSWORD, role="hr")
        db.session.commit()
        db.session.remove()


# -- email --------------------------------------------------------------------------------


class Mailbox:
    """Reads what the local SMTP server received; finds the one email a person awaits."""

    def __init__(self, smtp: SmtpServer, base_url: str):
        self.smtp = smtp
        self.base_url = base_url

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if address in str(m["To"])]

    def wait_for(self, address: str, subject: str, timeout: float = 10.0) -> EmailMessage:
        """The single email to ``address`` whose subject contains ``subject``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.to(address) if subject in str(m["Subject"])]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                pytest.fail(f"{len(found)} emails to {address} about {subject!r}, expected one")
            if time.monotonic() > deadline:
                subjects = [str(m["Subject"]) for m in self.to(address)]
                pytest.fail(f"no email to {address} about {subject!r} (got: {subjects})")
            time.sleep(0.05)

    def link(self, address: str, subject: str, kind: str) -> str:
        """The ``/<kind>/<token>`` link in that email (s survey, n nominate, a approve,
        r report); it must point at this server."""
        body = self.wait_for(address, subject).get_content()
        links = re.findall(rf"{re.escape(self.base_url)}/{kind}/[A-Za-z0-9_-]+", body)
        assert len(links) == 1, f"expected one /{kind}/ link in the email:\n{body}"
        return links[0]


# -- filling in a survey ------------------------------------------------------------------


def item_texts(bank: Bank, role: str, name: str) -> list[list[str]]:
    """The wording of each item as ``role`` (self, or others) sees it, per section."""
    return [[item.text(role, name) for item in c.items] for c in bank.competencies]


def option(page: Page, item_text: str, label: str):
    """The radio ``label`` inside the item (a fieldset) named ``item_text``."""
    return page.get_by_role("group", name=item_text).get_by_role("radio", name=label, exact=True)


def comment_box(page: Page, bank: Bank, role: str, name: str):
    return page.get_by_role("textbox", name=bank.open_questions[0].text(role, name))


def answer_section(page: Page, texts: list[str], label: str, *, tap: bool = False) -> None:
    """Pick ``label`` for every item of the section on screen, with a mouse or a finger."""
    for text in texts:
        radio = option(page, text, label)
        press(radio, tap=tap)
        assert radio.is_checked(), f"{label!r} did not stick for {text!r}"


def press(locator: Locator, *, tap: bool = False) -> None:
    """A click, or a tap on a touch screen."""
    if tap:
        locator.tap()
    else:
        locator.click()


def next_section(page: Page, section: int, *, tap: bool = False) -> None:
    press(page.get_by_role("button", name="Save and continue"), tap=tap)
    page.wait_for_url(re.compile(rf"section={section + 1}\b"))


def submit(page: Page, *, tap: bool = False) -> None:
    """Press submit; the confirmation dialog is accepted by the page's dialog handler."""
    press(page.get_by_role("button", name="Submit my feedback"), tap=tap)
    thanks(page).wait_for()


def thanks(page: Page) -> Locator:
    """The heading of the page a rater sees once their feedback is in."""
    return page.get_by_role("heading", name=THANKS)


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement;
                   return {tag: e.tagName, type: e.type || '', value: e.value || '',
                           text: (e.textContent || '').trim()}; }"""
    )


def tab_until(page: Page, matches: Callable[[dict], bool], limit: int = 40) -> dict:
    """Press Tab until the focused element satisfies ``matches``; fail after ``limit``."""
    element: dict = {}
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if matches(element):
            return element
    pytest.fail(f"Tab never reached the expected element (last: {element})")


def is_button(label: str) -> Callable[[dict], bool]:
    return lambda e: e["tag"] == "BUTTON" and e["text"] == label


def keyboard_section(page: Page, items: int, value: int) -> None:
    """Answer ``items`` items with the keyboard only: Tab into each radio group, Space
    picks the first point, arrows move to ``value``; then Enter on "Save and continue"."""
    for _ in range(items):
        radio = tab_until(page, lambda e: e["type"] == "radio")
        assert radio["value"] == "1", "Tab should enter each unanswered group at its start"
        page.keyboard.press("Space")
        for _ in range(value - 1):
            page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.checked")
        assert focused(page)["value"] == str(value)
    tab_until(page, is_button("Save and continue"))
    page.keyboard.press("Enter")


def fits_phone(page: Page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width <= inner, f"horizontal scrolling on a phone: {width}px content in {inner}px"


# -- the report ---------------------------------------------------------------------------


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def one_line(text: str) -> str:
    """Whitespace collapsed: PDF text breaks lines where the HTML does not."""
    return " ".join(text.split())
