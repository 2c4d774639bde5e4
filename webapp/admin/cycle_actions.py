"""One cycle's page and what HR does there: remind, extend, close, nominations.

Each action: check the form (CSRF) → one service in ``surveys`` → an audit event in the
same transaction → commit → redirect back to the cycle page with what happened.
A refused action (bad date, wrong state) re-shows the page with the reason and the
input as typed; nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from surveys import audit, cycles, nominations
from surveys.errors import DomainError
from surveys.models import (
    Cycle,
    CycleState,
    Employee,
    NominationMode,
    NominationStatus,
    Participant,
    Relationship,
)
from surveys.paging import clamp_page, page_count
from surveys.status import cycle_status, responses_by_day, waiting_raters
from webapp.admin import bp
from webapp.admin.cycle_chart import response_chart
from webapp.admin.cycle_forms import (
    ActionForm,
    CloseForm,
    DeadlineForm,
    LaunchForm,
    csrf_failed,
)
from webapp.extensions import db

#: What HR may do to a cycle in each state (the page shows only these).
ACTIONS: dict[CycleState, frozenset[str]] = {
    CycleState.DRAFT: frozenset(),
    CycleState.NOMINATING: frozenset({"extend", "nominations", "launch"}),
    CycleState.OPEN: frozenset({"remind", "extend", "close", "waiting", "rates"}),
    CycleState.CLOSED: frozenset({"release", "rates", "scores"}),
    CycleState.RELEASED: frozenset({"release", "rates", "scores"}),
}


def load_cycle(cycle_id: int) -> Cycle:
    """The cycle or 404."""
    try:
        return cycles.get_cycle(db.session, cycle_id)
    except DomainError:
        abort(404)


def load_participant(cycle: Cycle, participant_id: int) -> Participant:
    """A participant of ``cycle`` or 404 (an id from another cycle is not found either)."""
    participant = db.session.get(Participant, participant_id)
    if participant is None or participant.cycle_id != cycle.id:
        abort(404)
    return participant


def allowed(cycle: Cycle) -> frozenset[str]:
    found = set(ACTIONS[cycle.state])
    if cycle.nomination_mode == NominationMode.PARTICIPANT:
        found.add("nominations")  # read-only once the cycle has opened
    return frozenset(found)


def cycle_page(
    cycle: Cycle,
    *,
    deadline_form: DeadlineForm | None = None,
    close_form: CloseForm | None = None,
    launch_form: LaunchForm | None = None,
    launch_error: str | None = None,
    status_code: int = 200,
) -> tuple[str, int]:
    status = cycle_status(db.session, cycle)
    can = allowed(cycle)
    series = responses_by_day(db.session, cycle)
    waiting = waiting_raters(db.session, cycle) if "waiting" in can else []
    html = render_template(
        "admin/cycle.html",
        cycle=cycle,
        status=status,
        can=can,
        labels={r.value: r.label for r in Relationship},
        people=Page.of(status.participants, "people"),
        waiting=Page.of(waiting, "waiting"),
        series=series,
        chart=response_chart(series, status.total.invited) if series else None,
        deadline_form=deadline_form or DeadlineForm(formdata=None),
        close_form=close_form or CloseForm(formdata=None),
        launch_form=launch_form or LaunchForm(formdata=None),
        launch_error=launch_error,
        action_form=ActionForm(),
    )
    return html, status_code


#: Participants a page of the cycle page lists, in each of its two lists.
PEOPLE_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    """One page of a long list on the cycle page (``?<param>=N``): a 10,000-person cycle
    listed whole made a 17 MB page."""

    items: Sequence[Any]
    param: str
    number: int
    total: int

    @classmethod
    def of(cls, items: Sequence[Any], param: str) -> Page:
        asked = request.args.get(param, 1, type=int) or 1
        number, _ = clamp_page(asked, len(items), PEOPLE_PAGE_SIZE)
        start = (number - 1) * PEOPLE_PAGE_SIZE
        return cls(items[start : start + PEOPLE_PAGE_SIZE], param, number, len(items))

    @property
    def pages(self) -> int:
        return page_count(self.total, PEOPLE_PAGE_SIZE)

    @property
    def first(self) -> int:
        """1-based position of the page's first item."""
        return (self.number - 1) * PEOPLE_PAGE_SIZE + 1


def _refuse(action: str, cycle: Cycle) -> None:
    """403 for an action the page would not have offered in this state."""
    if action not in allowed(cycle):
        abort(403)


def _record(action: str, cycle: Cycle, detail: dict[str, Any] | None = None) -> None:
    audit.record(db.session, current_user, action, f"cycle {cycle.id} {cycle.name}", detail)


def _back(cycle: Cycle):
    """The cycle page, from its top: the message saying what happened is shown there (a
    jump to the section acted on left it scrolled out of sight)."""
    return redirect(url_for(".cycle", cycle_id=cycle.id))


@bp.post("/cycles/<int:cycle_id>/remind")
def remind(cycle_id: int):
    found = load_cycle(cycle_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    _refuse("remind", found)
    sent = cycles.remind(db.session, found, base_url=current_app.config["BASE_URL"])
    _record("cycle.remind", found, {"emails": sent})
    db.session.commit()
    if sent:
        flash(f"{sent} reminder email{'s' if sent != 1 else ''} queued.", "info")
    else:
        flash(
            "Nobody is due a reminder: everyone has answered, was reminded or invited within "
            f"the last {found.reminder_interval_days} days, or has had "
            f"{found.max_reminders} reminders already.",
            "info",
        )
    return _back(found)


@bp.post("/cycles/<int:cycle_id>/deadline")
def extend_deadline(cycle_id: int):
    found = load_cycle(cycle_id)
    _refuse("extend", found)
    form = DeadlineForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            abort(400)
        return cycle_page(found, deadline_form=form, status_code=422)
    try:
        previous = cycles.extend_deadline(db.session, found, form.close_date.data)
    except DomainError as error:
        db.session.rollback()
        form.close_date.errors = [str(error)]
        return cycle_page(found, deadline_form=form, status_code=422)
    _record(
        "cycle.extend_deadline",
        found,
        {
            "from": previous.isoformat() if previous else None,
            "to": form.close_date.data.isoformat(),
        },
    )
    db.session.commit()
    flash(f"The cycle now closes on {form.close_date.data:%d %B %Y}.", "info")
    return _back(found)


@bp.post("/cycles/<int:cycle_id>/close")
def close(cycle_id: int):
    found = load_cycle(cycle_id)
    _refuse("close", found)
    form = CloseForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            abort(400)
        return cycle_page(found, close_form=form, status_code=422)
    responses = cycles.close_cycle(db.session, found)
    _record("cycle.close", found, {"responses": responses})
    db.session.commit()
    flash(f"The cycle is closed with {responses} responses.", "info")
    return _back(found)


@bp.post("/cycles/<int:cycle_id>/launch")
def launch(cycle_id: int):
    """nominating → open: the raters' surveys open with the approved nominations."""
    found = load_cycle(cycle_id)
    _refuse("launch", found)
    form = LaunchForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            abort(400)
        return cycle_page(found, launch_form=form, status_code=422)
    try:
        report = cycles.launch_cycle(
            db.session,
            found,
            base_url=current_app.config["BASE_URL"],
            allow_short=form.allow_short.data,
        )
    except DomainError as error:
        db.session.rollback()
        return cycle_page(found, launch_form=form, launch_error=str(error), status_code=422)
    _record("cycle.launch", found, {"assignments": report.assignments, "emails": report.emails})
    db.session.commit()
    emails = f"{report.emails} rater{'s' if report.emails != 1 else ''}"
    flash(f"The surveys are open: {emails} emailed their links.", "info")
    for warning in report.warnings[:10]:
        flash(warning, "info")
    return _back(found)


# -- nominations ----------------------------------------------------------------------------


def _editable(cycle: Cycle) -> bool:
    return cycle.state in (CycleState.DRAFT, CycleState.NOMINATING)


@bp.get("/cycles/<int:cycle_id>/nominations")
def cycle_nominations(cycle_id: int):
    found = load_cycle(cycle_id)
    _refuse("nominations", found)
    return render_template(
        "admin/cycle_nominations.html",
        cycle=found,
        people=nominations.nominations_overview(db.session, found),
        editable=_editable(found),
        action_form=ActionForm(),
    )


def _chosen_ids() -> list[int]:
    """Ticked employee ids, each once; forged values are ignored rather than a 500."""
    values = request.form.getlist("nominee")
    return list(
        dict.fromkeys(int(v) for v in values if v.isascii() and v.isdigit() and len(v) < 10)
    )


def _nominations_editor(participant: Participant, chosen: list[int], status_code: int = 200):
    query = request.args.get("q", "")
    candidates = nominations.eligible_peers(db.session, participant, query, limit=200)
    listed = {e.id for e in candidates}
    chosen_people = db.session.scalars(
        select(Employee).where(Employee.id.in_(chosen)).order_by(Employee.name)
    ).all()
    html = render_template(
        "admin/cycle_nominee_edit.html",
        cycle=participant.cycle,
        participant=participant,
        candidates=[e for e in chosen_people if e.id not in listed] + candidates,
        chosen=set(chosen),
        query=query,
        action_form=ActionForm(),
    )
    return html, status_code


def _current(participant: Participant) -> list[int]:
    keep = (NominationStatus.PROPOSED, NominationStatus.APPROVED)
    return [n.nominee_id for n in participant.nominations if n.status in keep]


@bp.get("/cycles/<int:cycle_id>/nominations/<int:participant_id>")
def edit_nominations(cycle_id: int, participant_id: int):
    found = load_cycle(cycle_id)
    _refuse("nominations", found)
    if not _editable(found):
        abort(403)
    participant = load_participant(found, participant_id)
    return _nominations_editor(participant, _current(participant))


@bp.post("/cycles/<int:cycle_id>/nominations/<int:participant_id>")
def save_nominations(cycle_id: int, participant_id: int):
    found = load_cycle(cycle_id)
    _refuse("nominations", found)
    if not ActionForm().validate_on_submit():
        abort(400)
    participant = load_participant(found, participant_id)
    chosen = _chosen_ids()
    try:
        nominations.override_nominations(db.session, participant, chosen)
    except DomainError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _nominations_editor(participant, chosen, 422)
    _record(
        "nominations.override",
        found,
        {"participant": participant.employee.external_id, "peers": len(chosen)},
    )
    db.session.commit()
    flash(f"Set and approved {len(chosen)} peers for {participant.employee.name}.", "info")
    return redirect(url_for(".cycle_nominations", cycle_id=found.id))


@bp.post("/cycles/<int:cycle_id>/nominations/<int:participant_id>/approve")
def approve_nominations(cycle_id: int, participant_id: int):
    found = load_cycle(cycle_id)
    _refuse("nominations", found)
    if not ActionForm().validate_on_submit():
        abort(400)
    participant = load_participant(found, participant_id)
    try:
        n = nominations.approve_on_behalf(db.session, participant)
    except DomainError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for(".cycle_nominations", cycle_id=found.id))
    _record(
        "nominations.approve",
        found,
        {"participant": participant.employee.external_id, "peers": n},
    )
    db.session.commit()
    flash(f"Approved {participant.employee.name}'s {n} peers on their manager's behalf.", "info")
    return redirect(url_for(".cycle_nominations", cycle_id=found.id))
