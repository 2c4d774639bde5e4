"""Fixtures shared by the web tests."""

from __future__ import annotations

import pytest

from tests.webapp.test_admin import add_user, login


@pytest.fixture
def hr_client(app, client):
    """A test client signed in to the console as an ``hr`` account."""
    add_user(app)
    assert login(client).status_code == 302
    return client
