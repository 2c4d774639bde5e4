"""Mistakes in the setup reach a CLI user as one ``Error:`` line and exit 1, never a
traceback: a bad setting, a database without tables, a missing driver, an id beyond any
row."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from webapp.cli import main


def run(tmp_path, args, **env):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "QUEUE_URL": "memory://", **env}
    return CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_FORMAT": "xml"}, "Error: LOG_FORMAT must be one of json, text, not 'xml'"),
        ({"DATABASE_URL": "mysql://db/x"}, "Error: DATABASE_URL: No module named"),
        ({}, "Error: the database has no tables yet"),
    ],
)
def test_setup_mistakes_are_one_line(tmp_path, env, message):
    result = run(tmp_path, ["cycles", "list"], **env)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, nothing raised


def test_an_id_beyond_any_row_is_an_error_not_a_crash(tmp_path):
    assert run(tmp_path, ["db", "upgrade"]).exit_code == 0
    result = run(tmp_path, ["cycles", "status", "99999999999999999999"])
    assert result.exit_code == 1
    assert "Error: a number given is out of range" in result.output
