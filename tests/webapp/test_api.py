"""The REST API: every endpoint, auth, validation, state conflicts and schema anonymity."""

from __future__ import annotations

import csv
import json
import random

import pytest
from sqlalchemy import select

from surveys import accounts, cycles, responses, status
from surveys.models import (
    Assignment,
    AuditEvent,
    Cycle,
    CycleState,
    Employee,
    Nomination,
    NominationStatus,
    OutboxMessage,
    Participant,
    UserRole,
)
from surveys.scores_csv import score_csv
from tests import factories as f
from tests.surveys.test_reports import build_cycle

API = "/api/v1"
PASSWORD = "correct horse battery staple"

#: Names that would identify a rater (or a way to reach one) in any response.
FORBIDDEN_FIELDS = {
    "rater",
    "rater_id",
    "rater_ids",
    "rater_name",
    "rater_email",
    "raters",
    "rater_pseudonym",
    "pseudonym",
    "pseudonym_key",
    "response_id",
    "response_ids",
    "responses_list",
    "assignment_id",
    "token",
    "token_hash",
    "access_token",
    "link",
    "submitted_at",
    "submitted_on",
    "answered_at",
    "answers",
    "comments",
}
#: Substrings no response field name may contain (``n_raters`` is a count, allowed).
FORBIDDEN_PARTS = ("pseudonym", "token", "rater_", "response_id", "submitted_")
ALLOWED = {"n_raters"}


def make_token(session, email="hr@example.com", role=UserRole.HR) -> str:
    user = accounts.create_user(session, email, email.split("@")[0], PASSWORD, role)
    _, raw = accounts.create_api_token(session, user, "tests")
    session.commit()
    return raw


@pytest.fixture
def token(session):
    return make_token(session)


@pytest.fixture
def api(client, token):
    """``api.get(path)``, ``api.post(path, json=…)`` … with the bearer token."""

    class Caller:
        def __getattr__(self, method):
            def call(path, **kwargs):
                headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
                return getattr(client, method)(API + path, headers=headers, **kwargs)

            return call

    return Caller()


def audit_actions(session) -> list[str]:
    session.expire_all()
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == status
    assert body["status"]
    assert body["message"]
    return body


# -- the document and its anonymity --------------------------------------------------------


def test_openapi_document_is_served(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/employees", "get"),
        ("/api/v1/employees/import", "post"),
        ("/api/v1/banks", "get"),
        ("/api/v1/banks/{key}", "get"),
        ("/api/v1/cycles", "get"),
        ("/api/v1/cycles", "post"),
        ("/api/v1/cycles/{cycle_id}", "get"),
        ("/api/v1/cycles/{cycle_id}/status", "get"),
        ("/api/v1/cycles/{cycle_id}/launch", "post"),
        ("/api/v1/cycles/{cycle_id}/open-nominations", "post"),
        ("/api/v1/cycles/{cycle_id}/remind", "post"),
        ("/api/v1/cycles/{cycle_id}/close", "post"),
        ("/api/v1/cycles/{cycle_id}/release", "post"),
        ("/api/v1/cycles/{cycle_id}/nominations", "get"),
        ("/api/v1/cycles/{cycle_id}/nominations/{employee_id}", "put"),
        ("/api/v1/cycles/{cycle_id}/scores", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} is not documented"
    assert not any("user" in path for path in paths)  # no user management over the API
    launch = paths["/api/v1/cycles/{cycle_id}/launch"]["post"]["responses"]
    assert {"200", "401", "404", "409", "422", "429"} <= set(launch)
    assert "409" not in paths["/api/v1/cycles"]["get"]["responses"]


def _response_property_names(doc) -> set[str]:
    """Every property name reachable from any documented response, through $refs."""
    components = doc["components"]
    names: set[str] = set()
    seen: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                kind, name = ref.split("/")[-2:]
                if (kind, name) not in seen:
                    seen.add((kind, name))
                    walk(components[kind][name])
            for key, value in node.get("properties", {}).items():
                names.add(key)
                walk(value)
            for key, value in node.items():
                if key != "properties":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operations in doc["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                walk(operation.get("responses", {}))
    return names


def test_no_response_schema_can_carry_rater_identity(client):
    doc = client.get(f"{API}/openapi.json").get_json()
    names = _response_property_names(doc)
    # The walk reaches deep into nested schemas (else an empty set would pass).
    assert {"employee_id", "n_raters", "raw_mean", "nominees", "others_text"} <= names
    assert not names & FORBIDDEN_FIELDS
    leaking = {n for n in names - ALLOWED if any(part in n for part in FORBIDDEN_PARTS)}
    assert not leaking


def test_walker_would_catch_a_leaking_schema():
    doc = {
        "paths": {"/x": {"get": {"responses": {"200": {"$ref": "#/components/schemas/A"}}}}},
        "components": {
            "schemas": {
                "A": {"properties": {"rows": {"items": {"$ref": "#/components/schemas/B"}}}},
                "B": {"properties": {"rater_pseudonym": {"type": "string"}}},
            }
        },
    }
    assert "rater_pseudonym" in _response_property_names(doc)


# -- authentication ----------------------------------------------------------------------


def test_missing_token_is_401_with_a_challenge(client):
    response = client.get(f"{API}/cycles")
    body = error_of(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "invalid_token" not in response.headers["WWW-Authenticate"]
    assert "Bearer" in body["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer f360_not-a-real-token", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer"],
)
def test_bad_tokens_are_401(client, token, header):
    response = client.get(f"{API}/cycles", headers={"Authorization": header})
    error_of(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_revoked_token_and_deactivated_account_are_401(session, client):
    raw = make_token(session)
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get(f"{API}/cycles", headers=headers).status_code == 200
    token = accounts.list_api_tokens(session)[0]
    accounts.revoke_api_token(session, token)
    session.commit()
    response = client.get(f"{API}/cycles", headers=headers)
    error_of(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    raw2 = make_token(session, "other@example.com")
    user = accounts.find_user(session, "other@example.com")
    make_token(session, "admin@example.com", UserRole.ADMIN)  # someone else stays admin
    user.active = False
    session.commit()
    error_of(client.get(f"{API}/cycles", headers={"Authorization": f"Bearer {raw2}"}), 401)


def test_an_admin_token_works_too_and_use_is_recorded(session, client):
    raw = make_token(session, "admin@example.com", UserRole.ADMIN)
    assert client.get(f"{API}/banks", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    session.expire_all()
    assert accounts.list_api_tokens(session)[0].last_used_at is not None


def test_api_needs_no_csrf_token(app, api):
    app.config["WTF_CSRF_ENABLED"] = True
    response = api.post("/cycles", json={"name": "No CSRF", "bank": "pulse"})
    assert response.status_code == 201, response.get_data(as_text=True)


def test_rate_limit_per_token_answers_429_in_json(app, session, client, api):
    app.config["API_RATELIMIT"] = "2 per minute"
    assert api.get("/banks").status_code == 200
    assert api.get("/cycles").status_code == 200
    error_of(api.get("/employees"), 429)  # one budget across the API
    other = make_token(session, "other@example.com")
    headers = {"Authorization": f"Bearer {other}"}
    assert client.get(f"{API}/banks", headers=headers).status_code == 200  # its own budget


def test_unknown_api_urls_are_json_and_the_console_keeps_html(client, api):
    error_of(api.get("/nothing-here"), 404)
    error_of(api.delete("/cycles"), 405)
    page = client.get("/admin/nothing-here")
    assert page.status_code == 404
    assert page.content_type.startswith("text/html")


# -- employees -----------------------------------------------------------------------------


def test_employees_are_paged_searched_and_filtered(session, api):
    _, members = f.team(session, 4, department="Eng")
    f.employee(session, "S1", "Sam Sales", department="Sales")
    members[3].active = False
    session.commit()

    response = api.get("/employees", query_string={"page_size": 2})
    assert response.status_code == 200
    assert len(response.get_json()) == 2
    assert '"total": 6' in response.headers["X-Pagination"]
    page3 = api.get("/employees", query_string={"page_size": 2, "page": 3}).get_json()
    assert len(page3) == 2
    assert api.get("/employees", query_string={"page": 99}).get_json() == []

    found = api.get("/employees", query_string={"search": "member 2"}).get_json()
    # ?q= as in the console's people search
    assert api.get("/employees", query_string={"q": "member 2"}).get_json() == found
    assert found == [
        {
            "employee_id": "T2",
            "name": "T Member 2",
            "email": "t2@example.com",
            "manager_id": "T0",
            "department": "Eng",
            "active": True,
        }
    ]
    sales = api.get("/employees", query_string={"department": "sales"}).get_json()
    assert [p["employee_id"] for p in sales] == ["S1"]
    active = api.get("/employees", query_string={"include_inactive": "false"}).get_json()
    assert "T4" not in {p["employee_id"] for p in active}
    assert len(active) == 5
    assert api.get("/employees", query_string={"search": "100%_"}).get_json() == []
    assert api.get("/employees", query_string={"search": "a\x00"}).status_code == 400


def test_import_dry_run_returns_the_plan_and_writes_nothing(session, api):
    f.employee(session, "E1", "Ada Boss", email="ada@example.com")
    session.commit()
    rows = [
        {
            "employee_id": "E1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "manager_id": None,
        },
        {
            "employee_id": "E2",
            "name": "Bo",
            "email": "bo@example.com",
            "manager_id": "E1",
            "department": "Eng",
        },
        {"employee_id": "E3", "name": "Cy", "email": "not-an-email", "manager_id": "E1"},
        {"employee_id": "E4", "name": "Di", "email": "di@example.com", "manager_id": "E9"},
    ]
    response = api.post("/employees/import", query_string={"dry_run": "true"}, json=rows)
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()
    assert plan["dry_run"] is True
    assert plan["applied"] is False
    assert plan["added"] == [{"row": 2, "employee_id": "E2"}]
    assert plan["changed"] == [
        {
            "row": 1,
            "employee_id": "E1",
            "fields": [{"field": "name", "before": "Ada Boss", "after": "Ada Lovelace"}],
        }
    ]
    assert [(r["row"], r["employee_id"]) for r in plan["rejected"]] == [(3, "E3"), (4, "E4")]
    assert "not a valid address" in plan["rejected"][0]["message"]
    assert "E9" in plan["rejected"][1]["message"]
    session.expire_all()
    assert session.scalar(select(Employee).where(Employee.external_id == "E2")) is None
    assert session.scalar(select(Employee).where(Employee.external_id == "E1")).name == "Ada Boss"
    assert audit_actions(session) == []


def test_import_applies_all_or_nothing(session, api):
    good = [
        {"employee_id": "E1", "name": "Ada", "email": "ada@example.com", "manager_id": None},
        {"employee_id": "E2", "name": "Bo", "email": "bo@example.com", "manager_id": "E1"},
    ]
    bad = [*good, {"employee_id": "E3", "name": "", "email": "c@example.com", "manager_id": None}]
    body = error_of(api.post("/employees/import", json=bad), 422)
    assert body["errors"]["rejected"] == [
        {"row": 3, "employee_id": "E3", "message": "name is empty"}
    ]
    assert session.scalar(select(Employee)) is None

    response = api.post("/employees/import", json=good)
    assert response.status_code == 200
    assert response.get_json()["applied"] is True
    assert [a["employee_id"] for a in response.get_json()["added"]] == ["E1", "E2"]
    session.expire_all()
    bo = session.scalar(select(Employee).where(Employee.external_id == "E2"))
    assert bo.manager.external_id == "E1"
    event = session.scalar(select(AuditEvent))
    assert (event.action, event.actor, event.detail) == (
        "api.employees.import",
        "hr@example.com",
        {"added": 2, "changed": 0},
    )


@pytest.mark.parametrize(
    "body",
    [
        {"employee_id": "E1"},  # not a list
        [{"employee_id": "E1", "name": "A", "email": "a@example.com"}],  # manager_id missing
        [{"employee_id": 1, "name": "A", "email": "a@example.com", "manager_id": None}],
        [{"employee_id": "E1", "name": "A", "email": "a@x.io", "manager_id": None, "x": 1}],
    ],
)
def test_import_body_of_the_wrong_shape_is_422(session, api, body):
    body = error_of(api.post("/employees/import", json=body), 422)
    assert body["errors"]
    assert session.scalar(select(Employee)) is None


# -- banks ---------------------------------------------------------------------------------


def test_banks_list_and_show_in_a_language(api):
    banks = api.get("/banks").get_json()
    keys = [b["key"] for b in banks]
    assert {"pulse", "leadership"} <= set(keys)
    pulse = next(b for b in banks if b["key"] == "pulse")
    assert pulse["items"] > 0
    assert pulse["custom"] is False

    shown = api.get("/banks/pulse").get_json()
    assert shown["language"] == pulse["language"]
    assert sum(len(c["items"]) for c in shown["competencies"]) == pulse["items"]
    assert shown["competencies"][0]["items"][0]["others_text"]

    other = next((lang for lang in pulse["languages"] if lang != pulse["language"]), None)
    if other is not None:
        translated = api.get("/banks/pulse", query_string={"lang": other}).get_json()
        assert translated["language"] == other
        assert (
            translated["competencies"][0]["items"][0]["id"]
            == (shown["competencies"][0]["items"][0]["id"])
        )
    error_of(api.get("/banks/pulse", query_string={"lang": "xx"}), 422)
    error_of(api.get("/banks/no-such-bank"), 404)


# -- cycles --------------------------------------------------------------------------------


def test_create_cycle_with_settings_and_a_department(session, api):
    f.team(session, 3, department="Eng")
    f.employee(session, "S1", department="Sales")
    session.commit()
    response = api.post(
        "/cycles",
        json={
            "name": "Spring",
            "bank": "pulse",
            "participants": {"mode": "department", "department": "Eng"},
            "settings": {"peer_min": 1, "peer_max": 2, "thresholds": {"peer": 4}},
        },
    )
    assert response.status_code == 201, response.get_json()
    cycle = response.get_json()
    assert cycle["state"] == "draft"
    assert cycle["participants"] == 4
    assert cycle["settings"]["peer_min"] == 1
    assert cycle["settings"]["thresholds"]["peer"] == 4
    assert cycle["settings"]["thresholds"]["others"] == 3  # defaults filled in
    assert {p["employee_id"] for p in cycle["participant_list"]} == {"T0", "T1", "T2", "T3"}
    assert api.get(f"/cycles/{cycle['id']}").get_json() == cycle
    listed = api.get("/cycles").get_json()
    assert [(c["id"], c["participants"]) for c in listed] == [(cycle["id"], 4)]
    assert api.get("/cycles", query_string={"state": "open"}).get_json() == []
    assert audit_actions(session) == ["api.cycle.create"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bank": "pulse"}, "name"),
        ({"name": "   ", "bank": "pulse"}, "name"),
        ({"name": "X", "bank": "nope"}, "bank"),
        ({"name": "X", "bank": "pulse", "settings": {"peer_min": 5, "peer_max": 2}}, "peer_max"),
        ({"name": "X", "bank": "pulse", "settings": {"thresholds": {"peer": 1}}}, "thresholds"),
        ({"name": "X", "bank": "pulse", "settings": {"colour": "red"}}, "colour"),
        ({"name": "X", "bank": "pulse", "participants": {"mode": "department"}}, "department"),
        (
            {
                "name": "X",
                "bank": "pulse",
                "participants": {"mode": "employees", "employee_ids": ["NOPE"]},
            },
            "participants",
        ),
        ({"name": "X", "bank": "pulse", "settings": {"language": "xx"}}, None),
    ],
)
def test_invalid_cycles_are_422_and_nothing_is_created(session, api, body, field):
    f.employee(session, "E1")
    session.commit()
    error = error_of(api.post("/cycles", json=body), 422)
    if field is not None:
        assert field in str(error.get("errors", {})), error
    assert session.scalar(select(Cycle)) is None
    assert audit_actions(session) == []


def test_a_cycle_from_launch_to_release(session, api):
    f.team(session, 4)
    session.commit()
    created = api.post(
        "/cycles",
        json={
            "name": "Autumn",
            "bank": "pulse",
            "participants": {"mode": "employees", "employee_ids": ["T1", "T2"]},
            "settings": {"peer_min": 2, "peer_max": 3},
        },
    ).get_json()
    cid = created["id"]

    error_of(api.post(f"/cycles/{cid}/remind"), 409)  # not open yet
    error_of(api.post(f"/cycles/{cid}/open-nominations"), 409)  # peers come from the chart
    error_of(api.get(f"/cycles/{cid}/scores"), 409)
    launched = api.post(f"/cycles/{cid}/launch", json={})
    assert launched.status_code == 200, launched.get_json()
    result = launched.get_json()
    assert result["state"] == "open"
    session.expire_all()
    assigned = session.scalars(select(Assignment).where(Assignment.cycle_id == cid)).all()
    assert result["surveys"] == len(assigned) > 0
    invites = session.scalars(
        select(OutboxMessage).where(OutboxMessage.cycle_id == cid, OutboxMessage.kind == "invite")
    ).all()
    assert result["emails"] == len(invites) == len({a.rater_id for a in assigned})
    conflict = error_of(api.post(f"/cycles/{cid}/launch"), 409)
    assert "open" in conflict["message"]

    status = api.get(f"/cycles/{cid}/status").get_json()
    assert status["state"] == "open"
    assert status["total"]["invited"] == result["surveys"]
    assert status["total"]["submitted"] == 0
    assert status["total"]["rate"] == 0
    assert {p["employee_id"] for p in status["participants"]} == {"T1", "T2"}
    assert set(status["by_relationship"]) <= {"self", "manager", "peer", "direct_report"}

    assert api.post(f"/cycles/{cid}/remind").get_json()["emails"] == 0  # invited just now
    closed = api.post(f"/cycles/{cid}/close").get_json()
    assert (closed["state"], closed["responses"]) == ("closed", 0)
    error_of(api.post(f"/cycles/{cid}/close"), 409)
    assert api.get(f"/cycles/{cid}/scores").get_json()["scores"] == []
    released = api.post(f"/cycles/{cid}/release").get_json()
    assert (released["state"], released["reports"]) == ("released", 2)
    error_of(api.post(f"/cycles/{cid}/release"), 409)
    assert api.get(f"/cycles/{cid}").get_json()["released_at"] is not None

    assert audit_actions(session) == [
        "api.cycle.create",
        "api.cycle.launch",
        "api.cycle.remind",
        "api.cycle.close",
        "api.cycle.release",
    ]
    events = session.scalars(select(AuditEvent)).all()
    assert {e.actor for e in events} == {"hr@example.com"}
    assert all(e.target.startswith(f"cycle {cid} ") for e in events)


def test_a_crash_is_a_json_500_that_reveals_nothing(app, session, api, monkeypatch):
    cycle = f.cycle(session, [f.employee(session, "E1")])
    session.commit()

    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(status, "cycle_status", crash)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    body = error_of(api.get(f"/cycles/{cycle.id}/status"), 500)
    assert "secret" not in str(body)


def test_malformed_json_is_400(session, api):
    response = api.post("/cycles", data="{not json", content_type="application/json")
    error_of(response, 400)
    assert session.scalar(select(Cycle)) is None


def test_launch_refuses_too_few_peers_unless_allowed(session, api):
    _, team = f.team(session, 2)
    cycle = f.cycle(session, team[:1], peer_min=3, peer_max=4)
    session.commit()
    error = error_of(api.post(f"/cycles/{cycle.id}/launch"), 409)
    assert "too few peers" in error["message"]
    assert api.post(f"/cycles/{cycle.id}/launch", json={"allow_short": True}).status_code == 200
    error_of(api.post(f"/cycles/{cycle.id}/launch", json={"allow_short": "maybe"}), 422)


def test_unknown_cycles_are_404(api):
    for path in ("", "/status", "/nominations", "/scores"):
        error_of(api.get(f"/cycles/12345{path}"), 404)
    for action in ("launch", "remind", "close", "release", "open-nominations"):
        error_of(api.post(f"/cycles/12345/{action}"), 404)
    error_of(api.get(f"/cycles/{2**40}"), 404)


# -- nominations ---------------------------------------------------------------------------


def test_nominations_listed_and_overridden_by_hr(session, api):
    _, team = f.team(session, 5)
    cycle = f.cycle(session, team[:2], nomination_mode="participant", peer_min=2, peer_max=3)
    session.commit()
    cid = cycle.id
    assert api.post(f"/cycles/{cid}/open-nominations").get_json()["participants"] == 2

    listed = api.get(f"/cycles/{cid}/nominations").get_json()
    assert [(p["employee_id"], p["nominees"]) for p in listed] == [("T1", []), ("T2", [])]

    response = api.put(f"/cycles/{cid}/nominations/T1", json={"employee_ids": ["T3", "T4"]})
    assert response.status_code == 200, response.get_json()
    entry = response.get_json()
    assert entry["nominations_approved"] is True
    assert [(n["employee_id"], n["status"], n["source"]) for n in entry["nominees"]] == [
        ("T3", "approved", "hr"),
        ("T4", "approved", "hr"),
    ]
    # A second override replaces the list: the dropped nominee is marked rejected.
    again = api.put(f"/cycles/{cid}/nominations/T1", json={"employee_ids": ["T3", "T5"]})
    statuses = {n["employee_id"]: n["status"] for n in again.get_json()["nominees"]}
    assert statuses == {"T3": "approved", "T4": "rejected", "T5": "approved"}
    session.expire_all()
    stored = session.scalars(
        select(Nomination).join(Participant).where(Participant.cycle_id == cid)
    ).all()
    assert {n.status for n in stored} == {NominationStatus.APPROVED, NominationStatus.REJECTED}

    error_of(api.put(f"/cycles/{cid}/nominations/T1", json={"employee_ids": ["T3"]}), 422)
    error_of(api.put(f"/cycles/{cid}/nominations/T1", json={"employee_ids": ["T1", "T3"]}), 422)
    error_of(api.put(f"/cycles/{cid}/nominations/T1", json={"employee_ids": ["X", "Y"]}), 422)
    error_of(api.put(f"/cycles/{cid}/nominations/T1", json={"ids": ["T3"]}), 422)
    error_of(api.put(f"/cycles/{cid}/nominations/T5", json={"employee_ids": ["T3", "T4"]}), 404)

    assert api.post(f"/cycles/{cid}/launch").status_code == 200
    error_of(api.put(f"/cycles/{cid}/nominations/T2", json={"employee_ids": ["T3", "T4"]}), 409)
    assert audit_actions(session) == [
        "api.cycle.open_nominations",
        "api.nominations.override",
        "api.nominations.override",
        "api.cycle.launch",
    ]


# -- scores --------------------------------------------------------------------------------


def test_scores_are_aggregated_and_suppressed_groups_are_absent(session, api):
    cycle, participant = build_cycle(session)  # self 5, manager 4, peers 2, 3, 4
    cycles.close_cycle(session, cycle)
    session.commit()
    response = api.get(f"/cycles/{cycle.id}/scores")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "closed"
    assert body["min_group_size"] == 3
    rows = body["scores"]
    assert rows
    assert {r["employee_id"] for r in rows} == {participant.employee.external_id}
    # The manager (1 rater) is below 3; peers then go too, or others − peers = manager.
    assert {r["relationship"] for r in rows} == {"self", "others"}
    overall = {r["relationship"]: r for r in rows if r["competency"] == "ALL"}
    assert overall["self"]["raw_mean"] == 5.0
    assert overall["self"]["n_raters"] == 1
    assert overall["others"]["n_raters"] == 4
    assert overall["others"]["raw_mean"] == pytest.approx((4 + 2 + 3 + 4) / 4)
    assert overall["others"]["ci_low"] <= overall["others"]["ci_high"]
    assert set(rows[0]) == {
        "employee_id",
        "name",
        "competency",
        "relationship",
        "n_raters",
        "raw_mean",
        "adjusted",
        "se",
        "ci_low",
        "ci_high",
    }
    only = api.get(f"/cycles/{cycle.id}/scores", query_string={"employee_id": "T2"})
    assert only.get_json()["scores"] == []


def _everyone_rated(session, people=6) -> Cycle:
    """A closed cycle of a team of ``people`` where every rater answered every item."""
    _, team = f.team(session, people)
    cycle = f.launched(session, team, peer_min=3, peer_max=4)
    bank = responses.cycle_bank(cycle)
    surveys = session.scalars(select(Assignment).where(Assignment.cycle_id == cycle.id)).all()
    rng = random.Random(360)
    for assignment in surveys:
        lenient = rng.choice([0, 0, 1])  # some raters rate everyone higher
        values = {item.id: min(5, rng.randint(1, 4) + lenient) for item in bank.items}
        responses.save_draft(session, assignment, responses.Answers(values, {}))
        responses.submit(session, assignment)
    cycles.close_cycle(session, cycle)
    session.commit()
    return cycle


def test_scores_are_paged_by_participant(session, api):
    cycle = _everyone_rated(session)
    whole = api.get(f"/cycles/{cycle.id}/scores")
    assert json.loads(whole.headers["X-Pagination"])["total"] == 6
    rows = whole.get_json()["scores"]
    pages, paged = [], []
    for page in (1, 2, 3):
        response = api.get(
            f"/cycles/{cycle.id}/scores", query_string={"page": page, "page_size": 2}
        )
        assert response.status_code == 200
        header = json.loads(response.headers["X-Pagination"])
        assert (header["total"], header["total_pages"], header["page"]) == (6, 3, page)
        body = response.get_json()
        assert body["method"] == whole.get_json()["method"]
        pages.append({r["employee_id"] for r in body["scores"]})
        paged += body["scores"]
    assert [len(p) for p in pages] == [2, 2, 2]
    assert paged == rows  # the same rows in the same order
    beyond = api.get(f"/cycles/{cycle.id}/scores", query_string={"page": 4, "page_size": 2})
    assert beyond.get_json()["scores"] == []
    assert beyond.get_json()["method"] is None
    absurd = api.get(f"/cycles/{cycle.id}/scores", query_string={"page": 10**30})
    assert absurd.status_code == 200
    assert absurd.get_json()["scores"] == []
    error_of(api.get(f"/cycles/{cycle.id}/scores", query_string={"page_size": 501}), 422)
    one = api.get(
        f"/cycles/{cycle.id}/scores", query_string={"employee_id": rows[0]["employee_id"]}
    )
    assert json.loads(one.headers["X-Pagination"])["total"] == 1
    nobody = api.get(f"/cycles/{cycle.id}/scores", query_string={"employee_id": "NOBODY"})
    assert json.loads(nobody.headers["X-Pagination"])["total"] == 0
    assert nobody.get_json()["scores"] == []
    assert one.get_json()["scores"] == [
        r for r in rows if r["employee_id"] == rows[0]["employee_id"]
    ]


def test_scores_are_those_of_feedback360_score(session, api, tmp_path):
    """Without N/A answers the API's rows are scores.csv's unsuppressed rows for the
    cycle's ratings: pooled answers and rater means then agree (with N/A they differ, and
    the API follows the reports: tests/webapp/test_export_pooled.py)."""
    cycle = _everyone_rated(session)
    ratings = f.stored_answers(session, cycle)
    lines = ["rater_id,ratee_id,item_id,relationship,rating"]
    lines += [f"{r},{p},{i},{rel.value},{'' if v is None else v}" for r, p, i, rel, v in ratings]
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    score_csv(tmp_path / "ratings.csv", tmp_path / "scores.csv", bank="pulse", min_group_size=3)
    with open(tmp_path / "scores.csv", newline="") as file:
        expected = [row for row in csv.DictReader(file) if row["suppressed"] in ("0", "")]
    external = {
        p.id: p.employee.external_id
        for p in session.scalars(select(Participant).where(Participant.cycle_id == cycle.id))
    }

    def num(text):
        return round(float(text), 4) if text else None

    want = {
        (external[int(r["ratee_id"])], r["competency"], r["relationship"]): (
            int(r["n_raters"]),
            *(num(r[k]) for k in ("raw_mean", "adjusted", "se", "ci_low", "ci_high")),
        )
        for r in expected
    }
    rows = api.get(f"/cycles/{cycle.id}/scores").get_json()["scores"]
    got = {
        (r["employee_id"], r["competency"], r["relationship"]): (
            r["n_raters"],
            *(r[k] for k in ("raw_mean", "adjusted", "se", "ci_low", "ci_high")),
        )
        for r in rows
    }
    assert len(want) > 10
    assert any(v[2] is not None for v in want.values())  # adjusted scores were compared too
    assert got == want


def test_stricter_thresholds_suppress_more(session, api):
    cycle, _ = build_cycle(session)
    cycle.thresholds = {**cycle.thresholds, "others": 5}
    cycles.close_cycle(session, cycle)
    session.commit()
    rows = api.get(f"/cycles/{cycle.id}/scores").get_json()["scores"]
    assert {r["relationship"] for r in rows} == {"self"}


def test_session_state_is_clean_after_a_refused_change(session, api):
    _, team = f.team(session, 2)
    cycle = f.cycle(session, team[:1], peer_min=3, peer_max=4)
    session.commit()
    error_of(api.post(f"/cycles/{cycle.id}/launch"), 409)
    session.expire_all()
    assert session.get(Cycle, cycle.id).state == CycleState.DRAFT
    assert audit_actions(session) == []
