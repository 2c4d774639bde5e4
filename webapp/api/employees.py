"""``/api/v1/employees``: browse the org chart and import people as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_smorest import abort
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from surveys.employees import (
    EmployeeImportError,
    ImportPlan,
    RowError,
    apply_import,
    matching,
    plan_import,
)
from surveys.models import Employee
from webapp.api.core import blueprint, domain_errors, done
from webapp.api.schemas import (
    EmployeeImportRowSchema,
    EmployeeQuerySchema,
    EmployeeSchema,
    ImportPlanSchema,
    ImportQuerySchema,
)
from webapp.extensions import db

bp = blueprint("employees", "The org chart: people, their manager and department.")


@bp.route("/employees")
@bp.arguments(EmployeeQuerySchema, location="query")
@bp.response(200, EmployeeSchema(many=True))
@bp.paginate()
def list_employees(args: dict[str, Any], pagination_parameters: Any) -> list[dict[str, Any]]:
    """List employees

    Ordered by department and name; paged (see the X-Pagination header).
    """
    query = _filtered(args)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pagination_parameters.item_count = total
    first = pagination_parameters.first_item
    if first >= total:  # also keeps absurd page numbers away from the database
        return []
    people = db.session.scalars(
        query.options(joinedload(Employee.manager))
        .order_by(Employee.department, Employee.name, Employee.external_id)
        .offset(first)
        .limit(pagination_parameters.page_size)
    )
    return [_employee(p) for p in people]


def _filtered(args: Mapping[str, Any]) -> Any:
    query = select(Employee)
    if not args["include_inactive"]:
        query = query.where(Employee.active.is_(True))
    department = _text(args.get("department"))
    if department:
        query = query.where(func.lower(Employee.department) == department.lower())
    return query.where(*matching(_text(args.get("search") or args.get("q"))))


def _text(value: str | None) -> str:
    return (value or "").strip()  # NUL never gets here: webapp.security refuses it


def _employee(person: Employee) -> dict[str, Any]:
    return {
        "employee_id": person.external_id,
        "name": person.name,
        "email": person.email,
        "manager_id": person.manager.external_id if person.manager is not None else None,
        "department": person.department,
        "active": person.active,
    }


@bp.route("/employees/import", methods=["POST"])
@bp.arguments(ImportQuerySchema, location="query")
@bp.arguments(EmployeeImportRowSchema(many=True))
@bp.response(200, ImportPlanSchema)
def import_employees(query: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Import employees

    Adds and updates people by employee_id, all or nothing. With ``dry_run=true`` it only
    returns the plan — who would be added, what would change and every rejected row
    (1-based index) — and writes nothing. Otherwise any rejected row makes it a 422 with
    the rejected rows in ``errors.rejected``, and nothing is written.
    """
    plan = plan_import(db.session, rows)
    if query["dry_run"]:
        db.session.rollback()
        return _plan(plan, rows, dry_run=True, applied=False)
    if plan.errors:
        db.session.rollback()
        abort(
            422,
            message=f"{len(plan.errors)} rejected row(s); nothing was imported",
            errors={"rejected": [_rejected(e) for e in plan.errors]},
        )
    with domain_errors():
        try:
            apply_import(db.session, plan)
        except EmployeeImportError as error:
            if not error.errors:
                raise  # the plan went stale under us: a conflict (409)
            db.session.rollback()
            abort(
                422,
                message=str(error),
                errors={"rejected": [_rejected(e) for e in error.errors]},
            )
    done(
        "api.employees.import",
        f"{len(rows)} rows",
        {"added": len(plan.added), "changed": len(plan.changed)},
    )
    return _plan(plan, rows, dry_run=False, applied=True)


def _plan(
    plan: ImportPlan, rows: Sequence[Mapping[str, Any]], *, dry_run: bool, applied: bool
) -> dict[str, Any]:
    """The plan by row index; a rejected row is only listed as rejected (a row can be fine
    on its own and still be refused for the org chart, e.g. an unknown manager)."""
    index: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        index.setdefault(str(row.get("employee_id", "")).strip(), number)
    refused = {e.line for e in plan.errors}
    added = [
        {"row": index[r.employee_id], "employee_id": r.employee_id}
        for r in plan.added
        if index[r.employee_id] not in refused
    ]
    changed = [
        {
            "row": index[c.employee_id],
            "employee_id": c.employee_id,
            "fields": [{"field": f.field, "before": f.before, "after": f.after} for f in c.fields],
        }
        for c in plan.changed
        if index[c.employee_id] not in refused
    ]
    return {
        "dry_run": dry_run,
        "applied": applied,
        "added": added,
        "changed": changed,
        "unchanged": len(plan.unchanged),
        "rejected": [_rejected(e) for e in plan.errors],
        "absent": list(plan.absent),
    }


def _rejected(error: RowError) -> dict[str, Any]:
    return {"row": error.line, "employee_id": error.employee_id, "message": error.message}
