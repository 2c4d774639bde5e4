"""``feedback360 employees``: import the org chart from CSV and look at it."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup

from surveys.employees import (
    EmployeeImportError,
    ImportPlan,
    apply_import,
    list_employees,
    plan_csv_import,
)
from webapp.extensions import db

CSV_HELP = """
\b
CSV format (UTF-8, comma-separated, header required, columns in any order):
  employee_id,name,email,manager_id,department
  E001,Amara Okafor,amara@example.com,,Engineering
  E002,Bruno Silva,bruno@example.com,E001,Engineering

\b
Columns:
  employee_id  your HR system's id; the key that makes re-imports update, not duplicate
  manager_id   the manager's employee_id (empty for the top); may appear later in the file
  department   optional column; an empty cell clears it, no column keeps what is stored
  See docs/examples/employees.csv for a small organisation to start from.
"""

command = AppGroup(
    "employees",
    help="The org chart: who works here, their email, manager and department.\n\n"
    "\b\nTypical use:\n"
    "  feedback360 employees import people.csv --dry-run   # preview, write nothing\n"
    "  feedback360 employees import people.csv\n"
    "  feedback360 employees list --department Sales\n" + CSV_HELP,
)

_SHOWN_CHANGES = 50


@command.command(
    "import",
    help="Add and update employees from a CSV file (FILE, or - for standard input).\n\n"
    "Idempotent: people are matched by employee_id, so importing the same file again "
    "changes nothing. The whole file is checked first — every bad line is reported with "
    "its line number (unknown managers, manager cycles, duplicate ids or emails, bad "
    "emails, missing values) and then nothing is written. People in the database but not "
    "in the file are left as they are; a listed inactive person is reactivated.\n" + CSV_HELP,
)
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON (for scripts).")
@click.pass_context
def import_command(ctx: click.Context, file: Any, dry_run: bool, as_json: bool) -> None:
    source = getattr(file, "name", "-")
    source = "<stdin>" if source in ("-", "<stdin>") else source
    try:
        plan = plan_csv_import(db.session, file.read(), source)
        if plan.errors:
            raise EmployeeImportError(plan.errors, source)
        if not dry_run:
            apply_import(db.session, plan)
            db.session.commit()
    except EmployeeImportError as error:
        db.session.rollback()
        _report_errors(error, source, as_json)
        ctx.exit(1)
    if dry_run:
        db.session.rollback()
    if as_json:
        click.echo(json.dumps({"source": source, "dry_run": dry_run, **plan.as_dict()}, indent=2))
    else:
        _report_plan(plan, source, dry_run)


def _report_errors(error: EmployeeImportError, source: str, as_json: bool) -> None:
    if as_json:
        errors = [e.as_dict() for e in error.errors] or [{"line": None, "message": str(error)}]
        click.echo(json.dumps({"source": source, "ok": False, "errors": errors}, indent=2))
        return
    if not error.errors:
        click.echo(f"error: {error}", err=True)
        return
    for problem in error.errors:
        separator = ":" if problem.line is None else ","
        click.echo(f"{source}{separator} {problem}", err=True)
    count = len(error.errors)
    click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was imported.", err=True)


def _report_plan(plan: ImportPlan, source: str, dry_run: bool) -> None:
    verb = "would be" if dry_run else ""
    added, changed, unchanged = len(plan.added), len(plan.changed), len(plan.unchanged)
    click.echo(
        f"{source}: {added} {verb + ' ' if verb else ''}added, "
        f"{changed} {verb + ' ' if verb else ''}changed, {unchanged} unchanged."
    )
    for change in plan.changed[:_SHOWN_CHANGES]:
        diffs = "; ".join(f"{f.field} {f.before!r} → {f.after!r}" for f in change.fields)
        click.echo(f"  {change.employee_id} {change.row.name}: {diffs}")
    if len(plan.changed) > _SHOWN_CHANGES:
        click.echo(f"  … and {len(plan.changed) - _SHOWN_CHANGES} more (--json lists them all)")
    if plan.absent:
        click.echo(
            f"{len(plan.absent)} active employee(s) in the database are not in this file; "
            "they were left as they are."
        )
    if dry_run:
        click.echo("Dry run: nothing was written.")


@command.command("list", help="Show employees as a table (or JSON), by department and name.")
@click.option("--department", help="Only this department (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
def list_command(department: str | None, as_json: bool) -> None:
    people = list_employees(db.session, department=department)
    records = [
        {
            "employee_id": p.external_id,
            "name": p.name,
            "email": p.email,
            "manager_id": p.manager.external_id if p.manager is not None else None,
            "department": p.department,
            "active": p.active,
        }
        for p in people
    ]
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not records:
        where = f" in department {department!r}" if department else ""
        click.echo(f"No employees{where}. Import some: feedback360 employees import FILE.csv")
        return
    header = ("ID", "NAME", "EMAIL", "MANAGER", "DEPARTMENT", "ACTIVE")
    table = [
        (
            r["employee_id"],
            r["name"],
            r["email"],
            r["manager_id"] or "-",
            r["department"] or "-",
            "yes" if r["active"] else "no",
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo(
            "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )
    inactive = sum(1 for r in records if not r["active"])
    click.echo(f"\n{len(records)} employee(s){f', {inactive} inactive' if inactive else ''}.")
