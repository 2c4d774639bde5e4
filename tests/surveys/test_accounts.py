import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from surveys import accounts
from surveys.accounts import AccountError
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
