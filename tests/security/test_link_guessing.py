"""Unknown links share a small budget per client address; valid links are never counted."""

from __future__ import annotations

import pytest

from tests import factories
from tests.conftest import TEST_CONFIG
from webapp import create_app
from webapp.extensions import db


@pytest.fixture(autouse=True)
def small_budget(app):
    app.config["LINK_GUESS_LIMIT"] = "5 per 10 minutes"  # the app fixture restores it


def test_guessing_links_is_slowed_down_across_link_kinds(client):
    for path in ("/s/guess1", "/n/guess2", "/a/guess3", "/r/guess4", "/s/guess5"):
        assert client.get(path).status_code == 404
    response = client.get("/r/guess6")
    assert response.status_code == 429
    assert "Too many requests" in response.get_data(as_text=True)


def test_other_addresses_are_not_affected(client):
    for n in range(5):
        client.get(f"/s/guess{n}")
    assert client.get("/s/again").status_code == 429
    other = client.get("/s/again", environ_overrides={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 404


def test_valid_links_do_not_spend_the_budget(client, session):
    _boss, team = factories.team(session, size=3)
    factories.launched(session, team)
    token = factories.links(session)[0]
    for _ in range(20):
        assert client.get(f"/s/{token}").status_code == 200
    # The whole budget of unknown links is still there.
    for n in range(5):
        assert client.get(f"/s/guess{n}").status_code == 404
    assert client.get("/s/guess5").status_code == 429


def test_behind_a_proxy_the_budget_follows_the_forwarded_client_address(app):
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    behind_proxy = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database,
            "PROXY_HOPS": 1,
            "LINK_GUESS_LIMIT": "2 per minute",
        }
    )
    client = behind_proxy.test_client()
    first = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(2):
        assert client.get("/s/guess", headers=first).status_code == 404
    assert client.get("/s/guess", headers=first).status_code == 429
    # Another client behind the same proxy has its own budget.
    assert client.get("/s/guess", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 404
    with behind_proxy.app_context():
        db.engine.dispose()  # its own pool: close it rather than leave it to the GC


def test_a_valid_link_works_even_after_the_budget_is_spent(client, session):
    """Behind a proxy without PROXY_HOPS every rater shares one address: stale links
    clicked by some must never lock the others out."""
    _boss, team = factories.team(session, size=3)
    factories.launched(session, team)
    token = factories.links(session)[0]
    for n in range(6):
        client.get(f"/s/stale{n}")
    assert client.get("/s/stale-again").status_code == 429
    assert client.get(f"/s/{token}").status_code == 200
