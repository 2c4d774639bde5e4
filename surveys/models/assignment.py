from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, orm
from sqlalchemy.orm import Mapped, mapped_column

from surveys.db import Base, str_enum, utcnow
from surveys.models.cycle import Cycle, Participant
from surveys.models.employee import Employee
from surveys.models.enums import AssignmentStatus, Relationship, TokenPurpose


class Assignment(Base):
    """One rater asked to rate one participant in one relationship.

    The assignment knows who the rater is and whether they have answered, never what
    they answered: responses are stored against a pseudonym (see Response).
    """

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("participant_id", "rater_id"),
        Index("ix_assignments_cycle_status", "cycle_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("employees.id"), index=True)
    relationship: Mapped[Relationship] = mapped_column(str_enum(Relationship))
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus), default=AssignmentStatus.PENDING
    )
    invited_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(default=0)
    last_reminded_at: Mapped[datetime | None]

    cycle: Mapped[Cycle] = orm.relationship()
    participant: Mapped[Participant] = orm.relationship()
    rater: Mapped[Employee] = orm.relationship()

    @property
    def shown_by_name(self) -> bool:
        """A manager whose answers the cycle's reports show as "Manager": not anonymous,
        and every page and email must say so."""
        return shown_by_name(self.relationship, self.cycle)

    @property
    def is_done(self) -> bool:
        return self.status in (AssignmentStatus.SUBMITTED, AssignmentStatus.DECLINED)


def shown_by_name(relationship: Relationship, cycle: Cycle) -> bool:
    """Whether reports show a rater of this relationship by name: the manager, where the
    cycle shows the manager's view on its own (``Cycle.show_manager``)."""
    return relationship == Relationship.MANAGER and cycle.show_manager


class AccessToken(Base):
    """A link sent by email. Only the SHA-256 of the 256-bit token is stored.

    An assignment may have several (a reminder mints a fresh link; earlier ones keep
    working until the cycle closes).
    """

    __tablename__ = "access_tokens"
    __table_args__ = (
        CheckConstraint(
            "(purpose = 'rate' AND assignment_id IS NOT NULL)"
            " OR (purpose <> 'rate' AND participant_id IS NOT NULL)",
            name="target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[TokenPurpose] = mapped_column(str_enum(TokenPurpose))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    assignment: Mapped[Assignment | None] = orm.relationship()
    participant: Mapped[Participant | None] = orm.relationship()
    cycle: Mapped[Cycle] = orm.relationship()


class Draft(Base):
    """Autosaved, not yet submitted answers of one assignment (moved to a Response on submit)."""

    __tablename__ = "drafts"

    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True
    )
    #: item id -> scale value, or "na" for not applicable.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: open question id -> text.
    comments: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
