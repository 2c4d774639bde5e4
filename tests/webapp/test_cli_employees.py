"""``feedback360 employees import|list``: thin wrappers over surveys.employees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from surveys.models import Employee
from webapp.extensions import db

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "employees.csv"
HEADER = "employee_id,name,email,manager_id,department"


@pytest.fixture
def write_csv(tmp_path):
    def write(*lines: str, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_bytes("\n".join([HEADER, *lines, ""]).encode())
        return path

    return write


def stored(app) -> dict[str, tuple[str, str | None]]:
    """external id -> (name, manager's external id), read in a fresh session."""
    with app.app_context():
        return {
            e.external_id: (e.name, e.manager.external_id if e.manager else None)
            for e in db.session.scalars(sa.select(Employee))
        }


def test_import_commits_and_summarises(app, runner):
    result = runner.invoke(args=["employees", "import", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{EXAMPLE}: 12 added, 0 changed, 0 unchanged.\n"
    people = stored(app)
    assert len(people) == 12
    assert people["E012"] == ("Lucía Fernández, Jr.", "E010")


def test_reimport_reports_unchanged_and_changes(app, runner, write_csv):
    runner.invoke(args=["employees", "import", str(EXAMPLE)])
    again = runner.invoke(args=["employees", "import", str(EXAMPLE)])
    assert again.stdout == f"{EXAMPLE}: 0 added, 0 changed, 12 unchanged.\n"

    path = write_csv("E002,Bruno Silva,bruno.silva@example.com,E009,Sales")
    result = runner.invoke(args=["employees", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}: 0 added, 1 changed, 0 unchanged.",
        "  E002 Bruno Silva: manager_id 'E001' → 'E009'; department 'Engineering' → 'Sales'",
        "11 active employee(s) in the database are not in this file; they were left as they are.",
    ]
    assert stored(app)["E002"] == ("Bruno Silva", "E009")


def test_dry_run_writes_nothing(app, runner):
    result = runner.invoke(args=["employees", "import", "--dry-run", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{EXAMPLE}: 12 would be added, 0 would be changed, 0 unchanged.",
        "Dry run: nothing was written.",
    ]
    assert stored(app) == {}


def test_errors_go_to_stderr_with_line_numbers_and_exit_1(app, runner, write_csv):
    runner.invoke(args=["employees", "import", str(EXAMPLE)])
    path = write_csv(
        "E001,Amara Okafor,amara.okafor@example.com,E003,Engineering",  # closes a cycle
        "N1,New Person,new@example.com,E001,Sales",  # fine on its own
        "N2,Broken,broken@,E001,Sales",
        "N3,Lost,lost@example.com,NOBODY,Sales",
        "N1,Again,again@example.com,,Sales",
    )
    result = runner.invoke(args=["employees", "import", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}, line 2 (E001): manager cycle: E001 (Amara Okafor) → E003 (Chen Wei)"
        " → E002 (Bruno Silva) → E001 (Amara Okafor)",
        f"{path}, line 4 (N2): email 'broken@' is not a valid address",
        f"{path}, line 5 (N3): manager_id 'NOBODY' is neither in the rows nor in the database",
        f"{path}, line 6 (N1): employee_id 'N1' is on line 3 and line 6",
        "4 errors; nothing was imported.",
    ]
    people = stored(app)
    assert len(people) == 12
    assert people["E001"] == ("Amara Okafor", None)


def test_file_level_error(app, runner, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\nE1,Ren\xe9e,renee@example.com,,\n".encode("latin-1"))
    result = runner.invoke(args=["employees", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}, line 2: not UTF-8 (byte 0xe9 at column 7)" in result.stderr
    assert stored(app) == {}


def test_json_output(app, runner, write_csv):
    result = runner.invoke(args=["employees", "import", "--json", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["dry_run"] is False
    assert len(report["added"]) == 12

    path = write_csv("A1,Ann,ann@example.com,A1,")
    result = runner.invoke(args=["employees", "import", "--json", str(path)])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "source": str(path),
        "ok": False,
        "errors": [{"line": 2, "employee_id": "A1", "message": "is their own manager"}],
    }


def test_import_from_standard_input(app, runner):
    result = runner.invoke(args=["employees", "import", "-"], input=EXAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<stdin>: 12 added")


def test_empty_file(app, runner, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = runner.invoke(args=["employees", "import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{path}: the file is empty; expected a header line: "
        "employee_id,name,email,manager_id[,department]"
    )


def test_missing_file_is_a_usage_error(app, runner, tmp_path):
    result = runner.invoke(args=["employees", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "No such file or directory" in result.stderr


def test_list_table_and_department_filter(app, runner):
    runner.invoke(args=["employees", "import", str(EXAMPLE)])
    result = runner.invoke(args=["employees", "list", "--department", "sales"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "EMAIL", "MANAGER", "DEPARTMENT", "ACTIVE"]
    expected = ["E009", "Ingrid", "Larsen", "ingrid.larsen@example.com", "E001", "Sales", "yes"]
    assert lines[1].split() == expected
    assert [line.split()[0] for line in lines[1:5]] == ["E009", "E010", "E011", "E012"]
    assert lines[-1] == "4 employee(s)."


def test_list_json(app, runner):
    runner.invoke(args=["employees", "import", str(EXAMPLE)])
    result = runner.invoke(args=["employees", "list", "--json"])
    records = json.loads(result.stdout)
    assert len(records) == 12
    assert records[0] == {
        "employee_id": "E001",
        "name": "Amara Okafor",
        "email": "amara.okafor@example.com",
        "manager_id": None,
        "department": "Engineering",
        "active": True,
    }


def test_list_when_empty(app, runner):
    result = runner.invoke(args=["employees", "list"])
    assert result.exit_code == 0
    assert "No employees. Import some" in result.stdout


@pytest.mark.parametrize("args", [["employees"], ["employees", "import"]])
def test_help_shows_the_csv_format(runner, args):
    result = runner.invoke(args=[*args, "--help"])
    assert result.exit_code == 0
    assert "employee_id,name,email,manager_id,department" in result.stdout
    assert "docs/examples/employees.csv" in result.stdout
