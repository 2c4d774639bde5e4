"""Unknown links share a small budget per client address; valid links are never counted."""

from __future__ import annotations

import pytest

from surveys.models import Employee
from tests import factories


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
    boss, team = factories.team(session, size=3)
    factories.launched(session, team)
    token = factories.links(session)[0]
    for _ in range(20):
        assert client.get(f"/s/{token}").status_code == 200
    assert session.query(Employee).count() == 4
