"""Enumerations shared by the models (stored as their string values)."""

from __future__ import annotations

import enum


class CycleState(enum.StrEnum):
    DRAFT = "draft"
    NOMINATING = "nominating"
    OPEN = "open"
    CLOSED = "closed"
    RELEASED = "released"


class Relationship(enum.StrEnum):
    SELF = "self"
    MANAGER = "manager"
    PEER = "peer"
    DIRECT_REPORT = "direct_report"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "self": "Self",
            "manager": "Manager",
            "peer": "Peer",
            "direct_report": "Direct report",
            "other": "Other",
        }[self.value]


class AssignmentStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    DECLINED = "declined"


class NominationStatus(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


class NominationMode(enum.StrEnum):
    #: The participant nominates peers; the manager approves when the cycle asks for it.
    PARTICIPANT = "participant"
    #: Peers are suggested from the org chart (same manager, then same department).
    AUTO = "auto"


class TokenPurpose(enum.StrEnum):
    RATE = "rate"
    NOMINATE = "nominate"
    APPROVE = "approve"
    REPORT = "report"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    #: Never to be sent: its links died with the phase that minted them (a closed cycle).
    CANCELLED = "cancelled"
