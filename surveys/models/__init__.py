"""SQLAlchemy models, one module per aggregate."""

from surveys.models.admin import ApiToken, AuditEvent, CustomBank
from surveys.models.assignment import AccessToken, Assignment, Draft
from surveys.models.cycle import DEFAULT_THRESHOLDS, Cycle, Nomination, Participant
from surveys.models.employee import Employee
from surveys.models.enums import (
    AssignmentStatus,
    CycleState,
    NominationMode,
    NominationStatus,
    OutboxStatus,
    Relationship,
    TokenPurpose,
)
from surveys.models.outbox import OutboxMessage
from surveys.models.report import ReportVersion
from surveys.models.response import Response, ResponseComment, ResponseItem
from surveys.models.user import User, UserRole

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AccessToken",
    "ApiToken",
    "Assignment",
    "AssignmentStatus",
    "AuditEvent",
    "CustomBank",
    "Cycle",
    "CycleState",
    "Draft",
    "Employee",
    "Nomination",
    "NominationMode",
    "NominationStatus",
    "OutboxMessage",
    "OutboxStatus",
    "Participant",
    "Relationship",
    "ReportVersion",
    "Response",
    "ResponseComment",
    "ResponseItem",
    "TokenPurpose",
    "User",
    "UserRole",
]
