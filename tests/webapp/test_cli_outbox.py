"""``feedback360 outbox`` (list, show, send, retry), and the help of serve and worker."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from surveys.models import OutboxMessage, OutboxStatus
from surveys.outbox import MAX_ATTEMPTS

LINK = "http://localhost/s/" + "L" * 43


@pytest.fixture
def messages(session):
    """Three messages: a pending invite, a sent reminder, a failed invite."""
    rows = [
        OutboxMessage(
            kind="invite",
            to_address="bo@ex.org",
            to_name="Bo Berg",
            subject="Your feedback for Ada Lind is requested",
            body=f"Hello Bo,\n\nOpen your survey:\n{LINK}\n",
        ),
        OutboxMessage(
            kind="reminder",
            to_address="cy@ex.org",
            to_name="Cy Dahl",
            subject="Reminder: feedback for Ada Lind",
            body=None,
            status=OutboxStatus.SENT,
            attempts=1,
        ),
        OutboxMessage(
            kind="invite",
            to_address="zed@ex.org",
            to_name="Zed",
            subject="Your feedback for Ada Lind is requested",
            body=f"Hello Zed,\n{LINK}\n",
            status=OutboxStatus.FAILED,
            attempts=MAX_ATTEMPTS,
            last_error="SMTPRecipientsRefused: 550 no such mailbox",
        ),
    ]
    session.add_all(rows)
    session.commit()
    return [row.id for row in rows]


def run(runner, *args):
    return runner.invoke(args=["outbox", *args])


def test_lists_newest_first_with_the_columns(runner, messages):
    result = run(runner)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "KIND", "STATUS", "TO", "SUBJECT", "ATTEMPTS"]
    assert [line.split()[0] for line in lines[1:4]] == [str(i) for i in reversed(messages)]
    assert "zed@ex.org" in lines[1]
    assert lines[1].split()[-1] == str(MAX_ATTEMPTS)
    assert "1 pending, 1 sent, 1 failed" in result.output
    assert run(runner, "list").output == result.output


def test_filters_by_status_and_limits(runner, messages):
    pending = run(runner, "--status", "pending")
    assert "bo@ex.org" in pending.output
    assert "cy@ex.org" not in pending.output
    assert "zed@ex.org" not in pending.output
    limited = run(runner, "list", "--limit", "1", "--json")
    assert [m["id"] for m in json.loads(limited.output)] == [messages[-1]]
    bad = run(runner, "--status", "lost")
    assert bad.exit_code == 2
    assert "'lost' is not one of 'pending', 'sent', 'failed'" in bad.output


def test_json_list_is_for_scripts(runner, messages):
    data = json.loads(run(runner, "--json").output)
    assert [m["id"] for m in data] == list(reversed(messages))
    failed = data[0]
    assert failed["status"] == "failed"
    assert failed["to"] == "zed@ex.org"
    assert failed["last_error"].startswith("SMTPRecipientsRefused")
    assert "body" not in failed, "bodies hold personal links; only `show` prints one"


def test_empty_outbox(runner, app):
    assert run(runner).output.strip() == "The outbox is empty."
    assert run(runner, "--status", "failed").output.strip() == "No failed messages."
    assert json.loads(run(runner, "--json").output) == []


def test_show_prints_the_body_with_its_link(runner, messages):
    result = run(runner, "show", str(messages[0]))
    assert result.exit_code == 0, result.output
    assert "To:       Bo Berg <bo@ex.org>" in result.output
    assert "Subject:  Your feedback for Ada Lind is requested" in result.output
    assert LINK in result.output


def test_show_json_and_erased_bodies(runner, messages):
    data = json.loads(run(runner, "show", str(messages[0]), "--json").output)
    assert data["body"].endswith(f"{LINK}\n")
    sent = run(runner, "show", str(messages[1]))
    assert "body erased after delivery" in sent.output
    failed = run(runner, "show", str(messages[2]))
    assert "Error:    SMTPRecipientsRefused" in failed.output


def test_show_a_cancelled_message(runner, session, messages):
    cancelled = session.get(OutboxMessage, messages[0])
    cancelled.status, cancelled.body = OutboxStatus.CANCELLED, None
    session.commit()
    output = run(runner, "show", str(messages[0])).output
    assert "(invite, cancelled)" in output
    assert "body erased when cancelled" in output


def test_show_unknown_id(runner, app):
    result = run(runner, "show", "999")
    assert result.exit_code == 1
    assert "no outbox message with id 999" in result.output


def test_send_without_mail_url_explains_and_sends_nothing(runner, session, messages):
    result = run(runner, "send")
    assert result.exit_code == 1
    assert "MAIL_URL is not set" in result.output
    assert "feedback360 outbox show ID" in result.output
    session.expire_all()
    assert session.get(OutboxMessage, messages[0]).status == OutboxStatus.PENDING


def test_send_delivers_through_mail_url(app, runner, session, smtp_server, messages):
    app.config["MAIL_URL"] = smtp_server.url
    result = run(runner, "send")
    assert result.exit_code == 0, result.output
    assert f"Sent 1 via {smtp_server.url}" in result.output
    assert "Now 0 pending, 1 failed" in result.output
    assert smtp_server.recipients == ["bo@ex.org"]
    assert LINK in smtp_server.messages[0].get_content()
    again = json.loads(run(runner, "send", "--json").output)
    assert again == {
        "sent": 0,
        "retry_later": 0,
        "gave_up": 0,
        "error": None,
        "pending": 0,
        "failed": 1,
    }


def test_send_with_the_server_down_fails_loudly_and_keeps_the_mail(
    app, runner, session, smtp_server, messages
):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.stop()
    result = run(runner, "send", "--json")
    assert result.exit_code == 1
    assert "Connection refused" in json.loads(result.stdout)["error"]
    session.expire_all()
    row = session.get(OutboxMessage, messages[0])
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.body


def test_retry_requeues_failed_mail(app, runner, session, smtp_server, messages):
    app.config["MAIL_URL"] = smtp_server.url  # QUEUE_URL=memory://: delivered at once
    result = run(runner, "retry")
    assert result.exit_code == 0, result.output
    assert "1 failed message(s) queued again." in result.output
    assert sorted(smtp_server.recipients) == ["bo@ex.org", "zed@ex.org"]
    statuses = session.scalars(select(OutboxMessage.status)).all()
    assert set(statuses) == {OutboxStatus.SENT}


def test_retry_only_the_given_ids(runner, session, messages):
    assert "0 failed message(s)" in run(runner, "retry", str(messages[0])).output
    assert "1 failed message(s)" in run(runner, "retry", str(messages[2])).output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["outbox", "--help"], ["show ID", "MAIL_URL", "send", "retry", "--status"]),
        (["outbox", "send", "--help"], ["MAIL_URL", "status 1"]),
        (["worker", "--help"], ["serve", "QUEUE_URL=redis://", "--no-periodic", "--workers"]),
        (["serve", "--help"], ["--no-worker", "--port", "gunicorn", "feedback360 worker"]),
    ],
)
def test_help_explains_the_commands(runner, args, expected):
    result = runner.invoke(args=args)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in expected:
        assert phrase in text


def test_worker_refuses_an_inline_queue(runner, app):
    result = runner.invoke(args=["worker"])
    assert result.exit_code == 1
    assert "memory:// runs tasks inline" in result.output


def test_serve_with_several_web_processes_needs_gunicorn(runner, app, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    result = runner.invoke(args=["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "pip install gunicorn" in result.output
