"""Domain errors raised by services; the web layer and CLI turn them into messages."""


class DomainError(Exception):
    """A request the domain refuses, with a message fit to show the user."""


class IllegalTransition(DomainError):
    """A cycle (or assignment) was asked to move to a state it cannot reach from here."""


class NotFound(DomainError):
    """Unknown id, or a token that is forged, expired or of another purpose."""
