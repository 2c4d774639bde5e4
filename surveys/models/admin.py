"""What the HR console keeps besides cycles: the audit log, API tokens, custom banks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, orm
from sqlalchemy.orm import Mapped, mapped_column

from surveys.db import Base, utcnow
from surveys.models.user import User


class AuditEvent(Base):
    """One HR action: who did what to which object, and when (DESIGN §9, issue #5).

    Never holds answers, comments or rater identities: ``detail`` is for settings and
    counts (``{"reminders": 12}``), written by :mod:`surveys.audit` only.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``None`` for the command line and the scheduler; the label says which.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The actor as shown, kept when the account is later renamed or removed.
    actor: Mapped[str] = mapped_column(String(254))
    #: Dotted verb, e.g. ``cycle.launch``, ``user.create``, ``employees.import``.
    action: Mapped[str] = mapped_column(String(64))
    #: What it was done to, e.g. ``cycle:3`` or ``user:hr@example.com``.
    target: Mapped[str] = mapped_column(String(254), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = orm.relationship()

    def __repr__(self) -> str:
        return f"<AuditEvent {self.action} {self.target} by {self.actor}>"


class ApiToken(Base):
    """A bearer token for the REST API, created from the console for one account.

    Only the SHA-256 of the token is stored; the token is shown once when created. Calls
    act with the owning account's role and stop when it is revoked or deactivated.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = orm.relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.user.active

    def __repr__(self) -> str:
        return f"<ApiToken {self.name!r} user={self.user_id}>"


class CustomBank(Base):
    """A question bank HR uploaded or duplicated in the console, stored as its YAML.

    Same format and validation as the bundled files (:mod:`surveys.bank_schema`); a key
    can't shadow a bundled bank. Cycles snapshot the bank when created, so editing one
    here never changes a running cycle.
    """

    __tablename__ = "custom_banks"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<CustomBank {self.key}>"
