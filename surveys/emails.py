"""Email texts. Every email is an outbox row written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from string import Template

from sqlalchemy.orm import Session

from surveys.models import Employee, OutboxMessage

TEMPLATES: dict[str, tuple[str, str]] = {
    "invite": (
        "Your feedback for $participant is requested",
        "Hello $name,\n\n"
        "${message_block}"
        "You have been asked to give feedback to $participant as their $role"
        ' in the review cycle "$cycle".\n'
        "It takes about $minutes minutes. $privacy\n\n"
        "Open your survey:\n$link\n\n"
        "The link is personal; please don't forward it.$deadline_line\n",
    ),
    "self_invite": (
        'Your self-assessment for "$cycle"',
        "Hello $name,\n\n"
        "${message_block}"
        'As part of the review cycle "$cycle" you are asked to rate yourself.'
        " Your colleagues are rating you on the same questions; it takes about"
        " $minutes minutes.\n\n"
        "Open your self-assessment:\n$link\n\n"
        "The link is personal; please don't forward it.$deadline_line\n",
    ),
    "invite_many": (
        "You are asked to give feedback to $count people",
        "Hello $name,\n\n"
        "${message_block}"
        'In the review cycle "$cycle" you are asked to give feedback to $count people.'
        " Each link opens one short survey of about $minutes minutes. $privacy\n\n"
        "$listing\n\n"
        "The links are personal; please don't forward them.$deadline_line\n",
    ),
    "reminder_many": (
        "Reminder: $count feedback surveys are waiting for you",
        "Hello $name,\n\n"
        "${message_block}"
        'A friendly reminder: these surveys in "$cycle" have not been submitted yet.'
        " Anything you saved is still there.\n\n"
        "$listing\n$deadline_line\n",
    ),
    "reminder": (
        "Reminder: feedback for $participant",
        "Hello $name,\n\n"
        "${message_block}"
        'A friendly reminder: your feedback for $participant ($role) in "$cycle"'
        " has not been submitted yet. Anything you saved is still there.\n\n"
        "Continue your survey:\n$link\n$deadline_line\n",
    ),
    "nominate": (
        'Choose who gives you feedback in "$cycle"',
        "Hello $name,\n\n"
        "${message_block}"
        "Please nominate between $peer_min and $peer_max colleagues who know your work well"
        ' to give you feedback in "$cycle".\n\n'
        "Nominate your raters:\n$link\n$deadline_line\n",
    ),
    "approve": (
        "Please approve feedback nominations for $participant",
        "Hello $name,\n\n"
        '$participant has nominated colleagues to give them feedback in "$cycle".'
        " Please review, change if needed, and approve the list.\n\n"
        "Review the nominations:\n$link\n$deadline_line\n",
    ),
    "report": (
        'Your feedback report from "$cycle" is ready',
        "Hello $name,\n\n"
        'Your feedback report from the review cycle "$cycle" is ready$update.'
        " It shows combined results only: no rater can be identified, and groups too small"
        ' to protect their raters are folded into "All others".\n\n'
        "Open your report (you can also download it as a PDF there):\n$link\n\n"
        "The link is personal and opens only your report; please don't forward it.\n",
    ),
}


def privacy(participant: str, *, named: bool) -> str:
    """The invitation's word on anonymity: ``named`` for a manager whose answers the
    cycle shows as "Manager" (``Cycle.show_manager``), who must not be promised it."""
    if named:
        return (
            f"As their manager your answers are not anonymous: they appear in {participant}'s"
            ' report under "Manager".'
        )
    return (
        f"Your answers are anonymous: {participant} sees only combined results from groups"
        " large enough to protect every rater."
    )


def privacy_many(*, named: bool) -> str:
    """:func:`privacy` for an email listing several surveys; ``named`` when any of them
    is a manager's the cycle shows (marked so in the listing)."""
    line = (
        "Your answers about colleagues are anonymous and reported only in groups large enough"
        " to protect every rater"
    )
    if named:
        return f'{line}, except where you answer as a manager (marked "not anonymous" below).'
    return f"{line}."


def render_email(template: str, values: Mapping[str, str]) -> tuple[str, str]:
    """Subject and body of ``template`` filled with ``values``.

    ``deadline`` becomes a closing "Please respond by …" line and ``message`` (HR's own
    words, plain text) a paragraph under the greeting; both vanish when empty. Values
    are substituted once, so a ``$`` in HR's text is never expanded.
    """
    subject_t, body_t = TEMPLATES[template]
    filled = dict(values)
    deadline = filled.pop("deadline", "")
    filled["deadline_line"] = f"\nPlease respond by {deadline}." if deadline else ""
    message = (filled.pop("message", "") or "").strip()
    filled["message_block"] = f"{message}\n\n" if message else ""
    return (
        Template(subject_t).safe_substitute(filled),
        Template(body_t).safe_substitute(filled),
    )


def queue_email(
    session: Session,
    kind: str,
    to: Employee,
    *,
    cycle_id: int | None,
    template: str | None = None,
    **values: str,
) -> OutboxMessage:
    """Render a template and add it to the outbox (sent by the worker after commit)."""
    values.setdefault("name", to.name)
    subject, body = render_email(template or kind, values)
    message = OutboxMessage(
        kind=kind,
        cycle_id=cycle_id,
        to_address=to.email,
        to_name=to.name,
        subject=subject,
        body=body,
    )
    session.add(message)
    return message
