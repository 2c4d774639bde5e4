from datetime import UTC, datetime, timedelta

import pytest

from surveys import accounts, audit
from surveys.models import AuditEvent

PASSWORD = "correct horse battery staple"


@pytest.fixture
def ana(session):
    user = accounts.create_user(session, "ana@example.com", "Ana", PASSWORD)
    session.commit()
    return user


def test_record_keeps_the_account_and_its_email_as_shown(session, ana):
    event = audit.record(session, ana, "cycle.launch", "cycle:3", {"participants": 12})
    session.commit()
    assert (event.user_id, event.actor) == (ana.id, "ana@example.com")
    assert (event.action, event.target, event.detail) == (
        "cycle.launch",
        "cycle:3",
        {"participants": 12},
    )
    assert event.at.tzinfo is not None
    # Renaming the account later does not rewrite history.
    ana.email = "ana.lima@example.com"
    session.commit()
    session.expire_all()
    assert session.get(AuditEvent, event.id).actor == "ana@example.com"


def test_record_from_the_command_line_has_no_account(session):
    event = audit.record(session, audit.COMMAND_LINE, "user.create", "user:x@example.com")
    assert event.user_id is None
    assert event.actor == "command line"
    assert event.detail == {}


def test_record_copies_detail_and_clips_a_long_target(session, ana):
    detail = {"n": 1}
    event = audit.record(session, ana, "x.y", "t" * 400, detail)
    detail["n"] = 2
    assert event.detail == {"n": 1}
    assert len(event.target) == 254


def _at(session, action, minutes_ago):
    event = audit.record(session, audit.SCHEDULER, action)
    event.at = datetime(2026, 1, 1, 12, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return event


def test_list_events_is_newest_first_and_pages(session):
    events = [_at(session, f"cycle.e{i}", minutes_ago=i) for i in range(7)]
    session.commit()
    page, total = audit.list_events(session, limit=3)
    assert total == 7
    assert page == events[:3]
    page, _ = audit.list_events(session, limit=3, offset=6)
    assert page == events[6:]


def test_list_events_filters_by_action_prefix_literally(session):
    login = _at(session, "account.login", 1)
    create = _at(session, "user.create", 2)
    role = _at(session, "user.role", 3)
    _at(session, "usersXimport", 4)  # "_" and "%" in a prefix are not wildcards
    _at(session, "users_import", 5)
    session.commit()
    assert audit.list_events(session, action="user.") == ([create, role], 2)
    assert audit.list_events(session, action="account.login") == ([login], 1)
    assert audit.list_events(session, action="users_")[1] == 1
    assert audit.list_events(session, action="user%")[1] == 0
