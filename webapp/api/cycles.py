"""``/api/v1/cycles``: create review cycles and move them along their state machine.

draft → (nominating) → open → closed → released; an illegal move is a 409 with the
service's message, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from surveys import bank_store, cycles, releases, status
from surveys.banks import BankError, UnknownBankError
from surveys.cycles import CycleSettingsSchema
from surveys.models import Cycle, Employee, Participant
from webapp.api.core import MAX_CYCLE_ID, blueprint, cycle_target, domain_errors, done, load_cycle
from webapp.api.schemas import (
    ActionResultSchema,
    CycleCreateSchema,
    CycleDetailSchema,
    CycleListQuerySchema,
    CycleStatusSchema,
    CycleSummarySchema,
    LaunchSchema,
)
from webapp.extensions import db

bp = blueprint("cycles", "Review cycles: create, launch, follow, remind, close, release.")

CYCLE = f"/cycles/<int(max={MAX_CYCLE_ID}):cycle_id>"


@bp.route("/cycles")
@bp.arguments(CycleListQuerySchema, location="query")
@bp.response(200, CycleSummarySchema(many=True))
def list_cycles(args: dict[str, Any]) -> list[dict[str, Any]]:
    """List cycles

    Every cycle, oldest first; ``state`` filters.
    """
    query = select(Cycle).options(selectinload(Cycle.participants)).order_by(Cycle.id)
    if args.get("state") is not None:
        query = query.where(Cycle.state == args["state"])
    return [_summary(c) for c in db.session.scalars(query)]


@bp.route("/cycles", methods=["POST"])
@bp.arguments(CycleCreateSchema)
@bp.response(201, CycleDetailSchema)
def create_cycle(data: dict[str, Any]) -> dict[str, Any]:
    """Create a draft cycle

    The bank is frozen into the cycle. ``participants`` is ``{"mode": "all"}`` (everyone
    active, the default), ``{"mode": "department", "department": …}`` or
    ``{"mode": "employees", "employee_ids": […]}``. ``settings`` are checked as in the
    console; anything invalid is a 422 and nothing is created.
    """
    try:
        bank = bank_store.get_bank(db.session, data["bank"].replace("\x00", ""))
    except UnknownBankError as error:
        abort(422, message=str(error), errors={"bank": [str(error)]})
    except BankError as error:
        abort(409, message=str(error))
    people = _participants(data["participants"])
    settings = CycleSettingsSchema().dump(data["settings"])
    with domain_errors(422):
        cycle = cycles.create_cycle(
            db.session, name=data["name"], bank=bank, participants=people, settings=settings
        )
    done(
        "api.cycle.create",
        cycle_target(cycle),
        {"bank": cycle.bank_key, "participants": len(cycle.participants)},
    )
    return _detail(cycle)


def _participants(spec: dict[str, Any]) -> list[Employee]:
    active = select(Employee).where(Employee.active.is_(True)).order_by(Employee.name)
    mode = spec["mode"]
    if mode == "all":
        return list(db.session.scalars(active))
    if mode == "department":
        department = spec["department"].replace("\x00", "").strip()
        found = list(db.session.scalars(active.where(Employee.department == department)))
        if not found:
            _invalid("participants", f"nobody active in department {department!r}")
        return found
    wanted = list(dict.fromkeys(i.strip() for i in spec["employee_ids"]))
    clean = [i for i in wanted if "\x00" not in i]
    by_id = {
        e.external_id: e
        for e in db.session.scalars(select(Employee).where(Employee.external_id.in_(clean)))
    }
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        _invalid("participants", f"unknown employee ids: {', '.join(map(repr, unknown[:20]))}")
    inactive = [i for i in wanted if not by_id[i].active]
    if inactive:
        _invalid("participants", f"inactive employees: {', '.join(map(repr, inactive[:20]))}")
    return [by_id[i] for i in wanted]


def _invalid(field: str, message: str) -> None:
    abort(422, message=message, errors={field: [message]})


@bp.route(CYCLE)
@bp.response(200, CycleDetailSchema)
def get_cycle(cycle_id: int) -> dict[str, Any]:
    """Show a cycle

    Its settings, state, participants and milestones.
    """
    return _detail(load_cycle(cycle_id))


@bp.route(CYCLE + "/status")
@bp.response(200, CycleStatusSchema)
def cycle_status(cycle_id: int) -> dict[str, Any]:
    """Progress of a cycle

    Surveys invited, submitted, in progress and declined, by relationship and by
    participant: counts only, never who answered or what.
    """
    result = status.cycle_status(db.session, load_cycle(cycle_id))
    data = result.to_dict()
    for person, entry in zip(result.participants, data["participants"], strict=True):
        entry["total"]["rate"] = round(person.total.rate, 4)
        for key, group in person.by_relationship.items():
            entry["by_relationship"][key]["rate"] = round(group.rate, 4)
    return data


@bp.route(CYCLE + "/open-nominations", methods=["POST"])
@bp.response(200, ActionResultSchema)
def open_nominations(cycle_id: int) -> dict[str, Any]:
    """Open nominations

    draft → nominating: emails every participant a link to nominate their peers (only for
    cycles whose participants nominate).
    """
    cycle = load_cycle(cycle_id)
    with domain_errors():
        n = cycles.start_nominations(db.session, cycle, base_url=_base_url())
    done("api.cycle.open_nominations", cycle_target(cycle), {"participants": n})
    return _result(cycle, participants=n, emails=n)


@bp.route(CYCLE + "/launch", methods=["POST"])
@bp.arguments(LaunchSchema, required=False)
@bp.response(200, ActionResultSchema)
def launch(data: dict[str, Any], cycle_id: int) -> dict[str, Any]:
    """Launch a cycle

    Assigns raters and queues one email per rater with their links. Refuses (409) when a
    participant has fewer peers than the minimum, unless ``allow_short``.
    """
    cycle = load_cycle(cycle_id)
    allow_short = bool((data or {}).get("allow_short", False))
    with domain_errors():
        report = cycles.launch_cycle(
            db.session, cycle, base_url=_base_url(), allow_short=allow_short
        )
    done(
        "api.cycle.launch",
        cycle_target(cycle),
        {"surveys": report.assignments, "emails": report.emails, "allow_short": allow_short},
    )
    return _result(
        cycle, surveys=report.assignments, emails=report.emails, warnings=list(report.warnings)
    )


@bp.route(CYCLE + "/remind", methods=["POST"])
@bp.response(200, ActionResultSchema)
def remind(cycle_id: int) -> dict[str, Any]:
    """Remind raters

    Emails raters who have not submitted, never more often than the cycle's reminder
    interval nor more times than its maximum; ``emails`` may be 0.
    """
    cycle = load_cycle(cycle_id)
    with domain_errors():
        sent = cycles.remind(db.session, cycle, base_url=_base_url())
    done("api.cycle.remind", cycle_target(cycle), {"emails": sent})
    return _result(cycle, emails=sent)


@bp.route(CYCLE + "/close", methods=["POST"])
@bp.response(200, ActionResultSchema)
def close(cycle_id: int) -> dict[str, Any]:
    """Close a cycle

    open → closed: every survey link stops working; unsubmitted drafts are discarded.
    """
    cycle = load_cycle(cycle_id)
    with domain_errors():
        responses = cycles.close_cycle(db.session, cycle)
    done("api.cycle.close", cycle_target(cycle), {"responses": responses})
    return _result(cycle, responses=responses)


@bp.route(CYCLE + "/release", methods=["POST"])
@bp.response(200, ActionResultSchema)
def release(cycle_id: int) -> dict[str, Any]:
    """Release reports

    closed → released: freezes every participant's report and emails their link. Cannot
    be undone; responses can never again be linked to their raters.
    """
    cycle = load_cycle(cycle_id)
    with domain_errors():
        summary = releases.release_cycle(db.session, cycle, base_url=_base_url())
    done("api.cycle.release", cycle_target(cycle), {"reports": summary.reports})
    return _result(cycle, reports=summary.reports, emails=summary.emails, held=summary.held)


def _base_url() -> str:
    return str(current_app.config["BASE_URL"])


def _result(cycle: Cycle, **values: Any) -> dict[str, Any]:
    return {"cycle_id": cycle.id, "state": cycle.state.value, **values}


def _summary(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": cycle.id,
        "name": cycle.name,
        "state": cycle.state,
        "bank": cycle.bank_key,
        "bank_version": cycle.bank_version,
        "participants": len(cycle.participants),
        "close_date": cycle.close_date,
    }


def _detail(cycle: Cycle) -> dict[str, Any]:
    people = db.session.scalars(
        select(Employee)
        .join(Participant, Participant.employee_id == Employee.id)
        .where(Participant.cycle_id == cycle.id)
        .order_by(Employee.name, Employee.external_id)
    )
    return {
        **_summary(cycle),
        "settings": {
            "language": cycle.language,
            "nomination_mode": cycle.nomination_mode.value,
            "approval_required": cycle.approval_required,
            "peer_min": cycle.peer_min,
            "peer_max": cycle.peer_max,
            "include_self": cycle.include_self,
            "include_manager": cycle.include_manager,
            "include_direct_reports": cycle.include_direct_reports,
            "show_manager": cycle.show_manager,
            "thresholds": dict(cycle.thresholds),
            "reminder_interval_days": cycle.reminder_interval_days,
            "max_reminders": cycle.max_reminders,
            "nomination_deadline": cycle.nomination_deadline,
            "close_date": cycle.close_date,
        },
        "created_at": cycle.created_at,
        "launched_at": cycle.launched_at,
        "closed_at": cycle.closed_at,
        "released_at": cycle.released_at,
        "participant_list": [{"employee_id": e.external_id, "name": e.name} for e in people],
    }
