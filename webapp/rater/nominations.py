"""Nomination pages from emailed links: the participant proposes peers, the manager approves."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request
from sqlalchemy import select

from surveys import nominations
from surveys.errors import DomainError, NotFound
from surveys.models import Employee, NominationStatus, TokenPurpose
from surveys.tokens import resolve_token
from webapp.extensions import db
from webapp.rater import bp
from webapp.rater.forms import SurveyForm


def _participant(token: str, purpose: TokenPurpose):
    try:
        return resolve_token(db.session, token, purpose).participant
    except NotFound:
        abort(404)


def _chosen_ids() -> list[int]:
    """Ticked employee ids, each once; forged values ("²", 30 digits) are ignored, not a 500."""
    values = request.form.getlist("nominee")
    ids = [int(v) for v in values if v.isascii() and v.isdigit() and len(v) <= 9]
    return list(dict.fromkeys(ids))


def _page(template: str, token: str, participant, chosen: list[int], status: int = 200):
    query = request.values.get("q", "")
    candidates = nominations.eligible_peers(db.session, participant, query)
    chosen_people = list(db.session.scalars(select(Employee).where(Employee.id.in_(chosen))))
    listed = {e.id for e in candidates}
    return (
        render_template(
            template,
            token=token,
            participant=participant,
            cycle=participant.cycle,
            candidates=[e for e in chosen_people if e.id not in listed] + candidates,
            chosen=set(chosen),
            query=query,
            form=SurveyForm(),
        ),
        status,
    )


def _current(participant, *statuses) -> list[int]:
    return [n.nominee_id for n in participant.nominations if n.status in statuses]


@bp.get("/n/<token>")
def nominate(token: str):
    participant = _participant(token, TokenPurpose.NOMINATE)
    chosen = _current(participant, NominationStatus.PROPOSED, NominationStatus.APPROVED)
    return _page("rater/nominate.html", token, participant, chosen)


def _save_list(token: str, purpose: TokenPurpose, template: str, service, message):
    """Validate the posted list → one nominations service → post/redirect/get.

    ``service(participant, chosen)`` returns what ``message(participant, chosen, result)``
    turns into the flash text; a DomainError re-shows the page with the list as posted.
    """
    participant = _participant(token, purpose)
    if not SurveyForm().validate_on_submit():
        abort(400)
    chosen = _chosen_ids()
    if request.form.get("action") == "search":
        # Not a save: show the matches, with everyone ticked so far still ticked.
        return _page(template, token, participant, chosen)
    try:
        result = service(participant, chosen)
    except DomainError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _page(template, token, participant, chosen, 422)
    db.session.commit()
    flash(message(participant, chosen, result), "info")
    return redirect(request.path)


@bp.post("/n/<token>")
def submit_nominations(token: str):
    return _save_list(
        token,
        TokenPurpose.NOMINATE,
        "rater/nominate.html",
        lambda participant, chosen: nominations.submit_nominations(
            db.session, participant, chosen, base_url=current_app.config["BASE_URL"]
        ),
        lambda participant, chosen, sent: (
            "Thank you – your nominations were sent to your manager for approval."
            if sent
            else "Thank you – your nominations are saved."
        ),
    )


@bp.get("/a/<token>")
def approve(token: str):
    participant = _participant(token, TokenPurpose.APPROVE)
    chosen = _current(participant, NominationStatus.PROPOSED, NominationStatus.APPROVED)
    return _page("rater/approve.html", token, participant, chosen)


@bp.post("/a/<token>")
def submit_approval(token: str):
    return _save_list(
        token,
        TokenPurpose.APPROVE,
        "rater/approve.html",
        lambda participant, chosen: nominations.approve_nominations(
            db.session, participant, chosen, by="manager"
        ),
        lambda participant, chosen, _: (
            f"Approved {len(chosen)} raters for {participant.employee.name}."
        ),
    )
