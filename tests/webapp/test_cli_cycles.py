import json

from sqlalchemy import func, select

from surveys import accounts
from surveys.demo import DEMO_CYCLE as DEMO
from surveys.models import Assignment, Cycle, CycleState, OutboxMessage, Response
from tests import factories as f
from webapp.extensions import db


def test_create_launch_status_remind_close(runner, session):
    _, _team = f.team(session, 4)
    session.commit()
    result = runner.invoke(
        args=[
            "cycles",
            "create",
            "Spring",
            "--bank",
            "pulse",
            "--participants",
            "T1,T2,T3",
            "--peer-min",
            "2",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created cycle 1 'Spring' (3 participants" in result.output
    result = runner.invoke(args=["cycles", "launch", "1"])
    assert result.exit_code == 0, result.output
    assert "Cycle 1 is open" in result.output
    status = runner.invoke(args=["cycles", "status", "1", "--json"])
    data = json.loads(status.output)
    assert data["state"] == "open"
    assert data["total"]["invited"] == session.scalar(select(func.count(Assignment.id)))
    assert data["total"]["submitted"] == 0
    assert {p["employee_id"] for p in data["participants"]} == {"T1", "T2", "T3"}
    assert "rater" not in status.output  # counts only, never who
    text = runner.invoke(args=["cycles", "status", "1"]).output
    assert "By relationship:" in text
    assert "Peer" in text
    reminded = runner.invoke(args=["cycles", "remind", "1"])
    assert "Nobody is due a reminder" in reminded.output  # just invited
    closed = runner.invoke(args=["cycles", "close", "1"])
    assert closed.exit_code == 0
    assert "closed with 0 responses" in closed.output
    assert session.get(Cycle, 1).state == CycleState.CLOSED


def test_errors_are_messages_not_tracebacks(runner, session):
    for args, message in [
        (["cycles", "launch", "99"], "no cycle with id 99"),
        (["cycles", "create", "X", "--bank", "nope"], "unknown question bank 'nope'"),
        (
            ["cycles", "create", "X", "--bank", "pulse", "--participants", "ZZ"],
            "no employee with id 'ZZ'",
        ),
        (
            ["cycles", "create", "X", "--bank", "pulse", "--threshold", "peer=1"],
            "threshold below 2",
        ),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_help_explains_each_command(runner):
    for sub in ["create", "launch", "status", "remind", "close", "list", "add-rater"]:
        result = runner.invoke(args=["cycles", sub, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output
        assert len(result.output) > 200


def test_demo_is_idempotent_and_prints_open_links(runner, session):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Loaded: cycle 2 'Demo 360 – Autumn 2026' [open]" in first.output
    assert "/dev/outbox" in first.output
    assert "/s/" in first.output
    # The earlier, released cycle's report opens from the printed link, with no sign-in.
    report = first.output.split("http://localhost/r/")[1].split()[0]
    page = runner.app.test_client().get(f"/r/{report}")
    assert page.status_code == 200
    assert "Feedback report for Lukas Becker" in page.get_data(as_text=True)
    states = dict(session.execute(select(Cycle.name, Cycle.state)).all())
    assert states == {"Demo 360 – Spring 2026": CycleState.RELEASED, DEMO: CycleState.OPEN}
    responses = session.scalar(select(func.count(Response.id)))
    assert responses > 0
    second = runner.invoke(args=["demo"])
    assert "Already loaded: cycle 2" in second.output
    assert session.scalar(select(func.count(Cycle.id))) == 2
    assert session.scalar(select(func.count(Response.id))) == responses
    assert session.scalar(select(func.count(OutboxMessage.id))) > 0
    assert "Close and release the autumn cycle" in second.output
    autumn = session.scalar(select(Cycle).where(Cycle.name == DEMO))
    autumn.state = CycleState.CLOSED
    session.commit()
    assert "Release the autumn cycle" in runner.invoke(args=["demo"]).output
    autumn.state = CycleState.RELEASED
    session.commit()
    released = runner.invoke(args=["demo"]).output
    assert "Both demo cycles are released" in released
    assert "release the autumn" not in released.lower()


def test_dev_outbox_page_lists_clickable_links(client, runner):
    runner.invoke(args=["demo"])
    page = client.get("/dev/outbox").get_data(as_text=True)
    assert "Outbox" in page
    assert 'href="http://localhost/s/' in page


def test_home_page_points_newcomers_to_the_outbox(client, app):
    page = client.get("/")
    assert page.status_code == 200
    assert "/dev/outbox" in page.get_data(as_text=True)
    app.config["DEV_PAGES"] = False
    assert "/dev/outbox" not in client.get("/").get_data(as_text=True)


def client_get_ok(runner, path):
    return runner.app.test_client().get(path).status_code == 200


def test_demo_creates_a_console_account_on_development_machines_only(runner, client, app):
    first = runner.invoke(args=["demo"])
    assert "sign in as admin@demo.example / demo-admin-password" in first.output
    page = client.post(
        "/admin/login", data={"email": "admin@demo.example", "password": "demo-admin-password"}
    )
    assert page.status_code == 302
    assert client.get("/admin/users").status_code == 200  # an admin: the whole console
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        assert len(accounts.list_users(db.session)) == 1


def test_demo_in_production_creates_no_account(runner, app):
    app.config["ENV_NAME"] = "production"
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "demo-admin-password" not in result.output
    assert "feedback360 users create --admin" in result.output
    with app.app_context():
        assert accounts.list_users(db.session) == []


def test_dev_pages_answer_only_this_machine(client, runner):
    runner.invoke(args=["demo"])
    assert client.get("/dev/outbox").status_code == 200
    remote = client.get("/dev/outbox", environ_overrides={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 404


def test_create_takes_a_custom_bank_by_key_or_a_bank_file(runner, session, tmp_path):
    """A bank uploaded in the console, or a YAML file that `banks validate` passed."""
    from surveys import bank_store
    from surveys.banks import bundled_bank_paths

    _, _team = f.team(session, 4)
    text = bundled_bank_paths()["pulse"].read_text(encoding="utf-8")
    custom = bank_store.with_key(text, "our_pulse")
    bank_store.save_bank(session, custom)
    session.commit()
    by_key = runner.invoke(
        args=["cycles", "create", "A", "--bank", "our_pulse", "--participants", "T1"]
    )
    assert by_key.exit_code == 0, by_key.output
    path = tmp_path / "file_pulse.yaml"
    path.write_text(bank_store.with_key(text, "file_pulse"), encoding="utf-8")
    by_file = runner.invoke(
        args=["cycles", "create", "B", "--bank", str(path), "--participants", "T1"]
    )
    assert by_file.exit_code == 0, by_file.output
    assert [c.bank_key for c in session.scalars(select(Cycle).order_by(Cycle.id))] == [
        "our_pulse",
        "file_pulse",
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: x\n", encoding="utf-8")
    refused = runner.invoke(
        args=["cycles", "create", "C", "--bank", str(broken), "--participants", "T1"]
    )
    assert refused.exit_code == 1
    assert "broken.yaml" in refused.output
    unknown = runner.invoke(
        args=["cycles", "create", "D", "--bank", "nope", "--participants", "T1"]
    )
    assert unknown.exit_code == 1
    assert "nope" in unknown.output


def test_create_with_a_mistyped_bank_file_says_the_file_is_missing(runner, session, tmp_path):
    _, _team = f.team(session, 4)
    session.commit()
    missing = tmp_path / "nope.yaml"
    result = runner.invoke(
        args=["cycles", "create", "X", "--bank", str(missing), "--participants", "T1"]
    )
    assert result.exit_code == 1
    assert "unknown question bank" not in result.output
    assert "nope.yaml" in result.output
