"""Structured logs: a JSON line per request and per job, request ids, nothing identifying."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from surveys import responses
from surveys.models import OutboxMessage
from tests import factories as f
from tests.production.conftest import FEEDBACK360, closed_port, wait_for
from webapp import jobs, logs
from webapp.cli.serve import gunicorn_argv
from webapp.config import ConfigError, from_env, log_settings

SECRET = "S3cretLinkToken_0123456789abcdefghijklmnopq"


@pytest.fixture
def json_log():
    """Every log line of the test, as the production handler writes it; ``.lines()``."""
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    class Log:
        text = stream.getvalue

        @staticmethod
        def lines() -> list[dict]:
            return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield Log
    root.removeHandler(handler)
    root.setLevel(old_level)


def requests_in(log) -> list[dict]:
    return [line for line in log.lines() if line["logger"] == "feedback360.request"]


def test_one_json_line_per_request_with_a_redacted_path(client, json_log):
    reply = client.get(f"/s/{SECRET}?section=2", headers={"X-Request-ID": "lb-7f3a.1"})
    assert reply.status_code == 404
    assert reply.headers["X-Request-ID"] == "lb-7f3a.1"
    reply.close()  # the line is written once the body has gone out
    [line] = requests_in(json_log)
    assert line["method"] == "GET"
    assert line["path"] == "/s/…"
    assert line["status"] == 404
    assert line["request_id"] == "lb-7f3a.1"
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO"
    assert {"timestamp", "message"} <= set(line)
    assert SECRET not in json_log.text()
    assert "section" not in json_log.text(), "no query string"
    assert "127.0.0.1" not in json_log.text(), "no client address"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 200, "tab\there", "<b>", "ü"])
def test_an_untidy_request_id_is_replaced_by_a_fresh_one(client, json_log, incoming):
    reply = client.get("/", headers={"X-Request-ID": incoming} if incoming else {})
    issued = reply.headers["X-Request-ID"]
    reply.close()
    assert issued != incoming
    assert len(issued) == 32
    assert requests_in(json_log)[0]["request_id"] == issued


def test_every_line_of_a_request_carries_its_id_and_tokens_are_redacted(
    app, client, json_log, monkeypatch
):
    from webapp.rater import routes

    def boom(token):
        raise RuntimeError(f"failed for /s/{token}")

    monkeypatch.setattr(routes.responses, "open_assignment", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    reply = client.get(f"/s/{SECRET}", headers={"X-Request-ID": "req-500"})
    assert reply.status_code == 500
    reply.close()
    error = next(line for line in json_log.lines() if line["level"] == "ERROR")
    assert error["request_id"] == "req-500"
    assert "/s/…" in error["message"]
    assert SECRET not in json_log.text(), "not in the message, not in the traceback"


def test_a_healthy_probe_is_logged_at_debug_only(client, json_log):
    client.get("/healthz").close()
    [line] = requests_in(json_log)
    assert line["level"] == "DEBUG"


def test_one_json_line_per_job_with_its_outcome(app, session, smtp_server, json_log, monkeypatch):
    app.config["MAIL_URL"] = smtp_server.url
    session.add(OutboxMessage(kind="invite", to_address="bo@ex.org", subject="Hi", body="-"))
    session.commit()  # delivered inline (QUEUE_URL=memory://)
    [job] = [line for line in json_log.lines() if line["logger"] == "feedback360.job"]
    assert job["task"] == "deliver_outbox"
    assert job["outcome"] == "ok"
    assert job["result"] == {"sent": 1, "failed": 0, "gave_up": 0}
    assert job["duration_ms"] >= 0
    assert job["task_id"]

    def broken():
        raise RuntimeError("SMTP said no to bo@ex.org")

    monkeypatch.setattr(jobs, "deliver_now", broken)
    with pytest.raises(RuntimeError):
        jobs.deliver_outbox.call_local()
    jobs.huey.execute(jobs.deliver_outbox.s())
    failed = [line for line in json_log.lines() if line.get("outcome") == "error"]
    assert failed
    assert failed[-1]["error"] == "RuntimeError"
    assert failed[-1]["level"] == "WARNING"
    assert "bo@ex.org" not in json_log.text(), "no recipient address in any line"


def test_no_rater_identity_in_any_line_of_a_whole_survey(session, client, json_log):
    _, team = f.team(session, 4)
    cycle = f.launched(session, team)
    rater = team[1]
    link = f.token_for(session, team[0], "peer", rater=rater)
    bank = responses.cycle_bank(cycle)
    for index, competency in enumerate(bank.competencies):
        data = {f"r:{item.id}": "3" for item in competency.items}
        client.post(f"/s/{link}", data={"section": str(index), "action": "next", **data}).close()
    last = str(len(bank.competencies))
    submitted = client.post(f"/s/{link}", data={"section": last, "action": "submit"})
    assert submitted.status_code == 302
    submitted.close()
    assert session.scalars(select(OutboxMessage)).first() is not None
    text = json_log.text()
    assert len(requests_in(json_log)) == len(bank.competencies) + 1
    for secret in (link, rater.email, rater.name, rater.external_id + "@"):
        assert secret not in text


def test_text_lines_are_redacted_too():
    stream = io.StringIO()
    handler = logs.make_handler("text", stream)
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "refused %s on /n/%s", ("zed@ex.org", SECRET), None
    )
    assert handler.format(record).endswith("refused …@… on /n/…")


def test_log_format_defaults_to_json_in_production_and_text_in_development():
    assert log_settings({}) == {"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}
    production = {"FEEDBACK360_ENV": "production"}
    assert log_settings(production)["LOG_FORMAT"] == "json"
    assert log_settings({**production, "LOG_FORMAT": "TEXT"})["LOG_FORMAT"] == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of json, text"):
        log_settings({"LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        log_settings({"LOG_LEVEL": "chatty"})
    with pytest.raises(ConfigError, match="OUTBOX_CLAIM_SECONDS must be a whole number"):
        from_env("/tmp", {"OUTBOX_CLAIM_SECONDS": "0"})
    # A typo in the environment's name must not quietly run production as development.
    with pytest.raises(ConfigError, match="FEEDBACK360_ENV must be one of development, production"):
        from_env("/tmp", {"FEEDBACK360_ENV": "prod"})
    with pytest.raises(ConfigError, match="FEEDBACK360_ENV"):
        log_settings({"FEEDBACK360_ENV": "prod"})
    assert from_env("/tmp", {"FEEDBACK360_ENV": " Development "})["ENV_NAME"] == "development"


# -- gunicorn ---------------------------------------------------------------------------


def test_gunicorn_argv_uses_our_logger_and_a_bare_app():
    argv = gunicorn_argv("0.0.0.0", 8000, 4)
    assert argv[-1] == "webapp:create_app()"
    assert argv[argv.index("--workers") + 1] == "4"
    assert argv[argv.index("--logger-class") + 1] == "webapp.logs.GunicornLogger"
    assert argv[argv.index("--worker-class") + 1] == "gthread"


@pytest.mark.slow
def test_serve_with_gunicorn_logs_json_and_embeds_no_worker(app, session, tmp_path):
    """``serve --workers 2``: JSON lines from gunicorn and the app; no Huey consumer in
    any web process (queued work waits for ``feedback360 worker``)."""
    if not FEEDBACK360.exists():
        pytest.skip(f"{FEEDBACK360} not installed (pip install -e .)")
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the process layout does not depend on the database: once, on SQLite")
    port = closed_port()
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    stderr = tmp_path / "serve.log"
    env = {
        **os.environ,
        "FEEDBACK360_ENV": "development",
        "LOG_FORMAT": "json",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "QUEUE_URL": queue_url,
        "MAIL_URL": "smtp://127.0.0.1:1?tls=off",
    }
    jobs.configure_queue(queue_url)
    try:
        jobs.deliver_outbox()  # waiting in the queue for a worker
        with stderr.open("w") as err:
            process = subprocess.Popen(
                [str(FEEDBACK360), "serve", "--workers", "2", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            base = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                try:
                    with urllib.request.urlopen(base + "/healthz", timeout=5) as reply:
                        return reply.status == 200
                except OSError:
                    return False

            wait_for(healthy, timeout=90, interval=0.3, what="gunicorn to answer")
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"{base}/s/{SECRET}", timeout=5)
            missing.value.close()
            time.sleep(1.5)  # an embedded consumer would have taken the task by now
            assert jobs.huey.pending_count() == 1
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        jobs.configure_queue("memory://")

    output = stderr.read_text()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" for line in lines), output[:2000]
    requests = [line for line in lines if line["logger"] == "feedback360.request"]
    assert [(r["path"], r["status"]) for r in requests if r["path"] != "/healthz"] == [
        ("/s/…", 404)
    ]
    assert all(r["request_id"] for r in requests)
    assert SECRET not in output
    assert "consumer started" not in output.lower()
