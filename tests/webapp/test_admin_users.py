"""Console accounts, your own password, API tokens and the audit log (issue #5 §1, §9)."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from surveys import accounts, audit
from surveys.models import ApiToken, AuditEvent, User, UserRole
from webapp.admin.users import AUDIT_PAGE_SIZE, compact
from webapp.extensions import db

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase here"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
RAW_TOKEN = re.compile(r'value="(f360_[^"]+)"')


# Short app contexts only: one held open across client requests would share ``g``, where
# Flask-Login caches the signed-in user.


def add_user(app, email, role=UserRole.HR, password=PASSWORD) -> int:
    with app.app_context():
        user = accounts.create_user(db.session, email, email.split("@")[0].title(), password, role)
        db.session.commit()
        return user.id


def get_user(app, user_id) -> dict:
    with app.app_context():
        user = db.session.get(User, user_id)
        return {"email": user.email, "role": user.role, "active": user.active}


def events(app, prefix=None) -> list[tuple[str, str, str, dict]]:
    """(actor, action, target, detail) of every audit event, oldest first."""
    with app.app_context():
        found, _ = audit.list_events(db.session, action=prefix, limit=1000)
        return [(e.actor, e.action, e.target, e.detail) for e in reversed(found)]


def user_count(app) -> int:
    with app.app_context():
        return len(accounts.list_users(db.session))


@pytest.fixture
def boss(app):
    return add_user(app, "boss@example.com", UserRole.ADMIN)


@pytest.fixture
def hr(app):
    return add_user(app, "hr@example.com")


def login(client, email, password=PASSWORD):
    response = client.post("/admin/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def new_user_data(**changes) -> dict:
    data = {
        "email": "New.Person@Example.com",
        "name": "New Person",
        "role": "hr",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    return {**data, **changes}


# -- who may open what ----------------------------------------------------------------


PAGES = ["/admin/users", "/admin/account", "/admin/api-tokens", "/admin/audit"]
POSTS = [
    "/admin/users",
    "/admin/users/1/role",
    "/admin/users/1/deactivate",
    "/admin/users/1/reactivate",
    "/admin/account",
    "/admin/api-tokens",
    "/admin/api-tokens/1/revoke",
]


@pytest.mark.parametrize("url", PAGES)
def test_a_signed_out_visitor_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/admin/login"
    assert parse_qs(target.query)["next"] == [url]


@pytest.mark.parametrize("url", POSTS)
def test_a_signed_out_post_changes_nothing(app, client, boss, url):
    response = client.post(url, data={**new_user_data(), "name": "x", "role": "hr"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"
    assert user_count(app) == 1
    assert events(app) == []


@pytest.mark.parametrize(
    "url",
    [
        "/admin/users",
        "/admin/users/1/role",
        "/admin/users/1/deactivate",
        "/admin/users/1/reactivate",
    ],
)
def test_hr_cannot_manage_users(app, client, boss, hr, url):
    login(client, "hr@example.com")
    assert client.get("/admin/users").status_code == 403
    response = client.post(url.replace("/1/", f"/{boss}/"), data={**new_user_data(), "role": "hr"})
    assert response.status_code == 403
    assert user_count(app) == 2
    assert get_user(app, boss) == {"email": "boss@example.com", "role": "admin", "active": True}
    assert [e[1] for e in events(app)] == ["account.login"]


def test_hr_sees_no_users_link_and_admin_does(client, boss, hr):
    login(client, "hr@example.com")
    assert 'href="/admin/users"' not in text(client.get("/admin/account"))
    client.post("/admin/logout")
    login(client, "boss@example.com")
    assert 'href="/admin/users"' in text(client.get("/admin/account"))


@pytest.mark.parametrize("url", ["/admin/account", "/admin/api-tokens", "/admin/audit"])
def test_hr_opens_account_tokens_and_audit(client, hr, url):
    login(client, "hr@example.com")
    assert client.get(url).status_code == 200


# -- /admin/users ---------------------------------------------------------------------


def test_users_page_lists_every_account(app, client, boss, hr):
    add_user(app, "gone@example.com")
    with app.app_context():
        db.session.get(User, 3).active = False
        db.session.commit()
    login(client, "boss@example.com")
    page = text(client.get("/admin/users"))
    assert re.search(r"boss@example.com <span class=\"count\">\(you\)</span>", page)
    row = page[page.index(f'id="user-{hr}"') :].split("</tr>")[0]
    assert "hr@example.com" in row
    assert "<td>Hr</td>" in row
    assert '<option value="hr" selected>' in row
    assert "<td>yes</td>" in row
    assert "<td>never</td>" in row
    gone = page[page.index('id="user-3"') :].split("</tr>")[0]
    assert "<td>no</td>" in gone
    assert "Reactivate" in gone
    mine = page[page.index(f'id="user-{boss}"') :].split("</tr>")[0]
    assert "Deactivate" not in mine  # no button to lock yourself out
    assert "Change role" not in mine
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d</td>", mine)  # last sign-in: just now


def test_admin_creates_an_account_who_can_then_sign_in(app, client, boss):
    login(client, "boss@example.com")
    response = client.post("/admin/users", data=new_user_data(role="admin"))
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/users"
    assert "Account created for new.person@example.com (admin)." in text(client.get("/admin/users"))
    assert events(app, "user.") == [
        ("boss@example.com", "user.create", "user:new.person@example.com", {"role": "admin"})
    ]
    client.post("/admin/logout")
    login(client, "new.person@example.com")
    assert client.get("/admin/users").status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": ""}, "email", "This field is required."),
        ({"email": "not-an-email"}, "email", "is not a valid email address"),
        ({"email": "boss@example.com"}, "email", "An account for boss@example.com already exists"),
        ({"name": ""}, "name", "This field is required."),
        ({"role": "root"}, "role", "Not a valid choice"),
        ({"password": "short", "confirm": "short"}, "password", "at least 12 characters long"),
        ({"confirm": PASSWORD + "!"}, "confirm", "The two passwords are not the same."),
    ],
)
def test_new_account_errors_show_next_to_their_input(app, client, boss, changes, field, message):
    login(client, "boss@example.com")
    response = client.post("/admin/users", data=new_user_data(**changes))
    assert response.status_code == 422
    page = text(response)
    error = re.search(rf'<p class="field-error" id="{field}-error">.*?</p>', page, re.S)
    assert error, page
    assert message in error.group(0)
    assert f'id="{field}"' in page
    assert f'aria-describedby="{field}-error"' in page or f"{field}-hint {field}-error" in page
    # What was typed is kept (except passwords, which are never echoed back).
    if field != "name":
        assert 'value="New Person"' in page
    assert PASSWORD not in page
    assert user_count(app) == 1
    assert events(app, "user.") == []


def test_admin_changes_a_role_and_it_is_audited(app, client, boss, hr):
    login(client, "boss@example.com")
    response = client.post(f"/admin/users/{hr}/role", data={"role": "admin"})
    assert response.headers["Location"] == "/admin/users"
    assert get_user(app, hr)["role"] == UserRole.ADMIN
    assert "hr@example.com is now admin." in text(client.get("/admin/users"))
    # Asking for the role it already has changes and logs nothing.
    client.post(f"/admin/users/{hr}/role", data={"role": "admin"})
    assert events(app, "user.") == [
        ("boss@example.com", "user.role", "user:hr@example.com", {"from": "hr", "to": "admin"})
    ]


def test_an_unknown_role_is_refused(app, client, boss, hr):
    login(client, "boss@example.com")
    client.post(f"/admin/users/{hr}/role", data={"role": "root"})
    assert "Choose a role from the list." in text(client.get("/admin/users"))
    assert get_user(app, hr)["role"] == UserRole.HR


def test_an_admin_cannot_demote_or_deactivate_themselves(app, client, boss):
    login(client, "boss@example.com")
    client.post(f"/admin/users/{boss}/role", data={"role": "hr"})
    assert "You cannot demote your own account" in text(client.get("/admin/users"))
    client.post(f"/admin/users/{boss}/deactivate")
    assert "You cannot deactivate your own account" in text(client.get("/admin/users"))
    assert get_user(app, boss) == {"email": "boss@example.com", "role": "admin", "active": True}
    assert events(app, "user.") == []


def test_deactivating_signs_the_account_out_and_reactivating_lets_it_back(app, client, boss, hr):
    other = app.test_client()
    login(other, "hr@example.com")
    assert other.get("/admin/audit").status_code == 200
    login(client, "boss@example.com")
    response = client.post(f"/admin/users/{hr}/deactivate")
    assert response.headers["Location"] == "/admin/users"
    assert "hr@example.com is deactivated" in text(client.get("/admin/users"))
    assert other.get("/admin/audit").status_code == 302  # its session is over
    client.post(f"/admin/users/{hr}/reactivate")
    assert get_user(app, hr)["active"]
    login(other, "hr@example.com")
    assert [e[1:3] for e in events(app, "user.")] == [
        ("user.deactivate", "user:hr@example.com"),
        ("user.reactivate", "user:hr@example.com"),
    ]


def test_unknown_users_are_404(client, boss):
    login(client, "boss@example.com")
    for action in ("role", "deactivate", "reactivate"):
        assert client.post(f"/admin/users/999/{action}", data={"role": "hr"}).status_code == 404


# -- /admin/account -------------------------------------------------------------------


def test_changing_your_password(app, client, hr):
    login(client, "hr@example.com")
    page = text(client.get("/admin/account"))
    assert "hr@example.com" in page
    assert 'autocomplete="current-password"' in page
    assert 'autocomplete="new-password"' in page
    response = client.post(
        "/admin/account",
        data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.headers["Location"] == "/admin/account"
    assert "Your password is changed." in text(client.get("/admin/account"))
    assert events(app, "account.password") == [
        ("hr@example.com", "account.password", "user:hr@example.com", {})
    ]
    client.post("/admin/logout")
    assert (
        client.post(
            "/admin/login", data={"email": "hr@example.com", "password": PASSWORD}
        ).status_code
        == 200
    )  # the old one no longer works
    login(client, "hr@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"current_password": "wrong password!!"}, "current_password", "not your current password"),
        ({"current_password": ""}, "current_password", "This field is required."),
        ({"password": "short", "confirm": "short"}, "password", "at least 12 characters"),
        ({"password": PASSWORD, "confirm": PASSWORD}, "password", "must differ"),
        ({"confirm": NEW_PASSWORD + "x"}, "confirm", "The two passwords are not the same."),
    ],
)
def test_password_change_errors_show_next_to_their_input(app, client, hr, data, field, message):
    login(client, "hr@example.com")
    form = {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = client.post("/admin/account", data={**form, **data})
    assert response.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error">.*?</p>', text(response), re.S)
    assert error, text(response)
    assert message in error.group(0)
    assert events(app, "account.password") == []
    with app.app_context():
        assert accounts.authenticate(db.session, "hr@example.com", PASSWORD) is not None


# -- /admin/api-tokens ----------------------------------------------------------------


def create_token(client, name="HRIS sync") -> tuple[str, str]:
    response = client.post("/admin/api-tokens", data={"name": name})
    assert response.status_code == 200
    page = text(response)
    return RAW_TOKEN.search(page).group(1), page


def test_a_new_token_is_shown_once_and_works(app, client, hr):
    login(client, "hr@example.com")
    response = client.post("/admin/api-tokens", data={"name": "HRIS sync"})
    assert response.headers["Cache-Control"] == "no-store"  # no copy in any cache
    page = text(response)
    raw = RAW_TOKEN.search(page).group(1)
    assert "Copy it now" in page
    assert "not shown again" in page
    assert client.get("/admin/api-tokens").get_data(as_text=True).count(raw) == 0
    assert "HRIS sync" in text(client.get("/admin/api-tokens"))
    with app.app_context():
        assert accounts.authenticate_api_token(db.session, raw).email == "hr@example.com"
        db.session.commit()
        stored = db.session.scalars(select(AuditEvent)).all()
        assert all(raw not in f"{e.target} {e.detail}" for e in stored)
        token_id = db.session.scalar(select(ApiToken.id))
    assert events(app, "api_token.") == [
        ("hr@example.com", "api_token.create", f"api_token:{token_id}", {"name": "HRIS sync"})
    ]
    with client.session_transaction() as cookie_session:
        assert raw not in str(dict(cookie_session))


def test_a_revoked_token_stops_working(app, client, hr):
    login(client, "hr@example.com")
    raw, _ = create_token(client)
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    response = client.post(f"/admin/api-tokens/{token_id}/revoke")
    assert response.headers["Location"] == "/admin/api-tokens"
    page = text(client.get("/admin/api-tokens"))
    assert "Token “HRIS sync” is revoked" in page
    assert re.search(r"revoked \d{4}-\d\d-\d\d", page)
    with app.app_context():
        assert accounts.authenticate_api_token(db.session, raw) is None
    client.post(f"/admin/api-tokens/{token_id}/revoke")  # twice: logged once
    assert [e[1] for e in events(app, "api_token.")] == ["api_token.create", "api_token.revoke"]
    assert events(app, "api_token.revoke")[0][3] == {"name": "HRIS sync", "owner": "hr@example.com"}


def test_hr_sees_and_revokes_only_their_own_tokens_admins_all(app, client, boss, hr):
    login(client, "boss@example.com")
    create_token(client, "boss script")
    client.post("/admin/logout")
    login(client, "hr@example.com")
    create_token(client, "hr script")
    page = text(client.get("/admin/api-tokens"))
    assert "hr script" in page
    assert "boss script" not in page
    with app.app_context():
        boss_token = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == boss))
        hr_token = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == hr))
    assert client.post(f"/admin/api-tokens/{boss_token}/revoke").status_code == 403
    assert client.post("/admin/api-tokens/999/revoke").status_code == 404
    client.post("/admin/logout")
    login(client, "boss@example.com")
    page = text(client.get("/admin/api-tokens"))
    assert "hr script" in page
    assert "hr@example.com" in page  # the owner column
    assert client.post(f"/admin/api-tokens/{hr_token}/revoke").status_code == 302
    with app.app_context():
        assert db.session.get(ApiToken, hr_token).revoked_at is not None
        assert db.session.get(ApiToken, boss_token).revoked_at is None


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "This field is required."), ("x" * 101, "Field cannot be longer than 100 characters.")],
)
def test_a_token_needs_a_name(app, client, hr, name, message):
    login(client, "hr@example.com")
    response = client.post("/admin/api-tokens", data={"name": name})
    assert response.status_code == 422
    assert re.search(rf'id="name-error">.*{re.escape(message)}', text(response))
    assert RAW_TOKEN.search(text(response)) is None
    with app.app_context():
        assert db.session.scalar(select(ApiToken.id)) is None


def test_a_blank_token_name_gets_the_service_message(app, client, hr):
    login(client, "hr@example.com")
    response = client.post("/admin/api-tokens", data={"name": "   "})
    assert response.status_code == 422
    assert "Give the token a name of 1 to 100 characters" in text(response)


# -- /admin/audit ---------------------------------------------------------------------


def test_sign_in_is_audited(app, client, hr):
    login(client, "hr@example.com")
    assert events(app) == [("hr@example.com", "account.login", "user:hr@example.com", {})]


def test_audit_log_lists_newest_first_with_compact_detail(app, client, hr):
    with app.app_context():
        audit.record(db.session, audit.COMMAND_LINE, "cycle.launch", "cycle:1", {"raters": 12})
        audit.record(
            db.session, audit.SCHEDULER, "cycle.remind", "cycle:1", {"sent": 3, "note": "a b"}
        )
        db.session.commit()
    login(client, "hr@example.com")
    page = text(client.get("/admin/audit"))
    launch, remind, signin = (
        page.index(a) for a in ("cycle.launch", "cycle.remind", "account.login")
    )
    assert signin < remind < launch
    assert '<td class="admin-detail">raters=12</td>' in page
    assert '<td class="admin-detail">sent=3 note="a b"</td>' in page
    assert "<td>command line</td>" in page
    assert "Time (UTC)" in page
    assert re.search(
        r'<time datetime="\d{4}-\d\d-\d\dT[\d:.]+\+00:00">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time>',
        page,
    )


def test_audit_log_filters_by_action_prefix(app, client, hr):
    with app.app_context():
        audit.record(db.session, audit.COMMAND_LINE, "cycle.launch", "cycle:1")
        audit.record(db.session, audit.COMMAND_LINE, "user.create", "user:x@example.com")
        db.session.commit()
    login(client, "hr@example.com")
    page = text(client.get("/admin/audit", query_string={"action": "user."}))
    assert "user:x@example.com" in page
    assert "cycle:1" not in page
    assert "1 event matching “user.”" in page
    assert 'value="user."' in page
    assert "No events match “nothing.”" in text(
        client.get("/admin/audit", query_string={"action": "nothing."})
    )


def test_audit_log_pages_by_fifty(app, client, hr):
    with app.app_context():
        for i in range(AUDIT_PAGE_SIZE + 1):
            audit.record(db.session, audit.SCHEDULER, "cycle.tick", f"cycle:{i}")
        db.session.commit()
    login(client, "hr@example.com")  # the 52nd event, the newest
    first = text(client.get("/admin/audit", query_string={"action": "cycle."}))
    assert first.count("<tr>") == AUDIT_PAGE_SIZE + 1  # header row + 50
    assert "cycle:50<" in first
    assert "page 1 of 2" in first
    assert 'href="/admin/audit?action=cycle.&amp;page=2"' in client.get(
        "/admin/audit", query_string={"action": "cycle."}
    ).get_data(as_text=True)
    second = text(client.get("/admin/audit", query_string={"action": "cycle.", "page": 2}))
    assert second.count("<tr>") == 2
    assert "<td>cycle:0</td>" in second
    assert "Newer" in second
    assert "Older" not in second
    beyond = client.get("/admin/audit", query_string={"action": "cycle.", "page": 9})
    assert beyond.status_code == 302
    assert parse_qs(urlsplit(beyond.headers["Location"]).query)["page"] == ["2"]
    assert client.get("/admin/audit", query_string={"page": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        ({}, ""),
        ({"n": 3, "ok": True}, "n=3 ok=true"),
        ({"name": "HRIS sync", "empty": ""}, 'name="HRIS sync" empty=""'),
        ({"ids": [1, 2]}, "ids=[1, 2]"),
        ({"x": 'a="b"'}, 'x="a=\\"b\\""'),
    ],
)
def test_compact_detail(detail, shown):
    assert compact(detail) == shown


# -- feedback360 users create ---------------------------------------------------------


def test_users_create_on_the_command_line_is_audited(app, runner):
    result = runner.invoke(
        args=["users", "create", "a@example.com", "--name", "A", "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert events(app) == [
        (audit.COMMAND_LINE, "user.create", "user:a@example.com", {"role": "admin"})
    ]
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.user_id)) is None


def test_a_refused_users_create_logs_nothing(app, runner):
    result = runner.invoke(
        args=["users", "create", "a@example.com", "--name", "A", "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code == 1
    assert events(app) == []


# -- CSRF -----------------------------------------------------------------------------


def _posts(hr_id: int, token_id: int) -> list[tuple[str, dict]]:
    return [
        ("/admin/users", new_user_data()),
        (f"/admin/users/{hr_id}/role", {"role": "admin"}),
        (f"/admin/users/{hr_id}/deactivate", {}),
        (
            "/admin/account",
            {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        ("/admin/api-tokens", {"name": "new one"}),
        (f"/admin/api-tokens/{token_id}/revoke", {}),
    ]


def test_every_post_needs_a_csrf_token(app, client, boss, hr):
    login(client, "boss@example.com")
    create_token(client)
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    before = len(events(app))
    app.config["WTF_CSRF_ENABLED"] = True
    for url, data in _posts(hr, token_id):
        assert client.post(url, data=data).status_code == 400, url
        assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400, url
    assert len(events(app)) == before
    assert get_user(app, hr)["role"] == UserRole.HR
    token = CSRF.search(client.get("/admin/users").get_data(as_text=True)).group(1)
    for url, data in _posts(hr, token_id):
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code in (200, 302), (url, response.status_code)
    assert [e[1] for e in events(app)][before:] == [
        "user.create",
        "user.role",
        "user.deactivate",
        "account.password",
        "api_token.create",
        "api_token.revoke",
    ]
    # Every form on the pages carries the token.
    for url in ("/admin/users", "/admin/account", "/admin/api-tokens"):
        page = client.get(url).get_data(as_text=True)
        assert page.count('method="post"') == len(CSRF.findall(page)), url
