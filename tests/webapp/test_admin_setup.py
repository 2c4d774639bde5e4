"""The cycle set-up wizard in the HR console: steps, validation, review and launch."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select

from surveys import accounts, cycles
from surveys.errors import DomainError
from surveys.models import (
    Assignment,
    AuditEvent,
    CustomBank,
    Cycle,
    CycleState,
    Employee,
    NominationMode,
    OutboxMessage,
    UserRole,
)
from tests import factories as f
from webapp.extensions import db

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
SOON = date.today() + timedelta(days=7)
LATER = date.today() + timedelta(days=21)

# Each helper opens its own short app context: holding one open across client requests
# shares ``flask.g`` (and Flask-Login's cached user) between them.


@pytest.fixture
def hr(app):
    with app.app_context():
        user = accounts.create_user(db.session, "hr@example.com", "HR", PASSWORD, UserRole.HR)
        db.session.commit()
        return user.id


@pytest.fixture
def signed_in(client, hr):
    response = client.post("/admin/login", data={"email": "hr@example.com", "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def org(app):
    """Two teams: Eng (a boss and 5 members) and Sales (a boss and 3 members)."""
    with app.app_context():
        _, eng = f.team(db.session, size=5, department="Eng", prefix="E")
        _, sales = f.team(db.session, size=3, department="Sales", prefix="S")
        db.session.commit()
        return {"eng": [e.id for e in eng], "sales": [e.id for e in sales]}


def _cycle(app, cycle_id: int) -> dict:
    """The stored cycle as plain values (read in a short context of its own)."""
    with app.app_context():
        cycle = db.session.get(Cycle, cycle_id)
        return {
            "name": cycle.name,
            "state": cycle.state,
            "bank": cycle.bank_key,
            "language": cycle.language,
            "participants": sorted(p.employee_id for p in cycle.participants),
            "mode": cycle.nomination_mode,
            "peer_min": cycle.peer_min,
            "peer_max": cycle.peer_max,
            "approval_required": cycle.approval_required,
            "include_direct_reports": cycle.include_direct_reports,
            "thresholds": dict(cycle.thresholds),
            "nomination_deadline": cycle.nomination_deadline,
            "close_date": cycle.close_date,
            "reminder_interval_days": cycle.reminder_interval_days,
            "max_reminders": cycle.max_reminders,
            "email_message": cycle.email_message,
        }


def _actions(app) -> list[str]:
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))
        return [action for action in actions if action.startswith("cycle.")]


def start(client, name="Spring review", bank="pulse", language="en") -> int:
    response = client.post(
        "/admin/cycles/new", data={"name": name, "bank": bank, "language": language}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"]).path
    match = re.fullmatch(r"/admin/cycles/new/(\d+)/participants", location)
    assert match, location
    return int(match.group(1))


def step(client, cycle_id, key, /, **data):
    return client.post(f"/admin/cycles/new/{cycle_id}/{key}", data=data)


NOMINATIONS = {
    "nomination_mode": "auto",
    "approval_required": "y",
    "peer_min": "2",
    "peer_max": "4",
    "include_self": "y",
    "include_manager": "y",
    "include_direct_reports": "y",
    "show_manager": "y",
}
THRESHOLDS = {
    "threshold_self": "1",
    "threshold_manager": "1",
    "threshold_peer": "3",
    "threshold_direct_report": "3",
    "threshold_other": "3",
    "threshold_others": "3",
}
DATES = {
    "nomination_deadline": "",
    "close_date": LATER.isoformat(),
    "reminder_interval_days": "3",
    "max_reminders": "2",
}


def _input(page: str, field_id: str) -> str:
    """The ``<input>`` tag with this id (WTForms writes attributes in sorted order)."""
    found = re.search(rf'<input[^>]*\bid="{field_id}"[^>]*>', page)
    assert found, field_id
    return found.group(0)


def _error_next_to(page: str, field_id: str, message: str) -> bool:
    """``message`` is shown as the error of ``field_id`` (the macro's ``-error`` id)."""
    found = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', page, re.S)
    return bool(found) and message in found.group(1)


# -- access -----------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_login(client, app):
    for method, url in [
        ("get", "/admin/cycles/new"),
        ("get", "/admin/new-cycle"),
        ("post", "/admin/cycles/new"),
        ("get", "/admin/cycles/new/1/participants"),
        ("post", "/admin/cycles/new/1/dates"),
        ("post", "/admin/cycles/new/1/launch"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/admin/login", url
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Cycle)) == 0


def test_the_nav_entry_opens_the_first_step_with_every_bank(signed_in, app):
    with app.app_context():
        db.session.add(CustomBank(key="team-pulse", source=_english_only_bank("team-pulse")))
        db.session.commit()
    with app.test_request_context():
        assert url_for("admin.new_cycle") == "/admin/cycles/new"
    page = signed_in.get("/admin/new-cycle").get_data(as_text=True)
    assert "Set up a review cycle" in page
    assert "Pulse check — pulse v2026.1 · en, de" in page
    assert "team-pulse v2026.1 (custom) · en" in page
    assert '<option value="de">Deutsch (de)</option>' in page


def _english_only_bank(key: str) -> str:
    source = (Path(__file__).parents[2] / "question_banks" / "pulse.yaml").read_text()
    source = source.replace("key: pulse", f"key: {key}")
    return source[: source.index("\ntranslations:")] + "\n"


# -- step 1: basics ---------------------------------------------------------------------


def test_basics_errors_are_shown_next_to_fields_and_keep_what_was_typed(signed_in, app):
    response = signed_in.post(
        "/admin/cycles/new", data={"name": "", "bank": "pulse", "language": "de"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(page, "name", "Give the cycle a name.")
    assert '<option selected value="pulse">' in page
    assert '<option selected value="de">' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Cycle)) == 0


def test_a_name_of_only_spaces_is_no_name(signed_in, app):
    response = signed_in.post(
        "/admin/cycles/new", data={"name": "   ", "bank": "pulse", "language": "en"}
    )
    assert response.status_code == 422
    assert _error_next_to(response.get_data(as_text=True), "name", "Give the cycle a name.")
    cycle_id = start(signed_in, name="  Spring  ")
    assert _cycle(app, cycle_id)["name"] == "Spring"
    renamed = step(signed_in, cycle_id, "basics", name=" ", bank="pulse", language="en")
    assert renamed.status_code == 422
    assert _cycle(app, cycle_id)["name"] == "Spring"


def test_a_refusal_not_about_one_field_is_shown_above_the_form(signed_in, app, monkeypatch):
    def refuse(*args, **kwargs):
        raise DomainError("the organisation is being imported; try again in a minute")

    monkeypatch.setattr(cycles, "create_cycle", refuse)
    response = signed_in.post(
        "/admin/cycles/new", data={"name": "Q3", "bank": "pulse", "language": "en"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    summary = page.split('id="setup-errors"', 1)[1].split("</div>", 1)[0]
    assert "please correct this" in summary
    assert "The organisation is being imported; try again in a minute" in summary
    assert 'value="Q3"' in page


def test_only_a_language_of_the_chosen_bank_is_accepted(signed_in, app):
    with app.app_context():
        db.session.add(CustomBank(key="team-pulse", source=_english_only_bank("team-pulse")))
        db.session.commit()
    response = signed_in.post(
        "/admin/cycles/new", data={"name": "Q3", "bank": "team-pulse", "language": "de"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(page, "language", "has no texts in Deutsch (de)")
    assert 'value="Q3"' in page


def test_basics_create_a_draft_that_can_be_renamed_and_rebased(signed_in, app):
    cycle_id = start(signed_in, name="  Spring  ", language="de")
    assert _cycle(app, cycle_id)["state"] == CycleState.DRAFT
    assert _cycle(app, cycle_id)["language"] == "de"
    response = step(
        signed_in, cycle_id, "basics", name="Spring 2027", bank="leadership", language="en"
    )
    assert response.status_code == 302
    stored = _cycle(app, cycle_id)
    assert (stored["name"], stored["bank"], stored["language"]) == (
        "Spring 2027",
        "leadership",
        "en",
    )
    assert _actions(app)[-2:] == ["cycle.create", "cycle.edit"]


# -- step 2: participants ---------------------------------------------------------------


def test_participants_everyone_a_department_or_a_list(signed_in, app, org):
    cycle_id = start(signed_in)
    step(signed_in, cycle_id, "participants", scope="all")
    assert len(_cycle(app, cycle_id)["participants"]) == 10  # two bosses, eight members

    step(signed_in, cycle_id, "participants", scope="department", department="Sales")
    assert len(_cycle(app, cycle_id)["participants"]) == 4
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/participants").get_data(as_text=True)
    assert "<strong>4</strong> participants saved" in page
    assert " checked " in _input(page, "scope-1")  # department
    assert " checked " not in _input(page, "scope-0")

    picked = org["eng"][:2]
    step(signed_in, cycle_id, "participants", scope="list", employees=[str(i) for i in picked])
    assert _cycle(app, cycle_id)["participants"] == sorted(picked)
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/participants").get_data(as_text=True)
    assert "<strong>2</strong> participants saved" in page
    assert f'value="{picked[0]}" id="employee-{picked[0]}" checked' in page


def test_participant_errors_keep_the_choice(signed_in, app, org):
    cycle_id = start(signed_in)
    response = step(signed_in, cycle_id, "participants", scope="list")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(page, "employees", "Pick at least one person.")
    assert " checked " in _input(page, "scope-2")  # list

    for department in ("Nope", ""):  # an unknown one, or none picked
        response = step(
            signed_in, cycle_id, "participants", scope="department", department=department
        )
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert _error_next_to(page, "department", "Choose a department from the list.")
        assert "import the org chart" not in page
    assert _cycle(app, cycle_id)["participants"] == []


def test_the_filter_narrows_the_list_without_losing_ticks(signed_in, app, org):
    cycle_id = start(signed_in)
    sales_member = org["sales"][0]
    response = step(
        signed_in,
        cycle_id,
        "participants",
        scope="list",
        employees=[str(sales_member)],
        q="e member",
        action="filter",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "E Member 1" in page
    assert "S Member 1" not in page
    assert f'<input type="hidden" name="employees" value="{sales_member}">' in page
    assert _cycle(app, cycle_id)["participants"] == []  # filtering saves nothing


# -- steps 3 to 6 -----------------------------------------------------------------------


def test_nomination_settings_errors_keep_the_typed_values(signed_in, app):
    cycle_id = start(signed_in)
    response = step(signed_in, cycle_id, "nominations", **{**NOMINATIONS, "peer_min": "5"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(page, "peer_max", "Must be at least the fewest peers per participant.")
    assert 'value="5"' in _input(page, "peer_min")
    response = step(signed_in, cycle_id, "nominations", **{**NOMINATIONS, "peer_max": "many"})
    assert _error_next_to(response.get_data(as_text=True), "peer_max", "Not a valid integer")
    assert _cycle(app, cycle_id)["peer_min"] == 3  # the default, untouched

    step(
        signed_in,
        cycle_id,
        "nominations",
        **{**NOMINATIONS, "nomination_mode": "participant", "approval_required": ""},
    )
    stored = _cycle(app, cycle_id)
    assert stored["mode"] == NominationMode.PARTICIPANT
    assert stored["approval_required"] is False
    assert (stored["peer_min"], stored["peer_max"]) == (2, 4)


def test_anonymity_defaults_are_shown_and_below_two_is_refused(signed_in, app):
    cycle_id = start(signed_in)
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/anonymity").get_data(as_text=True)
    assert 'value="3"' in _input(page, "threshold_peer")
    assert "Default 3" in page

    low = {"threshold_peer": "1", "threshold_direct_report": "1", "threshold_other": "1"}
    response = step(signed_in, cycle_id, "anonymity", **{**THRESHOLDS, **low})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in low:  # every group at once, in words
        assert _error_next_to(
            page, field, "Enter a whole number from 2 to 50: 1 would show single raters&#39;"
        )
        assert 'value="1"' in _input(page, field)
    assert "please correct these" in page
    summary = page.split('id="setup-errors"', 1)[1].split("</div>", 1)[0]
    assert ">Direct reports</a>: Enter a whole number from 2 to 50" in summary  # as labelled
    assert _cycle(app, cycle_id)["thresholds"]["peer"] == 3

    step(signed_in, cycle_id, "anonymity", **{**THRESHOLDS, "threshold_peer": "4"})
    assert _cycle(app, cycle_id)["thresholds"]["peer"] == 4


def test_dates_must_be_in_the_future_and_in_order(signed_in, app):
    cycle_id = start(signed_in)
    past = (date.today() - timedelta(days=1)).isoformat()
    response = step(signed_in, cycle_id, "dates", **{**DATES, "close_date": past})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _error_next_to(page, "close_date", "Choose a date in the future.")
    assert f'value="{past}"' in page

    response = step(
        signed_in,
        cycle_id,
        "dates",
        **{**DATES, "nomination_deadline": LATER.isoformat(), "close_date": SOON.isoformat()},
    )
    assert response.status_code == 422
    assert _error_next_to(
        response.get_data(as_text=True),
        "close_date",
        "The close date must be after the nomination deadline",
    )
    assert _cycle(app, cycle_id)["close_date"] is None

    step(signed_in, cycle_id, "dates", **{**DATES, "nomination_deadline": SOON.isoformat()})
    stored = _cycle(app, cycle_id)
    assert (stored["nomination_deadline"], stored["close_date"]) == (SOON, LATER)
    assert (stored["reminder_interval_days"], stored["max_reminders"]) == (3, 2)


def test_the_email_preview_shows_hr_message_escaped(signed_in, app):
    cycle_id = start(signed_in)
    message = "<b>Hi</b> & welcome to $cycle"
    response = step(signed_in, cycle_id, "emails", email_message=message, action="preview")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;b&gt;Hi&lt;/b&gt; &amp; welcome to $cycle" in page
    assert "<b>Hi</b>" not in page
    assert "Hello Alex Sample," in page
    assert "Reminder: feedback for Sam Example" in page
    assert "https://feedback.example/s/your-personal-link" in page
    assert _cycle(app, cycle_id)["email_message"] is None  # a preview saves nothing

    too_long = "x" * 2001
    response = step(signed_in, cycle_id, "emails", email_message=too_long)
    assert response.status_code == 422
    assert _error_next_to(response.get_data(as_text=True), "email_message", "under 2,000")

    step(signed_in, cycle_id, "emails", email_message=f"  {message}\n")
    assert _cycle(app, cycle_id)["email_message"] == message


# -- step 7: review and launch ----------------------------------------------------------


def _fill(client, cycle_id, people, *, mode="auto", message="Thanks for taking part!", **dates):
    for name, data in [
        ("participants", {"scope": "list", "employees": [str(i) for i in people]}),
        ("nominations", {**NOMINATIONS, "nomination_mode": mode}),
        ("anonymity", THRESHOLDS),
        ("dates", {**DATES, **dates}),
        ("emails", {"email_message": message}),
    ]:
        response = step(client, cycle_id, name, **data)
        assert response.status_code == 302, (name, response.get_data(as_text=True))


def test_the_full_wizard_launches_once_confirmed(signed_in, app, org):
    cycle_id = start(signed_in, name="Spring review")
    _fill(signed_in, cycle_id, org["eng"])
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/review").get_data(as_text=True)
    assert "<strong>5</strong> participants" in page
    assert "Pulse check (pulse v2026.1)" in page
    assert "Thanks for taking part!" in page
    assert "problem" not in page.lower().split("<dl")[0]

    refused = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={})
    assert refused.status_code == 422
    assert _error_next_to(refused.get_data(as_text=True), "confirm", "Tick the box to confirm")
    assert _cycle(app, cycle_id)["state"] == CycleState.DRAFT

    response = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/admin/cycles/{cycle_id}"
    stored = _cycle(app, cycle_id)
    assert stored["state"] == CycleState.OPEN
    assert (stored["peer_min"], stored["peer_max"], stored["close_date"]) == (2, 4, LATER)
    with app.app_context():
        assignments = db.session.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.cycle_id == cycle_id)
        )
        bodies = list(
            db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.cycle_id == cycle_id))
        )
    # self + manager + 4 peers each (one department, so no direct reports)
    assert assignments == 5 * 6
    assert bodies
    assert all("Thanks for taking part!" in body for body in bodies)
    actions = _actions(app)
    assert actions[0] == "cycle.create"
    assert actions[-1] == "cycle.launch"
    assert actions.count("cycle.edit") == 4  # the default thresholds were kept: no change


def test_nomination_mode_opens_nominations(signed_in, app, org):
    cycle_id = start(signed_in)
    _fill(signed_in, cycle_id, org["eng"], mode="participant", nomination_deadline=SOON.isoformat())
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/review").get_data(as_text=True)
    assert "Open nominations" in page
    response = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert response.status_code == 302
    assert _cycle(app, cycle_id)["state"] == CycleState.NOMINATING
    with app.app_context():
        kinds = list(db.session.scalars(select(OutboxMessage.kind)))
    assert kinds == ["nominate"] * 5
    assert _actions(app)[-1] == "cycle.open_nominations"


def test_review_lists_every_problem_and_refuses_to_launch(signed_in, app):
    cycle_id = start(signed_in)
    step(signed_in, cycle_id, "nominations", **{**NOMINATIONS, "nomination_mode": "participant"})
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/review").get_data(as_text=True)
    assert "3 problems to fix before launch" in page
    for problem in [
        "Choose at least one participant.",
        "Set a close date",
        "Set a nomination deadline",
    ]:
        assert problem in page
    assert "disabled>Open nominations" in page
    response = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert response.status_code == 422
    assert _cycle(app, cycle_id)["state"] == CycleState.DRAFT


def test_too_few_peers_is_a_warning_that_needs_its_own_tick(signed_in, app, org):
    cycle_id = start(signed_in)
    _fill(signed_in, cycle_id, org["eng"])
    step(signed_in, cycle_id, "nominations", **{**NOMINATIONS, "peer_min": "6", "peer_max": "8"})
    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/review").get_data(as_text=True)
    assert "Fewer possible peers than the minimum of 6 for:" in page
    assert "E Member 1 (4)" in page
    response = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert response.status_code == 422
    assert _error_next_to(response.get_data(as_text=True), "allow_short", "tick this")
    assert _cycle(app, cycle_id)["state"] == CycleState.DRAFT
    response = signed_in.post(
        f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y", "allow_short": "y"}
    )
    assert response.status_code == 302
    assert _cycle(app, cycle_id)["state"] == CycleState.OPEN


def test_a_cycle_that_is_no_longer_a_draft_cannot_be_edited(signed_in, app, org):
    with app.app_context():
        members = db.session.scalars(select(Employee).where(Employee.id.in_(org["eng"]))).all()
        cycle_id = f.launched(db.session, members).id
    response = signed_in.get(f"/admin/cycles/new/{cycle_id}/nominations")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/admin/cycles/{cycle_id}"
    response = step(signed_in, cycle_id, "nominations", **{**NOMINATIONS, "peer_min": "0"})
    assert response.status_code == 302
    assert _cycle(app, cycle_id)["peer_min"] == 2
    response = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert response.status_code == 302
    with signed_in.session_transaction() as sess:
        flashes = [message for _, message in sess.get("_flashes", [])]
    assert any("only draft cycles can be edited" in m for m in flashes)
    assert "cycle.edit" not in _actions(app)


def test_an_unknown_step_or_cycle_is_not_found(signed_in):
    cycle_id = start(signed_in)
    assert signed_in.get(f"/admin/cycles/new/{cycle_id}/nope").status_code == 404
    assert signed_in.get("/admin/cycles/new/999/basics").status_code == 404


def test_every_step_needs_a_csrf_token(signed_in, app, org):
    cycle_id = start(signed_in)
    app.config["WTF_CSRF_ENABLED"] = True
    refused = step(signed_in, cycle_id, "dates", **DATES)
    assert refused.status_code == 400
    refused = signed_in.post(f"/admin/cycles/new/{cycle_id}/launch", data={"confirm": "y"})
    assert refused.status_code == 400
    assert _cycle(app, cycle_id)["close_date"] is None

    page = signed_in.get(f"/admin/cycles/new/{cycle_id}/dates").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    response = step(signed_in, cycle_id, "dates", csrf_token=token, **DATES)
    assert response.status_code == 302
    assert _cycle(app, cycle_id)["close_date"] == LATER
