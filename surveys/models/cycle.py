from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from surveys.db import Base, str_enum, utcnow
from surveys.errors import IllegalTransition
from surveys.models.employee import Employee
from surveys.models.enums import CycleState, NominationMode, NominationStatus

DEFAULT_THRESHOLDS = {
    "self": 1,
    "manager": 1,
    "peer": 3,
    "direct_report": 3,
    "other": 3,
    "others": 3,
}

#: Legal moves of the cycle state machine (DESIGN §1).
TRANSITIONS: dict[CycleState, set[CycleState]] = {
    CycleState.DRAFT: {CycleState.NOMINATING, CycleState.OPEN},
    CycleState.NOMINATING: {CycleState.OPEN},
    CycleState.OPEN: {CycleState.CLOSED},
    # Never back to open: previews of a closed cycle before and after one more
    # submission would give that rater's answers away.
    CycleState.CLOSED: {CycleState.RELEASED},
    CycleState.RELEASED: set(),
}


#: What to do instead, for the illegal moves people try.
_MOVE_HINTS: dict[tuple[CycleState, CycleState], str] = {
    (CycleState.OPEN, CycleState.RELEASED): "close it first",
    (CycleState.NOMINATING, CycleState.CLOSED): "launch it first",
    (CycleState.DRAFT, CycleState.CLOSED): "it was never launched",
    (CycleState.DRAFT, CycleState.RELEASED): "launch and close it first",
    (CycleState.NOMINATING, CycleState.RELEASED): "launch and close it first",
    **{(s, s): f"it is already {s.value}" for s in CycleState},
}


class Cycle(Base):
    """A review cycle: a frozen question bank, its settings and its state."""

    __tablename__ = "cycles"
    __table_args__ = (
        CheckConstraint("peer_min >= 0 AND peer_max >= peer_min", name="peer_range"),
        CheckConstraint("reminder_interval_days >= 1", name="reminder_interval"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[CycleState] = mapped_column(str_enum(CycleState), default=CycleState.DRAFT)
    bank_key: Mapped[str] = mapped_column(String(64))
    bank_version: Mapped[str] = mapped_column(String(32))
    #: The bank as it was when the cycle was created; later edits to the bank don't leak in.
    #: Deferred: tens of kilobytes of JSON that every survey request would otherwise parse,
    #: though the parsed bank is cached per process (``surveys.responses.cycle_bank``).
    bank_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    language: Mapped[str] = mapped_column(String(8), default="en")

    nomination_mode: Mapped[NominationMode] = mapped_column(
        str_enum(NominationMode), default=NominationMode.AUTO
    )
    #: When participants nominate, their manager approves before the survey opens.
    approval_required: Mapped[bool] = mapped_column(default=True)
    peer_min: Mapped[int] = mapped_column(default=3)
    peer_max: Mapped[int] = mapped_column(default=6)
    include_self: Mapped[bool] = mapped_column(default=True)
    include_manager: Mapped[bool] = mapped_column(default=True)
    include_direct_reports: Mapped[bool] = mapped_column(default=True)
    #: Whether the manager's ratings appear as their own group (threshold 1) in reports.
    show_manager: Mapped[bool] = mapped_column(default=True)
    #: Minimum responses per relationship group before it is shown (DESIGN §4).
    thresholds: Mapped[dict[str, int]] = mapped_column(
        JSON, default=lambda: dict(DEFAULT_THRESHOLDS)
    )
    reminder_interval_days: Mapped[int] = mapped_column(default=3)
    max_reminders: Mapped[int] = mapped_column(default=3)
    nomination_deadline: Mapped[date | None]
    close_date: Mapped[date | None]
    #: HR's own words added to the invitation and reminder emails (plain text).
    email_message: Mapped[str | None] = mapped_column(Text)

    #: HMAC key for rater pseudonyms; destroyed at release so nobody can re-link responses.
    pseudonym_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    launched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    #: Responses per day ("YYYY-MM-DD" -> count), kept at release, when every response's
    #: own day is replaced by the close date (a day still narrows down who answered).
    daily_responses: Mapped[dict[str, int] | None] = mapped_column(JSON)
    #: When HR asked for a release a background job carries out (None when none is
    #: waiting or running), and why the last one failed.
    release_started_at: Mapped[datetime | None]
    release_error: Mapped[str | None] = mapped_column(Text)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="cycle", cascade="all, delete-orphan", order_by="Participant.id"
    )

    def check_move(self, target: CycleState) -> None:
        """Raise IllegalTransition unless the state machine allows moving to ``target``."""
        if target not in TRANSITIONS[self.state]:
            hint = _MOVE_HINTS.get((self.state, target))
            raise IllegalTransition(
                f"cycle {self.name!r} is {self.state.value}; it cannot move to {target.value}"
                + (f" ({hint})" if hint else "")
            )

    def move_to(self, target: CycleState) -> None:
        self.check_move(target)
        self.state = target

    def threshold(self, group: str) -> int:
        return int(self.thresholds.get(group, DEFAULT_THRESHOLDS.get(group, 3)))

    def __repr__(self) -> str:
        return f"<Cycle {self.id} {self.name!r} {self.state.value}>"


class Participant(Base):
    """An employee who receives feedback in a cycle."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("cycle_id", "employee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id"), index=True)
    nominations_submitted_at: Mapped[datetime | None]
    nominations_approved_at: Mapped[datetime | None]
    #: HR holds this report back at release (say, for a coach to go through it first): it
    #: is frozen with the others but its link goes out only when HR shares it.
    report_held: Mapped[bool] = mapped_column(default=False, server_default=false())

    cycle: Mapped[Cycle] = relationship(back_populates="participants")
    employee: Mapped[Employee] = relationship()
    nominations: Mapped[list[Nomination]] = relationship(
        back_populates="participant", cascade="all, delete-orphan", order_by="Nomination.id"
    )


class Nomination(Base):
    """A peer proposed for a participant; approved by their manager or HR."""

    __tablename__ = "nominations"
    __table_args__ = (UniqueConstraint("participant_id", "nominee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    nominee_id: Mapped[int] = mapped_column(ForeignKey("employees.id"))
    status: Mapped[NominationStatus] = mapped_column(
        str_enum(NominationStatus), default=NominationStatus.PROPOSED
    )
    #: Who put the name forward: participant, manager, hr or auto (org-chart suggestion).
    source: Mapped[str] = mapped_column(String(16), default="participant")

    participant: Mapped[Participant] = relationship(back_populates="nominations")
    nominee: Mapped[Employee] = relationship()
