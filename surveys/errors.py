"""Domain errors raised by services; the web layer and CLI turn them into messages."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses, with a message fit to show the user."""


class IllegalTransition(DomainError):
    """A cycle (or assignment) was asked to move to a state it cannot reach from here."""


class NotFound(DomainError):
    """Unknown id, or a token that is forged, expired or of another purpose."""


class LinkClosed(NotFound):
    """A genuine link whose cycle has moved past the state it works in (a rating link
    after the cycle closed). Pages that want to say so catch it; others answer as for
    any NotFound."""

    def __init__(self, cycle: Any, assignment: Any) -> None:
        super().__init__("This link is not valid.")
        self.cycle = cycle
        self.assignment = assignment
