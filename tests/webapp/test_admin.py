import re
from urllib.parse import urlsplit

import pytest
from flask import url_for
from flask_login import login_user
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from surveys import accounts, responses
from surveys.models import Assignment, Relationship, User, UserRole
from tests import factories as f
from webapp.admin.auth import role_required, safe_next
from webapp.extensions import db

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


# Fixtures open their own short app contexts: a test that holds one open (the ``session``
# fixture) shares ``g`` across client requests, and Flask-Login caches the user in ``g``.


def add_user(app, email="hr@example.com", role=UserRole.HR) -> int:
    with app.app_context():
        user = accounts.create_user(db.session, email, email.split("@")[0], PASSWORD, role)
        db.session.commit()
        return user.id


def update_user(app, user_id, **values) -> None:
    with app.app_context():
        user = db.session.get(User, user_id)
        for key, value in values.items():
            setattr(user, key, value)
        db.session.commit()


@pytest.fixture
def hr(app):
    return add_user(app)


def login(client, email="hr@example.com", password=PASSWORD, next=None):
    query = {"next": next} if next is not None else {}
    return client.post(
        "/admin/login", query_string=query, data={"email": email, "password": password}
    )


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


# -- signing in -------------------------------------------------------------------------


def test_login_page_has_a_labelled_form(client):
    page = client.get("/admin/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page
    assert '<label for="password">Password</label>' in page
    assert 'autocomplete="current-password"' in page


def test_login_signs_in_for_eight_hours_without_a_remember_cookie(app, client, hr):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    with client.session_transaction() as sess:
        assert sess.permanent
    cookie = client.get_cookie("session")
    assert cookie.expires is not None  # a permanent cookie, not a browser-session one
    assert client.get_cookie("remember_token") is None
    assert client.application.permanent_session_lifetime.total_seconds() == 8 * 3600
    assert signed_in(client)
    with app.app_context():
        assert db.session.get(User, hr).last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("hr@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_bad_credentials_get_one_message_and_no_session(client, hr, email, password):
    response = login(client, email, password)
    assert response.status_code == 200
    assert "do not match an active account" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_an_inactive_user_cannot_sign_in(app, client, hr):
    update_user(app, hr, active=False)
    response = login(client)
    assert "do not match an active account" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_deactivating_an_account_ends_its_open_sessions(app, client, hr):
    login(client)
    assert signed_in(client)
    update_user(app, hr, active=False)
    assert not signed_in(client)


# -- everything under /admin/ needs a login ---------------------------------------------


def _admin_urls(app):
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/admin") or "GET" not in rule.methods:
                continue
            if rule.endpoint == "admin.login":
                continue
            urls.append(url_for(rule.endpoint, **dict.fromkeys(rule.arguments, 1)))
    return urls


def test_a_signed_out_visitor_is_sent_to_login_from_every_admin_page(app, client):
    urls = _admin_urls(app)
    assert {"/admin/", "/admin/cycles/1"} <= {urlsplit(u).path for u in urls}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        target = urlsplit(response.headers["Location"])
        assert target.path == "/admin/login", url
        assert "next=" in target.query


def test_a_signed_out_post_to_logout_is_sent_to_login(client):
    response = client.post("/admin/logout")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"


def test_next_brings_you_back_to_the_page_you_asked_for(client, hr):
    first = client.get("/admin/cycles/7")
    next_url = first.headers["Location"]
    response = client.post(next_url, data={"email": "hr@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/cycles/7"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "http:/evil.com",
        "javascript:alert(1)",
        "evil.com",
    ],
)
def test_next_never_leaves_the_site(client, hr, target):
    response = login(client, next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/cycles/3?tab=people", "/admin/cycles/3?tab=people"),
        ("/", "/"),
        ("", None),
        (None, None),
        ("//evil.com/admin", None),
        ("/\\evil.com", None),
        ("/admin/\nLocation: x", None),
    ],
)
def test_safe_next(target, expected):
    assert safe_next(target) == expected


def test_a_signed_in_user_opening_login_goes_to_the_dashboard(client, hr):
    login(client)
    response = client.get("/admin/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


# -- rate limit -------------------------------------------------------------------------


def test_the_sixth_failed_attempt_is_refused_even_with_the_right_password(client, hr):
    for _ in range(5):
        assert login(client, password="wrong password!!").status_code == 200
    response = login(client)  # right password, too late
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    minutes = re.search(r"Too many failed sign-in attempts\. Try again in (\d+) minutes?\.", page)
    assert minutes, page
    assert 14 <= int(minutes.group(1)) <= 15  # a moving window that began just now
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60
    assert not signed_in(client)
    # Another email from the same address is not locked out by someone else's typos.
    add_user(client.application, "b@example.com")
    assert login(client, "b@example.com").status_code == 302


def test_successful_sign_ins_do_not_count(client, hr):
    for _ in range(7):
        assert login(client).status_code == 302
        client.post("/admin/logout")


# -- signing out ------------------------------------------------------------------------


def test_logout_needs_post_and_a_csrf_token(app, client, hr):
    login(client)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.get("/admin/logout").status_code == 405
    assert client.post("/admin/logout").status_code == 400
    assert signed_in(client)
    token = CSRF.search(client.get("/admin/").get_data(as_text=True)).group(1)
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/login"
    assert not signed_in(client)


def test_login_form_needs_a_csrf_token_when_enabled(app, client, hr):
    app.config["WTF_CSRF_ENABLED"] = True
    assert login(client).status_code == 400
    token = CSRF.search(client.get("/admin/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/admin/login", data={"email": "hr@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


# -- roles ------------------------------------------------------------------------------


def test_role_required_admin_refuses_hr_and_admits_admin(app, hr):
    boss = add_user(app, "boss@example.com", UserRole.ADMIN)
    view = role_required("admin")(lambda: "users page")
    with app.test_request_context():
        login_user(db.session.get(User, hr))
        with pytest.raises(Forbidden):
            view()
    with app.test_request_context():
        login_user(db.session.get(User, boss))
        assert view() == "users page"
    with app.test_request_context():
        assert view().status_code == 302  # signed out: to the login page


# -- dashboard --------------------------------------------------------------------------

SECRET_COMMENT = "Distinctive comment text 7f3a"


@pytest.fixture
def cycle_with_one_answer(session):
    _, people = f.team(session, 4)
    cycle = f.launched(session, people)
    assignment = session.scalars(
        select(Assignment)
        .where(Assignment.cycle_id == cycle.id, Assignment.relationship == Relationship.PEER)
        .order_by(Assignment.id)
    ).first()
    bank = responses.cycle_bank(cycle)
    answers = responses.Answers(
        {i.id: 4 for i in bank.items}, {q.id: SECRET_COMMENT for q in bank.open_questions}
    )
    responses.save_draft(session, assignment, answers)
    responses.submit(session, assignment)
    session.commit()
    invited = session.scalars(select(Assignment).where(Assignment.cycle_id == cycle.id)).all()
    return cycle, len(invited)


def test_dashboard_lists_cycles_with_counts_only(client, hr, cycle_with_one_answer):
    cycle, invited = cycle_with_one_answer
    login(client)
    response = client.get("/admin/")
    page = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert f'href="/admin/cycles/{cycle.id}"' in page
    assert f"All raters: 1 of {invited} answered" in page
    assert f'<progress aria-labelledby="cycle-{cycle.id}" max="{invited}" value="1">' in page
    assert SECRET_COMMENT not in page


def test_cycle_page_shows_progress_by_relationship_and_participant(
    client, hr, cycle_with_one_answer
):
    cycle, _ = cycle_with_one_answer
    login(client)
    page = client.get(f"/admin/cycles/{cycle.id}").get_data(as_text=True)
    assert "By relationship" in page
    assert "By participant" in page
    assert re.search(r"Peer: 1 of \d+ answered", page)
    assert "T Member 1 (T1)" in page
    assert SECRET_COMMENT not in page
    assert ">4<" not in page  # no rating value leaks as a cell either


def test_unknown_cycle_is_404(client, hr):
    login(client)
    assert client.get("/admin/cycles/999").status_code == 404


def test_empty_dashboard_says_how_to_start(client, hr):
    login(client)
    assert "No cycles yet" in client.get("/admin/").get_data(as_text=True)


# -- feedback360 users ------------------------------------------------------------------


def test_users_create_admin_from_stdin_and_list(runner, session):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin account boss@example.com (Boss)." in result.output
    assert PASSWORD not in result.output
    user = session.scalar(select(User))
    assert user.role == UserRole.ADMIN
    assert accounts.authenticate(session, "boss@example.com", PASSWORD) is not None
    listing = runner.invoke(args=["users", "list"])
    assert "boss@example.com" in listing.output
    assert "admin" in listing.output


def test_users_create_prompts_twice_and_defaults_to_hr(runner, session):
    result = runner.invoke(
        args=["users", "create", "hr@example.com", "--name", "Hana"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert session.scalar(select(User)).role == UserRole.HR


def test_users_create_refuses_a_short_password_and_a_duplicate(runner, session):
    short = runner.invoke(
        args=["users", "create", "a@example.com", "--name", "A", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1
    assert "at least 12 characters" in short.output
    assert session.scalar(select(User)) is None
    args = ["users", "create", "a@example.com", "--name", "A", "--password-stdin"]
    assert runner.invoke(args=args, input=PASSWORD + "\n").exit_code == 0
    again = runner.invoke(args=args, input=PASSWORD + "\n")
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_users_list_when_empty(runner):
    assert "No accounts" in runner.invoke(args=["users", "list"]).output
