import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from surveys import accounts
from surveys.accounts import AccountError
from surveys.errors import NotFound
from surveys.models import User, UserRole

PASSWORD = "correct horse battery staple"


def test_create_user_stores_a_lowercased_email_and_a_salted_hash(session):
    user = accounts.create_user(session, "  Ana.Lima@Example.COM ", "Ana Lima", PASSWORD)
    session.commit()
    assert user.email == "ana.lima@example.com"
    assert user.role == UserRole.HR
    assert user.active
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith("scrypt:32768:8:1$")
    other = accounts.create_user(session, "bo@example.com", "Bo", PASSWORD, UserRole.ADMIN)
    assert other.password_hash != user.password_hash  # salted
    assert other.is_admin


def test_hashes_are_werkzeug_compatible_both_ways():
    ours = accounts.hash_password(PASSWORD)
    assert check_password_hash(ours, PASSWORD)
    assert not check_password_hash(ours, PASSWORD + "x")
    theirs = generate_password_hash(PASSWORD, method="scrypt")
    assert accounts.verify_password(theirs, PASSWORD)
    assert not accounts.verify_password(theirs, "wrong password!!")


@pytest.mark.parametrize(
    "stored", ["", "plain", "md5$x$y", "scrypt:a:b:c$s$h", "pbkdf2:sha256:1$s$h"]
)
def test_an_unreadable_stored_hash_never_matches(stored):
    assert not accounts.verify_password(stored, PASSWORD)


def test_short_passwords_are_refused_with_the_minimum_in_the_message(session):
    with pytest.raises(AccountError, match=r"at least 12 characters long \(it has 11\)"):
        accounts.create_user(session, "ana@example.com", "Ana", "x" * 11)
    with pytest.raises(AccountError, match="only spaces"):
        accounts.create_user(session, "ana@example.com", "Ana", " " * 12)
    assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    ("email", "name", "message"),
    [("not-an-email", "Ana", "not a valid email"), ("ana@example.com", "  ", "name cannot")],
)
def test_bad_email_or_name_is_refused(session, email, name, message):
    with pytest.raises(AccountError, match=message):
        accounts.create_user(session, email, name, PASSWORD)


def test_one_account_per_email_whatever_the_case(session):
    accounts.create_user(session, "ana@example.com", "Ana", PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        accounts.create_user(session, "ANA@example.com", "Ana again", PASSWORD)


def test_the_database_refuses_mixed_case_emails_and_unknown_roles(session):
    insert = sa.text(
        "INSERT INTO users (email, name, password_hash, role, active, created_at) "
        "VALUES (:email, 'X', 'h', :role, true, CURRENT_TIMESTAMP)"
    )
    with pytest.raises(IntegrityError):
        session.execute(insert, {"email": "Upper@example.com", "role": "hr"})
    session.rollback()
    with pytest.raises(IntegrityError):
        session.execute(insert, {"email": "x@example.com", "role": "root"})
    session.rollback()


@pytest.fixture
def ana(session):
    user = accounts.create_user(session, "ana@example.com", "Ana", PASSWORD)
    session.commit()
    return user


def test_authenticate_returns_the_user_and_records_the_sign_in(session, ana):
    assert ana.last_login_at is None
    assert accounts.authenticate(session, "ANA@example.com ", PASSWORD) is ana
    assert ana.last_login_at is not None
    assert ana.last_login_at.tzinfo is not None


def test_wrong_password_unknown_user_and_inactive_user_all_get_none(session, ana):
    assert accounts.authenticate(session, "ana@example.com", PASSWORD + "!") is None
    assert accounts.authenticate(session, "nobody@example.com", PASSWORD) is None
    ana.active = False
    session.commit()
    assert accounts.authenticate(session, "ana@example.com", PASSWORD) is None
    assert ana.last_login_at is None
    assert accounts.load_active_user(session, ana.id) is None


def test_an_unknown_email_still_costs_one_hash_check(session, ana, monkeypatch):
    """Same work on every path, so timing does not reveal which emails have accounts."""
    calls = []
    real = accounts.verify_password

    def counting(stored, password):
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    accounts.authenticate(session, "nobody@example.com", PASSWORD)
    accounts.authenticate(session, "ana@example.com", "wrong password!!")
    assert len(calls) == 2
    assert calls[0].startswith("scrypt:32768:8:1$")


def test_list_users_orders_by_email(session):
    for email in ("c@example.com", "a@example.com", "b@example.com"):
        accounts.create_user(session, email, email[0], PASSWORD)
    assert [u.email for u in accounts.list_users(session)] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


# -- errors name their field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "name", "password", "field"),
    [
        ("not-an-email", "Ana", PASSWORD, "email"),
        ("ana@example.com", " ", PASSWORD, "name"),
        ("ana@example.com", "A" * 201, PASSWORD, "name"),
        ("ana@example.com", "Ana", "short", "password"),
    ],
)
def test_create_user_errors_name_the_input_they_are_about(session, email, name, password, field):
    with pytest.raises(AccountError) as caught:
        accounts.create_user(session, email, name, password)
    assert caught.value.field == field


# -- change_password -----------------------------------------------------------------------

NEW_PASSWORD = "a new and longer passphrase"


def test_change_password_needs_the_current_one(session, ana):
    with pytest.raises(AccountError, match="not your current password") as caught:
        accounts.change_password(session, ana, "wrong password!!", NEW_PASSWORD)
    assert caught.value.field == "current_password"
    accounts.change_password(session, ana, PASSWORD, NEW_PASSWORD)
    session.commit()
    assert accounts.authenticate(session, "ana@example.com", PASSWORD) is None
    assert accounts.authenticate(session, "ana@example.com", NEW_PASSWORD) is ana


@pytest.mark.parametrize(
    ("new", "message"),
    [("x" * 11, "at least 12"), (PASSWORD, "differ from the current")],
)
def test_change_password_applies_the_policy(session, ana, new, message):
    before = ana.password_hash
    with pytest.raises(AccountError, match=message) as caught:
        accounts.change_password(session, ana, PASSWORD, new)
    assert caught.value.field == "password"
    assert ana.password_hash == before


def test_change_password_refuses_an_oversized_current_password_without_hashing_it(
    session, ana, monkeypatch
):
    monkeypatch.setattr(accounts, "verify_password", lambda *a: pytest.fail("hashed"))
    with pytest.raises(AccountError, match="current password"):
        accounts.change_password(session, ana, "x" * 5000, NEW_PASSWORD)


# -- roles, deactivation and the last admin ------------------------------------------------


@pytest.fixture
def boss(session):
    user = accounts.create_user(session, "boss@example.com", "Boss", PASSWORD, UserRole.ADMIN)
    session.commit()
    return user


def test_change_role_promotes_and_demotes(session, boss, ana):
    assert accounts.change_role(session, ana, "admin", boss) is True
    assert ana.role == UserRole.ADMIN
    assert accounts.change_role(session, ana, UserRole.ADMIN, boss) is False  # no change
    assert accounts.change_role(session, ana, UserRole.HR, boss) is True
    assert ana.role == UserRole.HR


def test_change_role_refuses_an_unknown_role(session, boss, ana):
    with pytest.raises(AccountError, match="Unknown role") as caught:
        accounts.change_role(session, ana, "root", boss)
    assert caught.value.field == "role"
    assert ana.role == UserRole.HR


def test_an_admin_cannot_demote_or_deactivate_themselves(session, boss):
    other = accounts.create_user(session, "b2@example.com", "B2", PASSWORD, UserRole.ADMIN)
    # Even with another admin around, which would satisfy the last-admin rule.
    with pytest.raises(AccountError, match="your own account"):
        accounts.change_role(session, boss, UserRole.HR, boss)
    with pytest.raises(AccountError, match="your own account"):
        accounts.deactivate_user(session, boss, boss)
    assert boss.role == UserRole.ADMIN
    assert boss.active
    assert accounts.deactivate_user(session, other, boss) is True


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(session, boss, ana):
    # ``actor=None`` is the command line, which is not the account itself.
    with pytest.raises(AccountError, match="last active admin"):
        accounts.change_role(session, boss, UserRole.HR, None)
    with pytest.raises(AccountError, match="last active admin"):
        accounts.deactivate_user(session, boss, ana)
    assert boss.role == UserRole.ADMIN
    assert boss.active


def test_an_inactive_admin_does_not_count_as_another_admin(session, boss):
    dormant = accounts.create_user(session, "d@example.com", "D", PASSWORD, UserRole.ADMIN)
    dormant.active = False
    session.flush()
    with pytest.raises(AccountError, match="last active admin"):
        accounts.deactivate_user(session, boss, None)
    # An inactive admin may be demoted: it is not keeping anyone's way in.
    assert accounts.change_role(session, dormant, UserRole.HR, boss) is True


def test_with_a_second_admin_the_first_can_go(session, boss, ana):
    accounts.change_role(session, ana, UserRole.ADMIN, boss)
    assert accounts.deactivate_user(session, boss, ana) is True
    assert not boss.active
    with pytest.raises(AccountError, match="last active admin"):
        accounts.change_role(session, ana, UserRole.HR, None)


def test_deactivate_and_reactivate_report_whether_anything_changed(session, boss, ana):
    assert accounts.deactivate_user(session, ana, boss) is True
    assert accounts.deactivate_user(session, ana, boss) is False
    assert accounts.authenticate(session, "ana@example.com", PASSWORD) is None
    assert accounts.reactivate_user(session, ana) is True
    assert accounts.reactivate_user(session, ana) is False
    assert accounts.authenticate(session, "ana@example.com", PASSWORD) is ana


def test_get_user_raises_not_found(session, ana):
    assert accounts.get_user(session, ana.id) is ana
    with pytest.raises(NotFound):
        accounts.get_user(session, ana.id + 100)


# -- API tokens ----------------------------------------------------------------------------


def test_an_api_token_authenticates_its_account_until_revoked(session, ana):
    token, raw = accounts.create_api_token(session, ana, "  HRIS sync ")
    session.commit()
    assert token.name == "HRIS sync"
    assert raw.startswith(accounts.API_TOKEN_PREFIX)
    assert raw not in token.token_hash
    assert token.last_used_at is None
    assert accounts.authenticate_api_token(session, raw) is ana
    assert token.last_used_at is not None
    assert accounts.authenticate_api_token(session, raw + "x") is None
    assert accounts.revoke_api_token(session, token) is True
    assert accounts.revoke_api_token(session, token) is False
    assert accounts.authenticate_api_token(session, raw) is None


def test_an_api_token_stops_with_its_deactivated_account(session, boss, ana):
    _, raw = accounts.create_api_token(session, ana, "script")
    accounts.deactivate_user(session, ana, boss)
    assert accounts.authenticate_api_token(session, raw) is None
    accounts.reactivate_user(session, ana)
    assert accounts.authenticate_api_token(session, raw) is ana


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_an_api_token_needs_a_name(session, ana, name):
    with pytest.raises(AccountError, match="name of 1 to 100") as caught:
        accounts.create_api_token(session, ana, name)
    assert caught.value.field == "name"


def test_list_api_tokens_newest_first_and_per_owner(session, boss, ana):
    first, _ = accounts.create_api_token(session, ana, "first")
    second, _ = accounts.create_api_token(session, boss, "second")
    third, _ = accounts.create_api_token(session, ana, "third")
    assert accounts.list_api_tokens(session) == [third, second, first]
    assert accounts.list_api_tokens(session, ana) == [third, first]
    assert accounts.get_api_token(session, second.id) is second
    with pytest.raises(NotFound):
        accounts.get_api_token(session, third.id + 100)
