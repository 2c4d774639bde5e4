import logging

import pytest

from surveys import accounts
from tests import factories as f
from tests.conftest import TEST_CONFIG
from tests.webapp.console import preview_url, sign_in
from tests.webapp.test_reports import close_for_preview
from webapp import create_app
from webapp.extensions import db
from webapp.security import CONTENT_SECURITY_POLICY

PASSWORD = "correct horse battery staple"

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def assert_security_headers(response):
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # development


def test_the_default_policy_allows_no_inline_script_or_style():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"


def test_headers_on_a_survey_page(client, session):
    _, people = f.team(session, 3)
    f.launched(session, people)
    token = f.token_for(session, people[0])
    response = client.get(f"/s/{token}")
    assert response.status_code == 200
    assert_security_headers(response)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # The page's only script is the external file the policy allows.
    page = response.get_data(as_text=True)
    assert '<script src="/static/survey.js" defer></script>' in page
    assert "<script>" not in page
    assert "style=" not in page


def test_headers_on_admin_pages(app, client):
    assert_security_headers(client.get("/admin/login"))
    with app.app_context():
        accounts.create_user(db.session, "hr@example.com", "Hana", PASSWORD)
        db.session.commit()
    client.post("/admin/login", data={"email": "hr@example.com", "password": PASSWORD})
    response = client.get("/admin/")
    assert response.status_code == 200
    assert_security_headers(response)
    assert "style=" not in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/no/such/page", "/s/forged-token", "/admin/../etc/passwd"])
def test_headers_on_not_found_pages(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert_security_headers(response)


def test_headers_on_static_files(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert_security_headers(response)
    # Static files may be cached (every other page is no-store).
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()


def test_a_view_with_its_own_policy_keeps_it(client, session):
    """The report page inlines its stylesheet and sets its own, stricter-elsewhere policy."""
    _, people = f.team(session, 3)
    cycle = f.launched(session, people)
    participant = cycle.participants[0]
    close_for_preview(participant)
    sign_in(client.application, client)
    response = client.get(preview_url(participant))  # the console's report preview
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'")
    assert "style-src 'unsafe-inline'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_in_production(tmp_path):
    app = create_app(
        {
            **TEST_CONFIG,
            "ENV_NAME": "production",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
        }
    )
    response = app.test_client().get("/no/such/page")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    with app.app_context():
        db.engine.dispose()


def test_access_log_lines_never_carry_link_tokens(app, caplog):
    """Links are credentials: a log reader must not be able to open anyone's survey."""
    import logging
    import threading
    import urllib.error
    import urllib.request

    from webapp.cli.serve import build_server
    from webapp.security import redact_links

    assert redact_links("GET /s/abc_DEF-123?section=2 HTTP/1.1") == "GET /s/…?section=2 HTTP/1.1"
    assert redact_links("POST /r/tok/report.pdf HTTP/1.1") == "POST /r/…/report.pdf HTTP/1.1"
    assert redact_links("GET /admin/cycles/3 HTTP/1.1") == "GET /admin/cycles/3 HTTP/1.1"

    server = build_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = "S3cretLinkToken_0123456789abcdefghijklmnopq"
    try:
        with (
            caplog.at_level(logging.INFO, logger="werkzeug"),
            pytest.raises(urllib.error.HTTPError) as raised,
        ):
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/s/{secret}", timeout=10)
        assert raised.value.code == 404
        raised.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/s/…" in line for line in lines), lines
    assert not any(secret in line for line in lines)


def test_error_log_never_carries_link_tokens(app, caplog, monkeypatch):
    """A 500 on a survey link is logged with the route, not the credential."""
    from webapp.rater import routes

    def boom(token):
        raise RuntimeError("boom")

    monkeypatch.setattr(routes.responses, "open_assignment", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    secret = "AnotherSecretLinkToken_abcdefghijklmnopqrstuv"
    with caplog.at_level(logging.ERROR):
        assert app.test_client().get(f"/s/{secret}").status_code == 500
    messages = [r.getMessage() for r in caplog.records]
    assert any("Exception on /s/…" in m for m in messages), messages
    assert not any(secret in m for m in messages)
