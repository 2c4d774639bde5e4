"""Org chart import: parsing, the plan (preview), applying it all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from surveys.employees import (
    EmployeeImportError,
    EmployeeRow,
    FieldChange,
    apply_import,
    deactivate_employee,
    import_employees,
    list_employees,
    parse_employees_csv,
    plan_csv_import,
    plan_import,
)
from surveys.models import Employee

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "employees.csv"
HEADER = "employee_id,name,email,manager_id,department"


def csv(*lines: str, header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *lines, ""]).encode()


def messages(error: pytest.ExceptionInfo[EmployeeImportError]) -> list[str]:
    return [str(e) for e in error.value.errors]


def people(session) -> dict[str, Employee]:
    session.expire_all()
    return {e.external_id: e for e in session.scalars(sa.select(Employee))}


def count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Employee))


def manager_of(session, external_id: str) -> str | None:
    person = people(session)[external_id]
    return person.manager.external_id if person.manager else None


@pytest.fixture
def org(session):
    """A small org already in the database: A1 → B1 → C1, and inactive X9."""
    import_employees(
        session,
        csv(
            "A1,Ann,ann@example.com,,Ops",
            "B1,Ben,ben@example.com,A1,Ops",
            "C1,Cat,cat@example.com,B1,Ops",
            "X9,Xia,xia@example.com,,Ops",
        ),
    )
    deactivate_employee(session, people(session)["X9"])
    session.commit()
    return session


# --- the happy path -----------------------------------------------------------------------


def test_example_file_imports_three_levels_and_two_departments(session):
    result = import_employees(session, EXAMPLE.read_bytes())
    session.commit()
    assert len(result.added) == 12
    everyone = people(session)
    assert {e.department for e in everyone.values()} == {"Engineering", "Sales"}
    assert manager_of(session, "E001") is None
    assert manager_of(session, "E002") == "E001"
    assert manager_of(session, "E003") == "E002"
    assert everyone["E012"].name == "Lucía Fernández, Jr."
    assert all(e.active for e in everyone.values())


def test_reimporting_the_same_file_changes_nothing(session):
    data = EXAMPLE.read_bytes()
    import_employees(session, data)
    session.commit()
    stamps = {k: e.updated_at for k, e in people(session).items()}

    plan = plan_csv_import(session, data)
    assert (plan.added, plan.changed, plan.errors) == ((), (), ())
    assert len(plan.unchanged) == 12
    result = apply_import(session, plan)
    session.commit()

    assert result.added == result.changed == ()
    assert count(session) == 12
    assert {k: e.updated_at for k, e in people(session).items()} == stamps


def test_changed_fields_are_diffed_then_updated(org):
    plan = plan_csv_import(
        org,
        csv(
            "A1,Ann,ann@example.com,,Ops",
            "B1,Ben Jones,ben.jones@example.com,,Sales",
            "C1,Cat,cat@example.com,A1,Ops",
        ),
    )
    assert plan.errors == ()
    assert [r.employee_id for r in plan.unchanged] == ["A1"]
    diffs = {c.employee_id: c.fields for c in plan.changed}
    assert diffs == {
        "B1": (
            FieldChange("name", "Ben", "Ben Jones"),
            FieldChange("email", "ben@example.com", "ben.jones@example.com"),
            FieldChange("manager_id", "A1", None),
            FieldChange("department", "Ops", "Sales"),
        ),
        "C1": (FieldChange("manager_id", "B1", "A1"),),
    }
    assert plan.absent == ()  # X9 is inactive; A1..C1 are listed

    result = apply_import(org, plan)
    org.commit()
    assert sorted(result.changed) == ["B1", "C1"]
    ben = people(org)["B1"]
    assert (ben.name, ben.email, ben.manager, ben.department) == (
        "Ben Jones",
        "ben.jones@example.com",
        None,
        "Sales",
    )
    assert manager_of(org, "C1") == "A1"


def test_managers_may_come_later_in_the_file(session):
    import_employees(
        session,
        csv(
            "C,Cat,cat@example.com,B,",
            "B,Ben,ben@example.com,A,",
            "A,Ann,ann@example.com,,",
        ),
    )
    session.commit()
    assert manager_of(session, "C") == "B"
    assert manager_of(session, "B") == "A"


def test_listed_inactive_employee_is_reactivated(org):
    plan = plan_csv_import(org, csv("X9,Xia,xia@example.com,,Ops"))
    assert plan.changed[0].fields == (FieldChange("active", False, True),)
    assert plan.absent == ("A1", "B1", "C1")  # left alone, not deactivated
    apply_import(org, plan)
    org.commit()
    assert people(org)["X9"].active is True
    assert people(org)["A1"].active is True


def test_deactivation_keeps_the_person_and_their_place(org):
    deactivate_employee(org, people(org)["B1"])
    org.commit()
    assert count(org) == 4
    assert people(org)["B1"].active is False
    assert manager_of(org, "C1") == "B1"
    assert [e.external_id for e in list_employees(org, include_inactive=False)] == ["A1", "C1"]


def test_department_column_absent_keeps_it_and_empty_cell_clears_it(org):
    four = "employee_id,name,email,manager_id"
    import_employees(org, csv("A1,Ann,ann@example.com,", header=four))
    assert people(org)["A1"].department == "Ops"
    import_employees(org, csv("A1,Ann,ann@example.com,,"))
    assert people(org)["A1"].department is None


def test_header_is_case_space_and_order_insensitive(session):
    header = " Email , Employee ID,NAME,Manager_ID "
    rows = parse_employees_csv(csv("ann@example.com,A1,Ann,", header=header))
    assert rows == [EmployeeRow("A1", "Ann", "ann@example.com", None, None, line=2)]


def test_values_are_stripped_and_quoted_commas_kept(session):
    rows = parse_employees_csv(csv('  A1 , "Okafor, Amara",ann@example.com, , Ops '))
    assert rows == [EmployeeRow("A1", "Okafor, Amara", "ann@example.com", None, "Ops", line=2)]


# --- encodings and line endings -----------------------------------------------------------


def test_utf8_bom_is_tolerated(session):
    rows = parse_employees_csv("\ufeff".encode() + csv("A1,Zoë,zoe@example.com,,"))
    assert rows[0].employee_id == "A1"
    assert rows[0].name == "Zoë"


def test_windows_line_endings_are_tolerated(session):
    data = b"\xef\xbb\xbf" + csv(
        "A1,Ann,ann@example.com,,", "B1,Ben,ben@example.com,A1,", newline="\r\n"
    )
    rows = parse_employees_csv(data)
    assert [(r.employee_id, r.manager_id, r.line) for r in rows] == [
        ("A1", None, 2),
        ("B1", "A1", 3),
    ]


def test_non_utf8_bytes_name_the_line_and_other_errors_still_show(session):
    data = csv("A1,Ann,ann@example.com,,", "B1,Ren\xe9e,bad-email,,").replace(
        "Ren\xe9e".encode(), b"Ren\xe9e"
    )
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data, "people.csv")
    assert messages(error) == [
        "line 3: not UTF-8 (byte 0xe9 at column 7); save the file as 'CSV UTF-8'",
        "line 3 (B1): email 'bad-email' is not a valid address",
    ]
    assert error.value.source == "people.csv"
    assert "people.csv: 2 errors" in str(error.value)


def test_blank_lines_are_skipped_and_lines_stay_physical(session):
    data = csv("", "A1,Ann,ann@example.com,,", "  ", ",,,,", "B1,Ben,,A1,")
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data)
    assert messages(error) == ["line 6 (B1): email is empty"]


def test_line_numbers_count_lines_inside_quoted_values(session):
    data = csv('A1,"Ann\nSmith",ann@example.com,,', "B1,Ben,ben@,,")
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data)
    assert messages(error) == [
        "line 2 (A1): name contains a line break or control character",
        "line 4 (B1): email 'ben@' is not a valid address",
    ]


# --- file-level problems ------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\n  \n"])
def test_empty_file(session, data):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data)
    assert messages(error) == [
        "the file is empty; expected a header line: employee_id,name,email,manager_id[,department]"
    ]


def test_header_only(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(csv())
    assert messages(error) == ["the file has a header but no employees"]


def test_missing_columns(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(csv("A1,Ann", header="employee_id,name"))
    assert messages(error) == ["line 1: missing columns email, manager_id"]


def test_extra_unknown_column(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(csv("A1,Ann,ann@example.com,,Ops,x", header=HEADER + ",Title"))
    assert messages(error) == [
        "line 1: unknown column 'Title'; expected employee_id,name,email,manager_id[,department]"
    ]


def test_semicolon_separated_file_gets_a_hint(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(b"employee_id;name;email;manager_id\nA1;Ann;a@example.com;\n")
    assert "(the file must be comma-separated)" in messages(error)[0]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "an Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "an old Excel workbook (.xls)"),
        (b"%PDF-1.7\n", "a PDF"),
        ("employee_id,name".encode("utf-16"), "a binary file (or UTF-16 text)"),
    ],
)
def test_a_workbook_or_other_binary_file_is_named_as_such(session, data, kind):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data)
    (message,) = messages(error)
    assert message.startswith(f"this is {kind}")
    assert "'CSV UTF-8 (Comma delimited)'" in message


def test_a_long_unknown_column_is_cut_short_in_the_message(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(csv(header=HEADER + "," + "x" * 5000))
    (message,) = messages(error)
    assert f"unknown column '{'x' * 39}…'" in message
    assert len(message) < 200


def test_duplicate_column(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(
            csv("A1,Ann,a@example.com,,x", header="employee_id,name,email,manager_id,Name")
        )
    assert messages(error) == ["line 1: column name appears more than once"]


# --- row-level problems: all of them, each with its line ----------------------------------


def test_every_bad_row_is_reported_with_its_line(session):
    long_name = "N" * 201
    data = csv(
        "A1,Ann,ann@example.com,,",
        ",Nobody,nobody@example.com,,",  # 3
        "B1,,ben@example.com,,",  # 4
        "C1,Cat,not-an-email,,",  # 5
        f"D1,{long_name},dee@example.com,,",  # 6
        "E1,Eve,eve@example.com",  # 7: too few cells
        "F1,Fay,fay@example.com,,,extra",  # 8: too many
        "A1,Ann again,ann2@example.com,,",  # 9: duplicate of line 2
        "G1,Gus," + "g" * 250 + "@example.com,,",  # 10
    )
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(data)
    assert messages(error) == [
        "line 3: employee_id is empty",
        "line 4 (B1): name is empty",
        "line 5 (C1): email 'not-an-email' is not a valid address",
        "line 6 (D1): name is 201 characters long; at most 200 fit",
        "line 7 (E1): expected 5 cells (employee_id, name, email, manager_id, department), found 3",
        "line 8 (F1): expected 5 cells (employee_id, name, email, manager_id, department), found 6",
        "line 9 (A1): employee_id 'A1' is on line 2 and line 9",
        "line 10 (G1): email is 262 characters long; at most 254 fit",
    ]


def test_unclosed_quote_is_reported_where_it_opens(session):
    with pytest.raises(EmployeeImportError) as error:
        parse_employees_csv(
            csv("A1,Ann,ann@example.com,,", 'B1,"Ben,ben@example.com,,', "C1,Cat,c@x.org,,")
        )
    assert messages(error) == ["line 3: a quote opened on this line is never closed"]


# --- org-chart problems (need the whole file and the database) ----------------------------


def test_unknown_manager(org):
    plan = plan_csv_import(org, csv("D1,Dan,dan@example.com,Z9,", "E1,Eve,eve@example.com,C1,"))
    assert [str(e) for e in plan.errors] == [
        "line 2 (D1): manager_id 'Z9' is neither in the rows nor in the database"
    ]
    assert [r.employee_id for r in plan.added] == ["D1", "E1"]  # the preview still shows them
    with pytest.raises(EmployeeImportError):
        apply_import(org, plan)


def test_self_manager(session):
    plan = plan_csv_import(session, csv("A1,Ann,ann@example.com,A1,"))
    assert [str(e) for e in plan.errors] == ["line 2 (A1): is their own manager"]


def test_manager_cycle_within_the_file_names_everyone_in_it(session):
    plan = plan_csv_import(
        session,
        csv(
            "T,Top,top@example.com,,",
            "A,Ann,ann@example.com,C,",
            "B,Ben,ben@example.com,A,",
            "C,Cat,cat@example.com,B,",
            "D,Dan,dan@example.com,A,",  # hangs off the cycle, not part of it
        ),
    )
    # Every line of the loop is in error, so none is listed "to add" in a preview.
    chain = "manager cycle: A (Ann) → C (Cat) → B (Ben) → A (Ann)"
    assert [str(e) for e in plan.errors] == [
        f"line 3 (A): {chain}",
        f"line 4 (B): {chain}",
        f"line 5 (C): {chain}",
    ]
    assert {r.employee_id for r in plan.to_add} == {"T", "D"}


def test_manager_cycle_through_the_database(org):
    # A1 → B1 → C1 in the database; making A1 report to C1 (B1 and C1 not in the file)
    # closes the loop.
    plan = plan_csv_import(org, csv("A1,Ann,ann@example.com,C1,Ops"))
    assert [str(e) for e in plan.errors] == [
        "line 2 (A1): manager cycle: A1 (Ann) → C1 (Cat) → B1 (Ben) → A1 (Ann)"
    ]


def test_moving_people_around_without_a_cycle_is_fine(org):
    # Turn the chain upside down in one file: C1 → B1 → A1.
    plan = plan_csv_import(
        org,
        csv(
            "A1,Ann,ann@example.com,B1,Ops",
            "B1,Ben,ben@example.com,C1,Ops",
            "C1,Cat,cat@example.com,,Ops",
        ),
    )
    assert plan.errors == ()
    apply_import(org, plan)
    org.commit()
    assert manager_of(org, "A1") == "B1"
    assert manager_of(org, "C1") is None


def test_email_shared_within_the_file(session):
    plan = plan_csv_import(session, csv("A1,Ann,ann@example.com,,", "B1,Ben,ANN@example.com,,"))
    assert [str(e) for e in plan.errors] == [
        "line 3 (B1): email 'ANN@example.com' is also used by A1 (line 2)"
    ]


def test_email_of_someone_else_in_the_database(org):
    plan = plan_csv_import(org, csv("D1,Dan,Cat@Example.com,,", "E1,Eve,xia@example.com,,"))
    # C1 is active and not in the file; X9 is inactive, so their old address may be reused.
    assert [str(e) for e in plan.errors] == [
        "line 2 (D1): email 'Cat@Example.com' is also used by C1 (in the database)"
    ]


def test_two_people_may_swap_emails(org):
    import_employees(org, csv("A1,Ann,ben@example.com,,Ops", "B1,Ben,ann@example.com,A1,Ops"))
    assert people(org)["A1"].email == "ben@example.com"


# --- nothing is half-imported -------------------------------------------------------------


def test_a_failing_row_leaves_the_database_untouched(org):
    before = count(org)
    data = csv(
        "A1,Ann Renamed,ann@example.com,,Ops",
        "N1,New,new@example.com,A1,Ops",
        "N2,Newer,newer@example.com,NOPE,Ops",
    )
    with pytest.raises(EmployeeImportError) as error:
        import_employees(org, data)
    assert messages(error) == [
        "line 4 (N2): manager_id 'NOPE' is neither in the rows nor in the database"
    ]
    org.rollback()
    assert count(org) == before
    assert people(org)["A1"].name == "Ann"
    assert not org.new
    assert not org.dirty


def test_apply_refuses_a_plan_with_errors_and_writes_nothing(session):
    plan = plan_csv_import(session, csv("A1,Ann,ann@example.com,A1,"))
    with pytest.raises(EmployeeImportError) as error:
        apply_import(session, plan)
    assert error.value.errors == plan.errors
    assert count(session) == 0


def test_apply_refuses_a_stale_preview(org):
    plan = plan_csv_import(org, csv("D1,Dan,dan@example.com,A1,"))
    import_employees(org, csv("D1,Dan,dan@example.com,A1,"))  # someone else got there first
    with pytest.raises(EmployeeImportError, match="changed since this preview"):
        apply_import(org, plan)


# --- the dict / JSON entry point ----------------------------------------------------------


def test_dict_rows_import_like_csv_rows(session):
    rows = [
        {"employee_id": "B1", "name": "Ben", "email": "ben@example.com", "manager_id": "A1"},
        {
            "employee_id": "A1",
            "name": "Ann",
            "email": "ann@example.com",
            "manager_id": None,
            "department": "Ops",
        },
    ]
    plan = plan_import(session, rows)
    assert plan.errors == ()
    assert plan.as_dict() == {
        "ok": True,
        "added": ["B1", "A1"],
        "changed": [],
        "unchanged": 0,
        "absent": [],
        "errors": [],
    }
    apply_import(session, plan)
    assert manager_of(session, "B1") == "A1"
    assert people(session)["A1"].department == "Ops"
    assert import_employees(session, rows).unchanged == ("B1", "A1")


def test_dict_rows_report_errors_by_row_index(session):
    rows = [
        {"employee_id": "A1", "name": "Ann", "email": "ann@example.com", "manager_id": None},
        {"employee_id": 7, "name": "Seven", "email": "seven@example.com", "manager_id": "A1"},
        {"employee_id": "B1", "name": "Ben", "email": "ben@example.com"},
        {"employee_id": "C1", "name": ["Cat"], "email": "cat@example.com", "manager_id": None},
        "not a row",
        {"employee_id": "D1", "name": "Dan", "email": "dan@", "manager_id": "Z", "age": 3},
        {"employee_id": "E1", "name": "Eve", "email": "eve@example.com", "manager_id": "Z"},
        {"employee_id": "A1", "name": "Ann", "email": "ann2@example.com", "manager_id": None},
    ]
    plan = plan_import(session, rows)
    assert [e.as_dict() for e in plan.errors] == [
        {"row": 3, "employee_id": "B1", "message": "manager_id is missing (null for nobody)"},
        {"row": 4, "employee_id": "C1", "message": "name must be a string, not list"},
        {"row": 5, "employee_id": None, "message": "is not an object with employee fields"},
        {"row": 6, "employee_id": "D1", "message": "unknown field age"},
        {
            "row": 7,
            "employee_id": "E1",
            "message": "manager_id 'Z' is neither in the rows nor in the database",
        },
        {"row": 8, "employee_id": "A1", "message": "employee_id 'A1' is on row 1 and row 8"},
    ]
    assert [r.employee_id for r in plan.added] == ["A1", "7", "E1"]
    with pytest.raises(EmployeeImportError, match=r"row 3 \(B1\): manager_id is missing"):
        import_employees(session, rows)
    assert count(session) == 0


def test_employee_rows_built_by_hand_are_checked_too(session):
    plan = plan_import(session, [EmployeeRow(" A1 ", "Ann", "nope")])
    assert [str(e) for e in plan.errors] == ["row 1 (A1): email 'nope' is not a valid address"]


# --- speed --------------------------------------------------------------------------------


def test_large_import_uses_a_fixed_number_of_queries(session):
    n = 3000
    lines = [
        f"P{i},Person {i},p{i}@example.com,{f'P{i // 10}' if i else ''},D{i % 7}" for i in range(n)
    ]
    data = csv(*lines)
    statements: list[str] = []
    engine = session.get_bind()

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        result = import_employees(session, data)
        session.flush()
        first = len(statements)
        statements.clear()
        lines[1] = "P1,Person One,p1@example.com,P0,D1"
        again = import_employees(session, csv(*lines))
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(result.added) == n
    assert again.changed == ("P1",)
    # Loads + batched INSERTs/UPDATEs: nowhere near one statement per row.
    assert first < 60
    assert len(statements) < 10
    assert manager_of(session, "P2999") == "P299"
