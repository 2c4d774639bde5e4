"""``/api/v1/cycles/<id>/nominations``: who each participant nominated; HR's override."""

from __future__ import annotations

from typing import Any

from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from surveys import nominations
from surveys.models import CycleState, Employee, Nomination, Participant
from webapp.api.core import MAX_CYCLE_ID, blueprint, cycle_target, domain_errors, done, load_cycle
from webapp.api.schemas import NominationsOverrideSchema, ParticipantNominationsSchema
from webapp.extensions import db

bp = blueprint("nominations", "Peer nominations: proposals, approvals and HR's override.")

NOMINATIONS = f"/cycles/<int(max={MAX_CYCLE_ID}):cycle_id>/nominations"


@bp.route(NOMINATIONS)
@bp.response(200, ParticipantNominationsSchema(many=True))
def list_nominations(cycle_id: int) -> list[dict[str, Any]]:
    """Nominations of a cycle

    For each participant: the peers nominated, each with its status (proposed, approved,
    rejected) and who put them forward.
    """
    cycle = load_cycle(cycle_id)
    participants = db.session.scalars(
        select(Participant)
        .join(Employee, Employee.id == Participant.employee_id)
        .where(Participant.cycle_id == cycle.id)
        .options(
            selectinload(Participant.employee),
            selectinload(Participant.nominations).selectinload(Nomination.nominee),
        )
        .order_by(Employee.name, Participant.id)
    )
    return [_entry(p) for p in participants]


@bp.route(NOMINATIONS + "/<string(maxlength=64):employee_id>", methods=["PUT"])
@bp.arguments(NominationsOverrideSchema)
@bp.response(200, ParticipantNominationsSchema)
def override_nominations(data: dict[str, Any], cycle_id: int, employee_id: str) -> dict[str, Any]:
    """Set a participant's peers (HR override)

    Replaces the participant's list with ``employee_ids``, approved at once, whatever
    they or their manager proposed. Only before the cycle opens (409 afterwards); the list
    must respect the cycle's peer minimum and maximum (422).
    """
    cycle = load_cycle(cycle_id)
    participant = _participant(cycle.id, employee_id)
    if cycle.state not in (CycleState.DRAFT, CycleState.NOMINATING):
        abort(409, message=f"cycle {cycle.name!r} is {cycle.state.value}; nominations are closed")
    wanted = list(dict.fromkeys(i.strip() for i in data["employee_ids"]))
    clean = [i for i in wanted if "\x00" not in i]
    found = {
        e.external_id: e.id
        for e in db.session.scalars(select(Employee).where(Employee.external_id.in_(clean)))
    }
    unknown = [i for i in wanted if i not in found]
    if unknown:
        message = f"unknown employee ids: {', '.join(map(repr, unknown[:20]))}"
        abort(422, message=message, errors={"employee_ids": [message]})
    with domain_errors(422):
        nominations.approve_nominations(
            db.session, participant, [found[i] for i in wanted], by="hr"
        )
    done(
        "api.nominations.override",
        f"{cycle_target(cycle)}, participant {employee_id}",
        {"nominees": len(wanted)},
    )
    db.session.refresh(participant)
    return _entry(participant)


def _participant(cycle_id: int, employee_id: str) -> Participant:
    participant = None
    if "\x00" not in employee_id:
        participant = db.session.scalar(
            select(Participant)
            .join(Employee, Employee.id == Participant.employee_id)
            .where(Participant.cycle_id == cycle_id, Employee.external_id == employee_id)
        )
    if participant is None:
        abort(404, message=f"{employee_id!r} is not a participant of cycle {cycle_id}")
    return participant


def _entry(participant: Participant) -> dict[str, Any]:
    return {
        "employee_id": participant.employee.external_id,
        "name": participant.employee.name,
        "nominations_submitted": participant.nominations_submitted_at is not None,
        "nominations_approved": participant.nominations_approved_at is not None,
        "nominees": [
            {
                "employee_id": n.nominee.external_id,
                "name": n.nominee.name,
                "status": n.status,
                "source": n.source,
            }
            for n in participant.nominations
        ],
    }
