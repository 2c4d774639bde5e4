"""HR console accounts. Participants and raters never have one: their links are their keys."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from surveys.db import Base, str_enum, utcnow


class UserRole(enum.StrEnum):
    #: Everything, including managing other accounts.
    ADMIN = "admin"
    #: Cycles, people and reports; no user management.
    HR = "hr"


class User(Base):
    """Someone who signs in to the HR console.

    Carries the four attributes Flask-Login expects (``is_active`` …) as plain
    properties, so this package stays free of Flask imports.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased (the CHECK makes sure), so lookups need no ``lower()``.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Werkzeug format ``scrypt:n:r:p$salt$hex``; see ``surveys.accounts``.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(str_enum(UserRole), default=UserRole.HR)
    #: Deactivated accounts keep their history (audit log) but cannot sign in.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    @validates("email")
    def _normalise_email(self, key: str, value: str) -> str:
        return value.strip().lower()

    # -- what Flask-Login asks of a user object --------------------------------------
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == UserRole.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role.value}>"
