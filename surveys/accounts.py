"""HR console accounts: create, list and authenticate users.

Passwords are hashed with scrypt in werkzeug's storage format
(``scrypt:32768:8:1$<salt>$<hex>``), so ``werkzeug.security.check_password_hash``
reads these hashes and vice versa. The stdlib does the work because this package
never imports Flask or werkzeug (see the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveys.db import utcnow
from surveys.errors import DomainError, NotFound
from surveys.models import ApiToken, User, UserRole
from surveys.tokens import hash_token

MIN_PASSWORD_LENGTH = 12
#: Long enough for any passphrase, short enough that nobody hashes megabytes per request.
MAX_PASSWORD_LENGTH = 1024

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SALT_CHARS = string.ascii_letters + string.digits
_SALT_LENGTH = 16
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(DomainError):
    """An account cannot be created or changed as asked; the message says why.

    ``field`` names the input the message is about (``"email"``, ``"password"``,
    ``"current_password"`` …) so a form can show it next to that input.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p
    ).hex()


def hash_password(password: str) -> str:
    """Salted scrypt hash in werkzeug's ``generate_password_hash(method="scrypt")`` format."""
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(_SALT_LENGTH))
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}${salt}${digest}"


def verify_password(stored: str, password: str) -> bool:
    """Compare in constant time; an unreadable stored hash simply does not match."""
    try:
        method, salt, digest = stored.split("$", 2)
        name, n, r, p = method.split(":")
        if name != "scrypt":
            return False
        computed = _scrypt(password, salt, int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed, digest)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def check_password_policy(password: str) -> None:
    """Raise :class:`AccountError` with a message fit for the user if the password is weak."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long "
            f"(it has {len(password)}); a few unrelated words make a good one.",
            "password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"The password must be at most {MAX_PASSWORD_LENGTH} characters.", "password"
        )
    if not password.strip():
        raise AccountError("The password cannot be only spaces.", "password")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    email: str,
    name: str,
    password: str,
    role: UserRole | str = UserRole.HR,
) -> User:
    """Add an active account; flushes, the caller commits."""
    email = normalise_email(email)
    if not _EMAIL.match(email) or len(email) > 254:
        raise AccountError(f"{email!r} is not a valid email address.", "email")
    name = name.strip()
    if not name:
        raise AccountError("The name cannot be empty.", "name")
    if len(name) > 200:
        raise AccountError("The name must be at most 200 characters.", "name")
    check_password_policy(password)
    if find_user(session, email) is not None:
        raise AccountError(f"An account for {email} already exists.", "email")
    user = User(email=email, name=name, password_hash=hash_password(password), role=UserRole(role))
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or ``None`` (one answer for every cause).

    A hash is verified on every path, so the response time does not tell an unknown
    email from a wrong password. On success ``last_login_at`` is set (flushed).
    """
    user = find_user(session, email) if len(password) <= MAX_PASSWORD_LENGTH else None
    if user is None:
        verify_password(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = utcnow()
    session.flush()
    return user


def load_active_user(session: Session, user_id: int) -> User | None:
    """The user behind a session cookie, or ``None`` once deactivated or deleted."""
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def get_user(session: Session, user_id: int) -> User:
    """The account with this id (active or not); :class:`NotFound` otherwise."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No account with id {user_id}.")
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Replace ``user``'s password after checking the current one (flushes).

    Asking for the current password means a session left open on someone else's screen
    is not enough to take the account over.
    """
    if len(current) > MAX_PASSWORD_LENGTH or not verify_password(user.password_hash, current):
        raise AccountError("That is not your current password.", "current_password")
    check_password_policy(new)
    if new == current:
        raise AccountError("The new password must differ from the current one.", "password")
    user.password_hash = hash_password(new)
    session.flush()


# -- roles and deactivation ------------------------------------------------------------
# The console must always keep one way in: an admin who can manage accounts. So nobody
# demotes or deactivates themselves (they would lock themselves out mid-click), and the
# last active admin stays an active admin whoever asks.


def _other_active_admins(session: Session, user: User) -> int:
    """How many active admins besides ``user``.

    Every active admin row is locked (``FOR UPDATE`` on PostgreSQL; SQLite locks the
    whole database on write anyway), so two admins demoting each other at the same
    moment cannot both succeed and leave nobody: the second waits, then sees the first.
    """
    admins = session.scalars(
        select(User.id)
        .where(User.role == UserRole.ADMIN, User.active.is_(True))
        .order_by(User.id)  # one lock order for everyone: no deadlock between two requests
        .with_for_update()
    )
    return sum(1 for admin_id in admins if admin_id != user.id)


def _keep_an_admin(session: Session, user: User, actor: User | None, doing: str) -> None:
    if actor is not None and actor.id == user.id:
        raise AccountError(f"You cannot {doing} your own account; ask another admin.")
    if user.role == UserRole.ADMIN and user.active and not _other_active_admins(session, user):
        raise AccountError(
            f"{user.email} is the last active admin; make another account admin "
            f"before you {doing} this one."
        )


def change_role(session: Session, user: User, role: UserRole | str, actor: User | None) -> bool:
    """Give ``user`` another role; ``False`` when it already had it (nothing to log).

    ``actor`` is who asks (``None`` for the command line): an admin cannot demote
    themselves, and the last active admin cannot be demoted.
    """
    try:
        role = UserRole(role)
    except ValueError:
        raise AccountError(f"Unknown role {role!r}.", "role") from None
    if user.role == role:
        return False
    if user.role == UserRole.ADMIN:
        _keep_an_admin(session, user, actor, "demote")
    user.role = role
    session.flush()
    return True


def deactivate_user(session: Session, user: User, actor: User | None) -> bool:
    """Stop ``user`` signing in and using API tokens; history stays. ``False`` if already off.

    Their open sessions end on their next request (the user loader refuses inactive
    accounts) and their API tokens stop working (:attr:`ApiToken.active`).
    """
    if not user.active:
        return False
    _keep_an_admin(session, user, actor, "deactivate")
    user.active = False
    session.flush()
    return True


def reactivate_user(session: Session, user: User) -> bool:
    """Let a deactivated account sign in again; ``False`` if it was active."""
    if user.active:
        return False
    user.active = True
    session.flush()
    return True


# -- API tokens ------------------------------------------------------------------------

#: Prefix so a leaked token is recognisable (secret scanners, logs) as ours.
API_TOKEN_PREFIX = "f360_"  # noqa: S105 - a prefix, not a secret


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the raw token (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("Give the token a name of 1 to 100 characters (what uses it?).", "name")
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=hash_token(raw))
    session.add(token)
    session.flush()
    return token, raw


def authenticate_api_token(session: Session, raw: str) -> User | None:
    """The active account behind a bearer token, or ``None`` (unknown, revoked, deactivated)."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))
    if token is None or not token.active:
        return None
    token.last_used_at = utcnow()
    session.flush()
    return token.user


def get_api_token(session: Session, token_id: int) -> ApiToken:
    """The token row with this id (revoked or not); :class:`NotFound` otherwise."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No API token with id {token_id}.")
    return token


def revoke_api_token(session: Session, token: ApiToken) -> bool:
    """Stop ``token`` working from now on; ``False`` if it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    session.flush()
    return True


def list_api_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """Every token (newest first), or only ``user``'s."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))
