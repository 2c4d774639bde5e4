"""``/healthz``: the database and the queue, answered without secrets, login or limits."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import TEST_CONFIG
from tests.production.conftest import closed_port
from webapp import create_app, health, jobs
from webapp.extensions import db

pytestmark = pytest.mark.usefixtures("memory_queue_after")


def test_healthy_with_an_inline_queue(client):
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json == {"status": "ok", "database": "ok", "queue": "ok"}
    assert reply.headers["Cache-Control"] == "no-store"


def test_healthy_with_a_sqlite_queue(app, client, tmp_path):
    app.config["QUEUE_URL"] = f"sqlite:///{tmp_path / 'queue.db'}"
    jobs.init_app(app)
    assert client.get("/healthz").json["queue"] == "ok"
    (tmp_path / "queue.db").unlink()  # the queue file is gone (a volume went away)
    reply = client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json == {"status": "unavailable", "database": "ok", "queue": "unavailable"}


@pytest.mark.redis
def test_healthy_with_redis_and_unavailable_without_it(app, client, redis_queue):
    assert client.get("/healthz").json == {"status": "ok", "database": "ok", "queue": "ok"}
    port = closed_port()
    app.config["QUEUE_URL"] = f"redis://:hunter2@127.0.0.1:{port}/15"
    jobs.init_app(app)
    reply = client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json["queue"] == "unavailable"
    body = reply.get_data(as_text=True)
    assert "hunter2" not in body
    assert str(port) not in body
    assert "redis" not in body.lower()


def test_unavailable_database_says_which_part_without_detail(app, tmp_path):
    broken = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://u:s3cret@127.0.0.1:{closed_port()}/x",
        }
    )
    reply = broken.test_client().get("/healthz")
    assert reply.status_code == 503
    assert reply.json == {"status": "unavailable", "database": "unavailable", "queue": "ok"}
    assert "s3cret" not in reply.get_data(as_text=True)
    with broken.app_context():
        db.engine.dispose()


def test_a_hung_check_times_out_instead_of_hanging_the_probe():
    hung = threading.Event()
    try:
        results = health.run_checks(
            {"database": lambda: hung.wait(60), "queue": lambda: None}, timeout=0.3
        )
        # The answer came while the database check still hangs.
        assert not hung.is_set()
        assert results == {"database": "timeout", "queue": "ok"}
    finally:
        hung.set()


def test_no_login_csrf_or_rate_limit(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    replies = [client.get("/healthz").status_code for _ in range(30)]
    assert replies == [200] * 30
    assert client.post("/healthz").status_code == 405  # read-only, not a CSRF failure
