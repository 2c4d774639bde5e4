"""The REST API against its own OpenAPI document: property tests with schemathesis.

Every operation in ``/api/v1/openapi.json`` gets a bounded number of generated requests
(valid and invalid), authenticated with a real token; each response must not be a server
error and must match the schema the document declares for its status code. SQLite only:
the point is the contract, not the backend (test_api.py runs on both).
"""

from __future__ import annotations

import flask_migrate
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from surveys import accounts, cycles
from surveys.models import UserRole
from tests import factories as f
from tests.conftest import TEST_CONFIG
from tests.surveys.test_reports import build_cycle
from webapp import create_app
from webapp.extensions import db

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    """An app of its own on SQLite, with people, a draft cycle and a closed, answered one."""
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}",
            "API_RATELIMIT": "100000 per minute",
            # A generated request that crashes a view should fail as a 500, like in production.
            "PROPAGATE_EXCEPTIONS": False,
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        session = db.session
        user = accounts.create_user(
            session, "api@example.com", "API", "correct horse battery staple", UserRole.HR
        )
        _, raw = accounts.create_api_token(session, user, "schemathesis")
        closed, _ = build_cycle(session)
        cycles.close_cycle(session, closed)
        _, team = f.team(session, 4, prefix="D")
        f.cycle(session, team, nomination_mode="participant")
        session.commit()
        app.config["TEST_API_TOKEN"] = raw
    yield app
    with app.app_context():
        db.engine.dispose()


#: Values that exist in the fixture data, mixed into generated requests so that they reach
#: past the 404s (cycle 1 is closed with responses, cycle 2 a draft whose people nominate).
KNOWN = {
    "cycle_id": st.sampled_from([1, 2]),
    "key": st.sampled_from(["pulse", "leadership"]),
    "employee_id": st.sampled_from(["T1", "D1", "D2"]),
}
KNOWN_BODY = {
    "bank": st.sampled_from(["pulse", "leadership"]),
    "employee_ids": st.sampled_from([["T2", "T3"], ["D2", "D3", "D4"], ["T1"]]),
}


def _mix_known(case, data) -> None:
    """Replace some generated values with known ones (drawn, so Hypothesis can shrink)."""
    for name, strategy in KNOWN.items():
        if name in (case.path_parameters or {}) and data.draw(st.booleans()):
            case.path_parameters[name] = data.draw(strategy)
    if isinstance(case.body, dict):
        for name, strategy in KNOWN_BODY.items():
            if name in case.body and data.draw(st.booleans()):
                case.body[name] = data.draw(strategy)


def test_every_operation_conforms_to_the_openapi_document(api_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)
    headers = {"Authorization": f"Bearer {api_app.config['TEST_API_TOKEN']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    statuses: dict[str, set[int]] = {}

    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), data=st.data())
        def check(case, data):
            _mix_known(case, data)
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        check()

    # The generated requests reached the views, not only the 404s and 422s around them.
    assert 200 in statuses["GET /api/v1/cycles/{cycle_id}"]
    assert statuses["GET /api/v1/banks/{key}"] & {200, 422}  # 422: a language it lacks
    assert 200 in statuses["GET /api/v1/cycles/{cycle_id}/scores"]
