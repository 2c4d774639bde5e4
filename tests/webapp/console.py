"""Helpers for tests of the HR console: an account, signing in, console URLs."""

from __future__ import annotations

import re

from sqlalchemy import select

from surveys import accounts
from surveys.models import AuditEvent, Cycle, User, UserRole
from webapp.extensions import db

PASSWORD = "correct horse battery staple"
#: The hidden CSRF input of ``macros/_forms.html``'s ``hidden_csrf()`` (and WTForms').
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def sign_in(app, client, email: str = "hr@example.com", role: UserRole = UserRole.HR) -> None:
    """Create the account if needed (in its own app context) and sign ``client`` in."""
    with app.app_context():
        if db.session.scalar(select(User).where(User.email == email)) is None:
            accounts.create_user(db.session, email, email.split("@")[0], PASSWORD, role)
            db.session.commit()
    data = {"email": email, "password": PASSWORD}
    match = CSRF.search(client.get("/admin/login").get_data(as_text=True))
    if match:  # only when the test turned CSRF protection on
        data["csrf_token"] = match.group(1) or match.group(2)
    response = client.post("/admin/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf_token(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def preview_url(participant, pdf: bool = False) -> str:
    suffix = "report.pdf" if pdf else "report"
    return f"/admin/cycles/{participant.cycle_id}/participants/{participant.id}/{suffix}"


def audit_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).all()
        for event in events:
            db.session.expunge(event)
        return list(events)


def detached_cycle(app, cycle_id: int) -> Cycle:
    """The cycle as the database has it now, readable outside an app context."""
    with app.app_context():
        found = db.session.get(Cycle, cycle_id)
        db.session.expunge(found)
        return found
