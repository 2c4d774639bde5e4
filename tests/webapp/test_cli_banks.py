"""``feedback360 banks list|validate|show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import webapp.cli
from webapp.cli.banks import command

GOOD = """\
schema_version: 1
key: mini
version: "1"
title: Mini bank
language: en
scale:
  labels: {1: Never, 2: Sometimes, 3: Often}
  na_label: Not able to judge
competencies:
  - id: listening
    title: Listening
    items:
      - id: listening.attentive
        self: I listen attentively.
        others: "{name} listens attentively."
        required: true
open_questions:
  - id: strengths
    self: What do you do well?
    others: What does {name} do well?
"""


@pytest.fixture
def banks():
    """Run ``banks …`` without an application: these commands need none."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(command, list(args))

    return invoke


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(GOOD, encoding="utf-8")
    return path


@pytest.fixture
def bad(tmp_path) -> Path:
    path = tmp_path / "bad.yaml"
    text = GOOD.replace("schema_version: 1\n", "").replace("{name} listens", "{nom} listens")
    path.write_text(text + "colour: blue\n", encoding="utf-8")
    return path


def test_registered_in_the_feedback360_command():
    result = CliRunner().invoke(webapp.cli.main, ["banks", "list"])
    assert result.exit_code == 0, result.output
    assert "leadership" in result.output


def test_every_subcommand_has_help(banks):
    result = banks("--help")
    assert result.exit_code == 0
    for name in ("list", "validate", "show"):
        assert name in result.output
        sub = banks(name, "--help")
        assert sub.exit_code == 0
        assert "Usage:" in sub.output
        assert len(sub.output.splitlines()) > 5


def test_list_prints_a_table(banks):
    result = banks("list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "KEY",
        "VERSION",
        "TITLE",
        "COMPETENCIES",
        "ITEMS",
        "OPEN",
        "LANGUAGES",
    ]
    assert [row.split()[0] for row in rows] == ["individual_contributor", "leadership", "pulse"]
    assert "Leadership 360" in rows[1]
    assert rows[1].endswith("en, de, fr")


def test_list_json(banks):
    result = banks("list", "--json")
    assert result.exit_code == 0
    data = {entry["key"]: entry for entry in json.loads(result.output)}
    assert data["leadership"]["items"] == 45
    assert data["leadership"]["competencies"] == 9
    assert data["leadership"]["languages"] == ["en", "de", "fr"]
    assert data["pulse"]["items"] <= 12


def test_validate_without_files_checks_the_bundled_banks(banks):
    result = banks("validate")
    assert result.exit_code == 0, result.output
    assert result.output.count("OK ") == 3
    assert "3 files checked, 0 invalid" in result.output


def test_validate_reports_every_error_and_fails(banks, good, bad, tmp_path):
    missing = tmp_path / "missing.yaml"
    result = banks("validate", str(good), str(bad), str(missing))
    assert result.exit_code == 1
    out = result.output
    assert f"OK       {good}" in out
    assert f"{bad}: schema_version: is missing" in out
    assert f"{bad}: competencies[0].items[0].others: unknown placeholder {{nom}}" in out
    assert f"{bad}: colour: unknown key" in out
    assert f"{missing}: file not found" in out
    assert "3 files checked, 2 invalid" in out


def test_validate_a_directory_and_duplicate_keys(banks, good, tmp_path):
    (tmp_path / "copy.yaml").write_text(GOOD, encoding="utf-8")
    result = banks("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "bank key 'mini' is also used by" in result.output


def test_validate_unknown_schema_version(banks, tmp_path):
    path = tmp_path / "future.yaml"
    path.write_text(GOOD.replace("schema_version: 1", "schema_version: 3"), encoding="utf-8")
    result = banks("validate", str(path))
    assert result.exit_code == 1
    assert f"{path}: schema_version: unsupported schema_version 3; supported versions: 1" in (
        result.output
    )


def test_show_both_wordings(banks):
    result = banks("show", "pulse")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Pulse check" in out
    assert "1 = Strongly disagree" in out
    assert "N/A = Not able to judge" in out
    assert "communication.listens  (required)" in out
    assert "self:   I listen to understand before I respond." in out
    assert "others: {name} listens to understand before responding." in out
    assert "Open questions" in out


def test_show_one_role_in_a_language_with_a_name(banks):
    result = banks("show", "leadership", "--lang", "de", "--role", "others", "--name", "Ana")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Führungs-360" in out
    assert "Ana setzt klare Prioritäten für das Team." in out
    assert "Was kann Ana als Führungskraft besonders gut?" in out
    assert "self:" not in out


def test_show_missing_language_falls_back_with_a_note(banks):
    result = banks("show", "pulse", "--lang", "it", "--role", "self")
    assert result.exit_code == 0
    assert "no 'it' translation; showing en" in result.stderr
    assert "I ask for feedback on my work." in result.stdout


def test_show_a_file_and_json(banks, good):
    result = banks("show", str(good), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["key"] == "mini"


def test_show_unknown_key_lists_the_available_ones(banks):
    result = banks("show", "leadrship")
    assert result.exit_code == 1
    assert "unknown question bank 'leadrship'" in result.stderr
    assert "individual_contributor, leadership, pulse" in result.stderr


def test_show_invalid_file_prints_the_errors(banks, bad):
    result = banks("show", str(bad))
    assert result.exit_code == 1
    assert f"{bad}: schema_version: is missing" in result.stderr
