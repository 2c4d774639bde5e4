"""Org chart import: employees from CSV (or JSON rows), checked whole before anything is written.

The import runs in three steps, each usable on its own:

1. ``parse_employees_csv`` turns file bytes into rows, reporting every bad line at once;
2. ``plan_import`` compares the rows with the database and returns an ``ImportPlan`` — the
   preview HR sees: who would be added, what would change, and every error (unknown
   managers, manager cycles, an email shared by two people);
3. ``apply_import`` writes a plan that has no errors (upsert by external id, managers in a
   second pass), or writes nothing at all.

Services flush and never commit: the request or CLI command commits once.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, func, insert, inspect, select, update
from sqlalchemy.orm import Session, joinedload

from surveys.errors import DomainError
from surveys.models import Employee
from surveys.paging import clamp_page, page_count

#: The CSV columns (and dict keys), in the order a file is expected to have them.
COLUMNS = ("employee_id", "name", "email", "manager_id", "department")
REQUIRED_COLUMNS = ("employee_id", "name", "email", "manager_id")
CSV_FORMAT = "employee_id,name,email,manager_id[,department]"

_MODEL_COLUMN = {
    "employee_id": "external_id",
    "name": "name",
    "email": "email",
    "manager_id": "external_id",
    "department": "department",
}
# Anything with one @, no spaces and a dot in the domain; real validation is the email bouncing.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_ERRORS_IN_MESSAGE = 20

Unit = Literal["line", "row"]


@dataclass(frozen=True)
class EmployeeRow:
    """One person as the file (or API caller) describes them, values stripped.

    ``manager_id`` is the manager's *external* id, None for the top of the org chart.
    ``department`` None means "not given: keep what is stored" (the optional column is
    absent); an empty string means "no department".
    ``line`` is the physical line in the CSV file (header = 1), None for dict rows.
    """

    employee_id: str
    name: str
    email: str
    manager_id: str | None = None
    department: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class RowError:
    """A problem with one row (``line`` None: with the file as a whole)."""

    line: int | None
    employee_id: str | None
    message: str
    #: "line" for CSV files (physical line, header = 1), "row" for dict rows (1-based index).
    unit: Unit = "line"

    def __str__(self) -> str:
        who = f" ({self.employee_id})" if self.employee_id else ""
        if self.line is None:
            return f"{self.employee_id}: {self.message}" if self.employee_id else self.message
        return f"{self.unit} {self.line}{who}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            self.unit: self.line,
            "employee_id": self.employee_id,
            "message": self.message,
        }


@dataclass(frozen=True)
class FieldChange:
    """One field of an existing employee that the import would change."""

    field: str  # name, email, manager_id (external ids), department or active
    before: str | bool | None
    after: str | bool | None


@dataclass(frozen=True)
class EmployeeChange:
    """An existing employee whose stored values differ from the row."""

    row: EmployeeRow
    fields: tuple[FieldChange, ...]

    @property
    def employee_id(self) -> str:
        return self.row.employee_id


@dataclass(frozen=True)
class ImportPlan:
    """What an import would do; nothing has been written when you hold one.

    ``added``/``changed``/``unchanged`` cover the rows that are valid on their own;
    ``apply_import`` refuses the plan while ``errors`` is not empty. ``absent`` lists the
    active employees in the database that the rows do not mention — left as they are.
    """

    rows: tuple[EmployeeRow, ...]
    added: tuple[EmployeeRow, ...]
    changed: tuple[EmployeeChange, ...]
    unchanged: tuple[EmployeeRow, ...]
    errors: tuple[RowError, ...]
    absent: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rejected_lines(self) -> frozenset[int]:
        """Lines (or rows) an error names: their row is rejected, whatever else it is."""
        return frozenset(e.line for e in self.errors if e.line is not None)

    @property
    def to_add(self) -> tuple[EmployeeRow, ...]:
        """``added`` without the rejected rows (what a preview lists as to be added)."""
        return tuple(r for r in self.added if r.line not in self.rejected_lines)

    @property
    def to_change(self) -> tuple[EmployeeChange, ...]:
        """``changed`` without the rejected rows."""
        return tuple(c for c in self.changed if c.row.line not in self.rejected_lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``--json`` and the API)."""
        return {
            "ok": self.ok,
            "added": [r.employee_id for r in self.added],
            "changed": [
                {
                    "employee_id": c.employee_id,
                    "fields": {f.field: {"before": f.before, "after": f.after} for f in c.fields},
                }
                for c in self.changed
            ],
            "unchanged": len(self.unchanged),
            "absent": list(self.absent),
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True)
class ImportResult:
    """What ``apply_import`` wrote, by external id."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]


class EmployeeImportError(DomainError):
    """The rows (or the file) cannot be imported; ``errors`` says where and why."""

    def __init__(
        self, errors: Sequence[RowError], source: str | None = None, message: str | None = None
    ) -> None:
        self.errors = tuple(errors)
        self.source = source
        if message is None:
            shown = [str(e) for e in self.errors[:_MAX_ERRORS_IN_MESSAGE]]
            more = len(self.errors) - len(shown)
            if more:
                shown.append(f"… and {more} more")
            count = len(self.errors)
            head = f"{source}: " if source else ""
            message = f"{head}{count} error{'s' if count != 1 else ''}, nothing imported:\n" + (
                "\n".join(f"  {line}" for line in shown)
            )
        super().__init__(message)


# --- step 1: the file ----------------------------------------------------------------------


def parse_employees_csv(data: bytes, source: str = "employees.csv") -> list[EmployeeRow]:
    """Read ``employee_id,name,email,manager_id[,department]`` rows from CSV bytes.

    UTF-8 (with or without BOM), any line endings, columns in any order, header names
    case- and space-insensitive; blank lines are skipped. Raises ``EmployeeImportError``
    listing every bad line (physical line numbers, header = line 1).
    """
    parsed = _read_csv(data)
    if parsed.errors:
        raise EmployeeImportError(parsed.errors, source)
    return parsed.rows


def plan_csv_import(session: Session, data: bytes, source: str = "employees.csv") -> ImportPlan:
    """``parse_employees_csv`` + ``plan_import`` in one preview that never raises.

    The file's own errors and the org-chart errors of its readable rows come back
    together, so one round shows every problem (what the CLI and an upload form want).
    """
    parsed = _read_csv(data)
    if parsed.fatal:
        return ImportPlan(rows=(), added=(), changed=(), unchanged=(), errors=parsed.errors)
    return _plan(session, parsed.rows, parsed.errors, parsed.failed_ids)


@dataclass(frozen=True)
class _Parsed:
    rows: list[EmployeeRow]
    errors: tuple[RowError, ...] = ()
    failed_ids: frozenset[str] = frozenset()  # ids on lines that could not be read
    fatal: bool = False  # the file as a whole is unreadable (no rows at all)


#: Signatures of files that are often sent where a CSV belongs.
_NOT_CSV = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip file",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"%PDF": "a PDF",
}


def _read_csv(data: bytes) -> _Parsed:
    kind = next((k for magic, k in _NOT_CSV.items() if data.startswith(magic)), None)
    if kind is None and b"\x00" in data[:4096]:
        kind = "a binary file (or UTF-16 text)"
    if kind is not None:
        problem = RowError(
            None,
            None,
            f"this is {kind}, not a CSV file: in Excel choose File → Save As → "
            f"'CSV UTF-8 (Comma delimited)'; expected {CSV_FORMAT}",
        )
        return _Parsed([], (problem,), fatal=True)
    text, encoding_errors = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    try:
        header = next(reader, None)
        while header is not None and _blank(header):
            header = next(reader, None)  # leading blank lines
    except csv.Error as error:
        problem = RowError(reader.line_num, None, _csv_problem(str(error)))
        return _Parsed([], tuple(_sorted_errors([*encoding_errors, problem])), fatal=True)
    if header is None:
        empty = RowError(None, None, f"the file is empty; expected a header line: {CSV_FORMAT}")
        return _Parsed([], (empty,), fatal=True)
    end = reader.line_num
    fields, problems = _read_header(header, end)
    if problems:
        return _Parsed([], tuple(_sorted_errors([*encoding_errors, *problems])), fatal=True)

    rows: list[EmployeeRow] = []
    errors = encoding_errors  # reported with the rest, so one pass shows every problem
    first_line: dict[str, int] = {}
    failed: set[str] = set()
    while True:
        start = end + 1
        try:
            cells = next(reader, None)
        except csv.Error as error:
            end = reader.line_num
            errors.append(RowError(start, None, _csv_problem(str(error))))
            continue
        if cells is None:
            break
        end = reader.line_num
        if _blank(cells):
            continue
        if len(cells) != len(fields):
            where = fields.index("employee_id")
            employee_id = cells[where].strip() if where < len(cells) else ""
            failed.add(employee_id)
            spans = f" (the row runs to line {end}: an unclosed quote?)" if end > start else ""
            errors.append(
                RowError(
                    start,
                    employee_id or None,
                    f"expected {len(fields)} cells ({', '.join(fields)}), found {len(cells)}"
                    + spans,
                )
            )
            continue
        values = dict(zip(fields, cells, strict=True))
        row, row_errors = _check_values(values, "line", start, row_line=start)
        errors.extend(row_errors)
        if row is None:
            failed.add((values.get("employee_id") or "").strip())
            continue
        if row.employee_id in first_line:
            errors.append(_duplicate_id(row, "line", start, first_line[row.employee_id]))
            continue
        first_line[row.employee_id] = start
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(None, None, "the file has a header but no employees"))
        return _Parsed([], tuple(errors), fatal=True)
    failed.discard("")
    return _Parsed(rows, tuple(_sorted_errors(errors)), frozenset(failed))


def _sorted_errors(errors: Sequence[RowError]) -> list[RowError]:
    """File-wide errors first, then by line (stable: a line's errors keep their order)."""
    return sorted(errors, key=lambda e: e.line or 0)


def _csv_problem(message: str) -> str:
    if "unexpected end of data" in message:
        return "a quote opened on this line is never closed"
    return f"broken quoting ({message}); a quote inside a value must be doubled"


def _decode(data: bytes) -> tuple[str, list[RowError]]:
    """The text, and an error for every line that is not UTF-8 (decoded with U+FFFD)."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    errors = []
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            errors.append(
                RowError(
                    number,
                    None,
                    f"not UTF-8 (byte 0x{line[error.start]:02x} at column {error.start + 1}); "
                    "save the file as 'CSV UTF-8'",
                )
            )
    return data.decode("utf-8-sig", errors="replace"), errors


def _clipped(name: str, limit: int = 40) -> str:
    """A header cell quoted for a message, cut short (a binary file's "cell" is huge)."""
    return repr(name if len(name) <= limit else name[: limit - 1] + "…")


def _blank(cells: list[str]) -> bool:
    return all(not cell.strip() for cell in cells)


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _read_header(header: list[str], line: int) -> tuple[list[str], list[RowError]]:
    fields = [_normalise_header(name) for name in header]
    problems = []
    unknown = [name for name, f in zip(header, fields, strict=True) if f not in COLUMNS]
    if unknown:
        hint = ""
        if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
            hint = " (the file must be comma-separated)"
        problems.append(
            f"unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(_clipped(u.strip()) for u in unknown)}{hint}; expected {CSV_FORMAT}"
        )
    duplicated = sorted({f for f in fields if fields.count(f) > 1 and f in COLUMNS})
    if duplicated:
        problems.append(f"column {', '.join(duplicated)} appears more than once")
    missing = [c for c in REQUIRED_COLUMNS if c not in fields]
    if missing and not (len(header) == 1 and unknown):
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return fields, [RowError(line, None, p) for p in problems]


def _duplicate_id(row: EmployeeRow, unit: Unit, number: int, first: int) -> RowError:
    return RowError(
        number,
        row.employee_id,
        f"employee_id {row.employee_id!r} is on {unit} {first} and {unit} {number}",
        unit,
    )


@functools.cache
def _max_length(field: str) -> int:
    column = inspect(Employee).columns[_MODEL_COLUMN[field]]
    return cast(int, getattr(column.type, "length", None) or 10_000)


def _check_values(
    values: Mapping[str, str | None], unit: Unit, number: int, *, row_line: int | None
) -> tuple[EmployeeRow | None, list[RowError]]:
    """Check one row's values on their own; returns the row or its errors."""
    clean = {key: (value.strip() if value is not None else None) for key, value in values.items()}
    messages = []
    for field in COLUMNS:
        value = clean.get(field)
        if not value:
            if field in ("employee_id", "name", "email"):
                messages.append(f"{field} is empty")
        elif _CONTROL.search(value):
            messages.append(f"{field} contains a line break or control character")
        elif len(value) > _max_length(field):
            messages.append(
                f"{field} is {len(value)} characters long; at most {_max_length(field)} fit"
            )
        elif field == "email" and not _EMAIL.fullmatch(value):
            messages.append(f"email {value!r} is not a valid address")
    if messages:
        who = clean.get("employee_id") or None
        return None, [RowError(number, who, m, unit) for m in messages]
    return (
        EmployeeRow(
            employee_id=clean["employee_id"] or "",
            name=clean["name"] or "",
            email=clean["email"] or "",
            manager_id=clean.get("manager_id") or None,
            department=clean.get("department"),
            line=row_line,
        ),
        [],
    )


# --- step 2: the plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    id: int
    external_id: str
    name: str
    email: str
    manager_id: str | None  # external id
    department: str | None
    active: bool


def plan_import(
    session: Session, rows: Sequence[Mapping[str, Any]] | Sequence[EmployeeRow]
) -> ImportPlan:
    """Compare ``rows`` with the database and check the org chart as a whole; writes nothing.

    ``rows`` are ``EmployeeRow``s (from ``parse_employees_csv``) or dicts with the CSV's
    column names as keys (the API); dict rows are reported as "row N" (1-based index).
    """
    return _plan(session, rows)


def _plan(
    session: Session,
    rows: Sequence[Mapping[str, Any]] | Sequence[EmployeeRow],
    earlier_errors: Sequence[RowError] = (),
    failed_ids: Collection[str] = (),
) -> ImportPlan:
    checked: list[tuple[EmployeeRow, Unit, int]] = []
    errors: list[RowError] = list(earlier_errors)
    # Every id mentioned, valid row or not: a broken row must not make its reports'
    # manager "unknown" as well.
    seen_ids: set[str] = set(failed_ids)
    first: dict[str, int] = {}
    for index, item in enumerate(rows, start=1):
        row: EmployeeRow | None = None
        if isinstance(item, EmployeeRow):
            unit: Unit = "line" if item.line is not None else "row"
            number = item.line if item.line is not None else index
            values: dict[str, str | None] = {f: getattr(item, f) for f in COLUMNS}
            row, row_errors = _check_values(values, unit, number, row_line=item.line)
        else:
            unit, number = "row", index
            values, row_errors = _dict_values(item, index)
            if not row_errors:
                row, row_errors = _check_values(values, unit, number, row_line=None)
        if values.get("employee_id"):
            seen_ids.add(str(values["employee_id"]).strip())
        errors.extend(row_errors)
        if row is None:
            continue
        if row.employee_id in first:
            errors.append(_duplicate_id(row, unit, number, first[row.employee_id]))
            continue
        first[row.employee_id] = number
        checked.append((row, unit, number))

    stored = _load_stored(session)
    errors.extend(_check_org_chart(checked, stored, seen_ids))
    added, changed, unchanged = _diff(checked, stored)
    listed = {row.employee_id for row, _, _ in checked} | seen_ids
    absent = tuple(sorted(s for s in stored if s not in listed and stored[s].active))
    errors = _sorted_errors(errors)
    return ImportPlan(
        rows=tuple(row for row, _, _ in checked),
        added=tuple(added),
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        errors=tuple(errors),
        absent=absent,
    )


def _dict_values(item: Any, index: int) -> tuple[dict[str, str | None], list[RowError]]:
    if not isinstance(item, Mapping):
        return {}, [RowError(index, None, "is not an object with employee fields", "row")]
    employee_id = item.get("employee_id")
    who = str(employee_id) if isinstance(employee_id, str | int) else None
    messages = []
    unknown = sorted(str(key) for key in item if key not in COLUMNS)
    if unknown:
        messages.append(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    values: dict[str, str | None] = {}
    for key in COLUMNS:
        if key not in item:
            if key in REQUIRED_COLUMNS:
                hint = " (null for nobody)" if key == "manager_id" else ""
                messages.append(f"{key} is missing{hint}")
            continue
        value = item[key]
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_id"):
            value = str(value)  # JSON numbers as ids are common and harmless
        if value is not None and not isinstance(value, str):
            messages.append(f"{key} must be a string, not {type(value).__name__}")
            continue
        values[key] = value
    return values, [RowError(index, who, m, "row") for m in messages]


def _load_stored(session: Session) -> dict[str, _Stored]:
    """Every employee in one query (no per-row look-ups), keyed by external id."""
    result = session.execute(
        select(
            Employee.id,
            Employee.external_id,
            Employee.name,
            Employee.email,
            Employee.manager_id,
            Employee.department,
            Employee.active,
        )
    ).all()
    external = {r.id: r.external_id for r in result}
    return {
        r.external_id: _Stored(
            id=r.id,
            external_id=r.external_id,
            name=r.name,
            email=r.email,
            manager_id=external.get(r.manager_id) if r.manager_id is not None else None,
            department=r.department,
            active=r.active,
        )
        for r in result
    }


def _check_org_chart(
    checked: list[tuple[EmployeeRow, Unit, int]],
    stored: dict[str, _Stored],
    seen_ids: set[str],
) -> list[RowError]:
    """Unknown managers, manager cycles (with the database too) and shared emails."""
    errors: list[RowError] = []
    in_rows = {row.employee_id: (row, unit, number) for row, unit, number in checked}

    for row, unit, number in checked:
        manager = row.manager_id
        if manager is None:
            continue
        if manager == row.employee_id:
            errors.append(RowError(number, row.employee_id, "is their own manager", unit))
        elif manager not in seen_ids and manager not in stored:
            errors.append(
                RowError(
                    number,
                    row.employee_id,
                    f"manager_id {manager!r} is neither in the rows nor in the database",
                    unit,
                )
            )

    errors.extend(_cycle_errors(in_rows, stored))

    # Emails: one person per address among the rows and the active people they leave alone.
    owners: dict[str, tuple[str, str]] = {}  # lower-cased email -> (employee id, where)
    for person in stored.values():
        if person.external_id not in in_rows and person.active:
            owners[person.email.lower()] = (person.external_id, "in the database")
    for row, unit, number in checked:
        key = row.email.lower()
        owner = owners.get(key)
        if owner is not None and owner[0] != row.employee_id:
            errors.append(
                RowError(
                    number,
                    row.employee_id,
                    f"email {row.email!r} is also used by {owner[0]} ({owner[1]})",
                    unit,
                )
            )
        else:
            owners[key] = (row.employee_id, f"{unit} {number}")
    return errors


def _cycle_errors(
    in_rows: dict[str, tuple[EmployeeRow, Unit, int]], stored: dict[str, _Stored]
) -> list[RowError]:
    """Walk the manager chain from every row; the rows win over the database."""

    def manager_of(person: str) -> str | None:
        if person in in_rows:
            return in_rows[person][0].manager_id
        return stored[person].manager_id if person in stored else None

    def name_of(person: str) -> str:
        if person in in_rows:
            return in_rows[person][0].name
        return stored[person].name if person in stored else "?"

    errors = []
    done: set[str] = set()
    for start in in_rows:
        path: list[str] = []
        on_path: dict[str, int] = {}
        person: str | None = start
        while person is not None and person not in done and person not in on_path:
            on_path[person] = len(path)
            path.append(person)
            person = manager_of(person)
        if person is not None and person in on_path:
            loop = path[on_path[person] :]
            listed = [p for p in loop if p in in_rows]
            # A self-manager is reported on its own row; a loop only among stored people
            # is not this import's doing (and cannot be made by it).
            # Every line of the loop is in error (none of them can be imported as it is).
            if len(loop) > 1 and listed:
                chain = " → ".join(f"{p} ({name_of(p)})" for p in [*loop, loop[0]])
                for row, unit, number in sorted((in_rows[p] for p in listed), key=lambda r: r[2]):
                    errors.append(
                        RowError(number, row.employee_id, f"manager cycle: {chain}", unit)
                    )
        done.update(path)
    return errors


def _diff(
    checked: list[tuple[EmployeeRow, Unit, int]], stored: dict[str, _Stored]
) -> tuple[list[EmployeeRow], list[EmployeeChange], list[EmployeeRow]]:
    added, changed, unchanged = [], [], []
    for row, _, _ in checked:
        person = stored.get(row.employee_id)
        if person is None:
            added.append(row)
            continue
        fields = [
            FieldChange(name, before, after)
            for name, before, after in (
                ("name", person.name, row.name),
                ("email", person.email, row.email),
                ("manager_id", person.manager_id, row.manager_id),
                (
                    "department",
                    person.department,
                    person.department if row.department is None else (row.department or None),
                ),
                ("active", person.active, True),
            )
            if before != after
        ]
        if fields:
            changed.append(EmployeeChange(row, tuple(fields)))
        else:
            unchanged.append(row)
    return added, changed, unchanged


# --- step 3: writing -----------------------------------------------------------------------


def apply_import(session: Session, plan: ImportPlan) -> ImportResult:
    """Write ``plan``: all of it, or nothing (raises ``EmployeeImportError``).

    The plan is checked again against the database as it is now, so a preview that went
    stale (someone imported in between) is refused rather than applied half-right.
    """
    if plan.errors:
        raise EmployeeImportError(plan.errors)
    session.flush()  # the bulk statements below work on the database, not the session
    current = plan_import(session, plan.rows)
    if current.errors:
        raise EmployeeImportError(current.errors)
    if (current.added, current.changed) != (plan.added, plan.changed):
        raise EmployeeImportError(
            [],
            message="the employees in the database changed since this preview was made; "
            "preview the import again",
        )

    # Bulk statements (executemany), not one ORM object per row: 10,000 people import in
    # about a second. First pass: everyone exists; second pass: managers, who may be
    # defined after their reports in the file.
    if current.added:
        session.execute(
            insert(Employee),
            [
                {
                    "external_id": row.employee_id,
                    "name": row.name,
                    "email": row.email,
                    "department": row.department or None,
                    "active": True,
                }
                for row in current.added
            ],
        )
    keys = {
        external_id: (pk, manager_pk)
        for external_id, pk, manager_pk in session.execute(
            select(Employee.external_id, Employee.id, Employee.manager_id)
        )
    }
    updates: dict[str, dict[str, Any]] = {}
    for change in current.changed:
        updates[change.employee_id] = {
            f.field: f.after for f in change.fields if f.field != "manager_id"
        }
    for row in current.rows:
        manager_pk = keys[row.employee_id][1]
        wanted = keys[row.manager_id][0] if row.manager_id is not None else None
        if manager_pk != wanted:
            updates.setdefault(row.employee_id, {})["manager_id"] = wanted
    if updates:
        session.execute(
            update(Employee).execution_options(synchronize_session=False),
            [{"id": keys[ext][0], **values} for ext, values in updates.items() if values],
        )
    # Objects already in the session missed the bulk statements: reload them on access.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Employee):
            session.expire(obj)
    return ImportResult(
        added=tuple(r.employee_id for r in current.added),
        changed=tuple(c.employee_id for c in current.changed),
        unchanged=tuple(r.employee_id for r in current.unchanged),
    )


def import_employees(
    session: Session,
    data_or_rows: bytes | Sequence[Mapping[str, Any]] | Sequence[EmployeeRow],
    source: str = "employees.csv",
) -> ImportResult:
    """Parse (when given CSV bytes), plan and apply in one go; raises on any error.

    ``source`` names the file in error messages.
    """
    if isinstance(data_or_rows, bytes | bytearray):
        plan = plan_csv_import(session, bytes(data_or_rows), source)
    else:
        plan = plan_import(session, data_or_rows)
    if plan.errors:
        raise EmployeeImportError(plan.errors, source)
    return apply_import(session, plan)


# --- other services ------------------------------------------------------------------------


def deactivate_employee(session: Session, employee: Employee) -> None:
    """Take someone out of future cycles; their history (ratings, reports) stays."""
    employee.active = False
    session.flush()


def list_employees(
    session: Session, *, department: str | None = None, include_inactive: bool = True
) -> list[Employee]:
    """Employees ordered by department and name; ``department`` matches case-insensitively."""
    query = (
        select(Employee)
        .options(joinedload(Employee.manager))
        .order_by(Employee.department, Employee.name, Employee.external_id)
    )
    if department is not None:
        query = query.where(func.lower(Employee.department) == department.strip().lower())
    if not include_inactive:
        query = query.where(Employee.active.is_(True))
    return list(session.scalars(query))


def reactivate_employee(session: Session, employee: Employee) -> None:
    """Offer someone for new cycles again (undoes ``deactivate_employee``)."""
    employee.active = True
    session.flush()


@dataclass(frozen=True)
class EmployeePage:
    """One page of a people search, with the total to draw the pager."""

    employees: tuple[Employee, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)


def matching(text: str) -> list[ColumnElement[bool]]:
    """Conditions for people whose name, email, employee id or department contains every
    word of ``text`` (any case; typed text, so "%" and "_" match themselves).

    Every word must match somewhere: "eng ada" finds Ada in Engineering. Shared by the
    console's people search and the API's ``search=``.
    """
    return [
        Employee.name.icontains(word, autoescape=True)
        | Employee.email.icontains(word, autoescape=True)
        | Employee.external_id.icontains(word, autoescape=True)
        | Employee.department.icontains(word, autoescape=True)
        for word in text.split()
    ]


def search_employees(
    session: Session,
    query: str = "",
    *,
    active: bool | None = None,
    page: int = 1,
    per_page: int = 50,
) -> EmployeePage:
    """People whose name, email, employee id or department contains ``query`` (any case).

    ``active`` None lists everyone; ``page`` is 1-based and clamped to the pages there are,
    so a stale link past the end shows the last page rather than nothing.
    """
    condition = select(Employee.id).where(*matching(query))
    if active is not None:
        condition = condition.where(Employee.active.is_(active))
    total = session.scalar(select(func.count()).select_from(condition.subquery())) or 0
    page, _ = clamp_page(page, total, per_page)
    employees = session.scalars(
        select(Employee)
        .where(Employee.id.in_(condition.scalar_subquery()))
        .options(joinedload(Employee.manager))
        .order_by(Employee.name, Employee.external_id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return EmployeePage(tuple(employees), total, page, per_page)


def plan_fingerprint(plan: ImportPlan) -> str:
    """A short digest of what ``plan`` would write (additions and changes, old and new values).

    A preview carries it to the apply step: if planning the same file again gives another
    fingerprint, the database changed in between and the preview no longer tells the truth.
    """
    summary = plan.as_dict()
    written = {
        "added": [{f: getattr(row, f) for f in COLUMNS} for row in plan.added],
        "changed": summary["changed"],
        "errors": summary["errors"],
    }
    encoded = json.dumps(written, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()
