"""The People page: search, the two-step CSV import, deactivate and reactivate."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from sqlalchemy import func, select

from surveys.models import AuditEvent, Employee
from tests import factories as f
from tests.webapp.test_admin import CSRF, add_user, login
from webapp.extensions import db

HEADER = "employee_id,name,email,manager_id,department"
PAYLOAD = re.compile(r'<input id="payload" name="payload" type="hidden" value="([^"]+)"')


def seed(app, *people) -> None:
    """``people``: (external_id, name, manager external id or None, department)."""
    with app.app_context():
        made = {}
        for external_id, name, manager, department in people:
            made[external_id] = f.employee(
                db.session, external_id, name, made.get(manager), department
            )
        db.session.commit()


def stored(app) -> dict[str, tuple]:
    with app.app_context():
        rows = db.session.execute(
            select(Employee.external_id, Employee.name, Employee.department, Employee.active)
        )
        return {r.external_id: (r.name, r.department, r.active) for r in rows}


def audit_actions(app) -> list[tuple[str, str, dict]]:
    """The People page's audit events (sign-ins are logged too, by another part)."""
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith("employee"))
            .order_by(AuditEvent.id)
        )
        return [(e.action, e.target, e.detail) for e in events]


def csv_file(*lines: str) -> bytes:
    return "\n".join([HEADER, *lines, ""]).encode()


def upload(client, data: bytes, name="people.csv"):
    from io import BytesIO

    return client.post(
        "/admin/people/import",
        data={"file": (BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def payload_of(page: str) -> str:
    match = PAYLOAD.search(page)
    assert match, "no apply form on the preview"
    return match.group(1)


def apply(client, payload: str):
    return client.post("/admin/people/import/apply", data={"payload": payload})


# -- browsing -----------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_login(client):
    for method, url in [
        ("get", "/admin/people"),
        ("post", "/admin/people/import"),
        ("post", "/admin/people/import/apply"),
        ("post", "/admin/people/1/deactivate"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/admin/login"


def test_a_file_over_the_limit_gets_the_consoles_own_413_page(app, hr_client):
    page = hr_client.get("/admin/people").get_data(as_text=True)
    assert "up to 2 MB" in page  # the limit is on the form
    # A smaller limit keeps the upload in memory (a 2 MB one is spooled to a file that
    # Werkzeug leaves for the garbage collector when it stops reading).
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    big = b"employee_id,name,email,manager_id\n" + b"E1,Ann,a@example.com,\n" * 20_000
    reply = upload(hr_client, big)
    assert reply.status_code == 413
    text = reply.get_data(as_text=True)
    assert "larger than the console's limit of 0.25 MB" in text
    assert "feedback360 employees import FILE.csv" in text
    assert 'aria-label="Console"' in text  # the console's navigation, not a rater's page
    assert "shorten long comments" not in text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Employee)) == 0
    typo = hr_client.get("/admin/peple")
    assert typo.status_code == 404
    assert 'aria-label="Console"' in typo.get_data(as_text=True)
    assert "This link is not valid" not in typo.get_data(as_text=True)


def test_the_list_shows_manager_department_and_status(app, hr_client):
    seed(app, ("B1", "Bea Boss", None, "Sales"), ("E1", "Eve Report", "B1", "Sales"))
    page = hr_client.get("/admin/people").get_data(as_text=True)
    assert "2 people" in page
    row = page[page.index("Eve Report") : page.index("</tr>", page.index("Eve Report"))]
    assert "Bea Boss" in row
    assert "Sales" in row
    assert "Active" in row
    assert "E1" in row


def test_search_matches_name_email_id_and_department(app, hr_client):
    seed(
        app,
        ("A1", "Ada Lovelace", None, "Engineering"),
        ("G2", "Grace Hopper", None, "Navy"),
        ("X3", "Ximena Ruiz", None, "Sales"),
    )

    def found(**query):
        page = hr_client.get("/admin/people", query_string=query).get_data(as_text=True)
        return {name for name in ("Ada Lovelace", "Grace Hopper", "Ximena Ruiz") if name in page}

    assert found(q="lovelace") == {"Ada Lovelace"}
    assert found(q="g2@example") == {"Grace Hopper"}
    assert found(q="x3") == {"Ximena Ruiz"}
    assert found(q="navy") == {"Grace Hopper"}
    assert found(q="engineering ada") == {"Ada Lovelace"}
    assert found(q="100%") == set()  # LIKE wildcards are literal
    assert found() == {"Ada Lovelace", "Grace Hopper", "Ximena Ruiz"}


def test_the_list_is_paged_fifty_at_a_time(app, hr_client):
    seed(app, *[(f"P{i:03}", f"Person {i:03}", None, None) for i in range(120)])
    first = hr_client.get("/admin/people").get_data(as_text=True)
    assert "Person 000" in first
    assert "Person 049" in first
    assert "Person 050" not in first
    assert "page 1 of 3" in first
    third = hr_client.get("/admin/people?page=3").get_data(as_text=True)
    assert "Person 100" in third
    assert "Person 119" in third
    assert "Person 099" not in third
    past_the_end = hr_client.get("/admin/people?page=99").get_data(as_text=True)
    assert "Person 119" in past_the_end


# -- deactivate / reactivate ----------------------------------------------------------------


def test_deactivate_and_reactivate_keep_the_person_and_are_audited(app, hr_client):
    seed(app, ("D1", "Dan Dormant", None, "Ops"), ("K1", "Kim Kept", None, "Ops"))
    with app.app_context():
        person_id = db.session.scalar(select(Employee.id).where(Employee.external_id == "D1"))
    response = hr_client.post(
        f"/admin/people/{person_id}/deactivate", data={"next": "/admin/people?status=active"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/people?status=active")
    assert stored(app)["D1"] == ("Dan Dormant", "Ops", False)
    assert stored(app)["K1"][2] is True

    inactive = hr_client.get("/admin/people?status=inactive").get_data(as_text=True)
    assert "Dan Dormant" in inactive
    assert "Kim Kept" not in inactive
    active = hr_client.get("/admin/people?status=active").get_data(as_text=True)
    assert "Dan Dormant" not in active
    assert "Kim Kept" in active

    hr_client.post(f"/admin/people/{person_id}/reactivate", data={"next": "//evil.example"})
    assert stored(app)["D1"][2] is True
    assert [a[:2] for a in audit_actions(app)] == [
        ("employee.deactivate", "employee:D1"),
        ("employee.reactivate", "employee:D1"),
    ]


def test_deactivating_an_unknown_person_is_404(hr_client):
    assert hr_client.post("/admin/people/999/deactivate").status_code == 404


# -- import ---------------------------------------------------------------------------------


def test_preview_lists_added_changed_and_rejected_and_writes_nothing(app, hr_client):
    seed(app, ("B1", "Bea Boss", None, "Sales"), ("C1", "Cy Old", "B1", "Sales"))
    data = csv_file(
        "B1,Bea Boss,b1@example.com,,Sales",
        "C1,Cy New,c1@example.com,B1,Marketing",
        "N1,Nia New,n1@example.com,B1,Sales",
        "N2,Bad Mail,not-an-email,B1,Sales",
        "N3,No Boss,n3@example.com,ZZ,Sales",
    )
    response = upload(hr_client, data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nothing has been written yet" in page
    added = page[page.index('id="added-heading"') : page.index('id="changed-heading"')]
    assert "N1" in added
    assert "Nia New" in added
    assert "<td>4</td>" in added
    # A rejected row is listed once, as rejected, not also as one to add.
    assert "N3" not in added
    assert "To add (1)" in added
    assert "<strong>1</strong> to add" in page
    changed = page[page.index('id="changed-heading"') :]
    assert "name: Cy Old → Cy New" in changed
    assert "department: Sales → Marketing" in changed
    assert "<td>3</td>" in changed
    rejected = html.unescape(
        page[page.index('id="rejected-heading"') : page.index('id="added-heading"')]
    )
    assert re.search(r"line 5 · N2</span>email 'not-an-email' is not a valid address", rejected)
    assert re.search(r"line 6 · N3</span>manager_id 'ZZ' is neither", rejected)
    assert "all-or-nothing" in rejected
    assert 'action="/admin/people/import/apply"' not in page  # cannot apply with rejections
    assert set(stored(app)) == {"B1", "C1"}
    assert stored(app)["C1"] == ("Cy Old", "Sales", True)
    assert audit_actions(app) == []


def test_apply_writes_the_previewed_file_and_audits_counts(app, hr_client):
    seed(app, ("B1", "Bea Boss", None, "Sales"))
    data = csv_file("B1,Bea Boss,b1@example.com,,Sales", "N1,Nia New,n1@example.com,B1,Sales")
    page = upload(hr_client, data).get_data(as_text=True)
    assert set(stored(app)) == {"B1"}
    response = apply(hr_client, payload_of(page))
    assert response.status_code == 303
    assert stored(app)["N1"] == ("Nia New", "Sales", True)
    assert audit_actions(app) == [
        ("employees.import", "employees", {"added": 1, "changed": 0, "unchanged": 1})
    ]
    listing = hr_client.get("/admin/people").get_data(as_text=True)
    assert "1 added, 0 changed, 1 unchanged" in listing


def test_a_tampered_carried_file_is_refused(app, hr_client):
    data = csv_file("N1,Nia New,n1@example.com,,Sales")
    payload = payload_of(upload(hr_client, data).get_data(as_text=True))
    body, _, signature = payload.rpartition(".")
    forged = f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    response = apply(hr_client, forged)
    assert response.status_code == 303
    assert stored(app) == {}
    page = hr_client.get("/admin/people").get_data(as_text=True)
    assert "could not be verified" in page
    assert apply(hr_client, "garbage").status_code == 303
    assert stored(app) == {}
    assert audit_actions(app) == []


def test_a_preview_from_another_account_is_refused(app, client):
    add_user(app)
    add_user(app, "other@example.com")
    login(client)
    payload = payload_of(upload(client, csv_file("N1,Nia,n1@example.com,,")).get_data(as_text=True))
    client.post("/admin/logout")
    login(client, "other@example.com")
    assert apply(client, payload).status_code == 303
    assert stored(app) == {}


def test_apply_refuses_when_the_org_chart_changed_since_the_preview(app, hr_client):
    seed(app, ("B1", "Bea Boss", None, "Sales"))
    data = csv_file("B1,Bea Boss,b1@example.com,,Marketing", "N1,Nia New,n1@example.com,B1,")
    payload = payload_of(upload(hr_client, data).get_data(as_text=True))
    with app.app_context():  # someone else edits Bea meanwhile
        boss = db.session.scalar(select(Employee).where(Employee.external_id == "B1"))
        boss.department = "Support"
        db.session.commit()
    response = apply(hr_client, payload)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed since your preview" in page
    assert "department: Support → Marketing" in page  # the fresh preview
    assert set(stored(app)) == {"B1"}
    assert stored(app)["B1"][1] == "Support"
    assert audit_actions(app) == []
    # The fresh preview's own apply form works.
    assert apply(hr_client, payload_of(page)).status_code == 303
    assert stored(app)["B1"][1] == "Marketing"
    assert "N1" in stored(app)


def test_upload_without_a_file_shows_the_error(hr_client):
    response = hr_client.post("/admin/people/import", data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose a CSV file." in response.get_data(as_text=True)


def test_the_posts_need_a_csrf_token(app, hr_client):
    seed(app, ("D1", "Dan", None, None))
    with app.app_context():
        person_id = db.session.scalar(select(Employee.id))
    page = upload(hr_client, csv_file("N1,Nia,n1@example.com,,")).get_data(as_text=True)
    payload = payload_of(page)
    app.config["WTF_CSRF_ENABLED"] = True
    assert upload(hr_client, csv_file("N1,Nia,n1@example.com,,")).status_code == 400
    assert apply(hr_client, payload).status_code == 400
    assert hr_client.post(f"/admin/people/{person_id}/deactivate").status_code == 400
    assert set(stored(app)) == {"D1"}
    assert stored(app)["D1"][2] is True

    token = CSRF.search(hr_client.get("/admin/people").get_data(as_text=True)).group(1)
    response = hr_client.post(f"/admin/people/{person_id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 303
    assert stored(app)["D1"][2] is False
    response = hr_client.post(
        "/admin/people/import/apply", data={"payload": payload, "csrf_token": token}
    )
    assert response.status_code == 303
    assert "N1" in stored(app)
