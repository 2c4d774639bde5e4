"""The audit log: every HR action, who did it and when (issue #5 §9).

Services stay silent about who calls them; the console, the API and the command line
call :func:`record` after an action succeeds, in the same transaction, so an action and
its log line commit together or not at all. ``detail`` holds settings and counts, never
answers, comments or who rated whom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from surveys.models import AuditEvent, User

#: Shown as the actor of actions run from a terminal or by the scheduler.
COMMAND_LINE = "command line"
SCHEDULER = "scheduler"


def record(
    session: Session,
    actor: User | str,
    action: str,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event (flushed; the caller commits with the action itself)."""
    user = actor if isinstance(actor, User) else None
    event = AuditEvent(
        user_id=user.id if user else None,
        actor=user.email if user else str(actor),
        action=action,
        target=target[:254],
        detail=dict(detail or {}),
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session, *, action: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[AuditEvent], int]:
    """Newest first, with the total count for paging; ``action`` filters by prefix."""
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
    )
    return list(events), total
