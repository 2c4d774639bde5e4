"""``feedback360 banks``: list, validate and preview question banks.

Plain click commands: nothing here needs the database or an application context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import click

from surveys.banks import (
    Bank,
    BankError,
    Item,
    OpenQuestion,
    UnknownBankError,
    bundled_bank_paths,
    get_bank,
    list_banks,
    load_bank,
)

command = click.Group(
    "banks",
    help="""Question banks: the competencies, items and scale a review cycle asks about.

    The bundled banks live in question_banks/*.yaml (one file per bank, named after its
    key). Use `validate` on your own bank files before using them in a cycle.
    """,
)


def _fail(error: Exception) -> NoReturn:
    click.echo(str(error), err=True)
    raise SystemExit(1)


def _summary(bank: Bank) -> dict[str, object]:
    return {
        "key": bank.key,
        "version": bank.version,
        "title": bank.title,
        "competencies": len(bank.competencies),
        "items": len(bank.items),
        "open_questions": len(bank.open_questions),
        "languages": list(bank.languages),
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """List the bundled question banks.

    Shows each bank's key (the name a cycle is created from), content version, title,
    number of competencies, items and open questions, and the languages it can be
    answered in.
    """
    try:
        banks = list_banks()
    except BankError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([_summary(bank) for bank in banks], indent=2, ensure_ascii=False))
        return
    rows = [["KEY", "VERSION", "TITLE", "COMPETENCIES", "ITEMS", "OPEN", "LANGUAGES"]]
    for bank in banks:
        rows.append(
            [
                bank.key,
                bank.version,
                bank.title,
                str(len(bank.competencies)),
                str(len(bank.items)),
                str(len(bank.open_questions)),
                ", ".join(bank.languages),
            ]
        )
    click.echo(_table(rows))


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    if not paths:
        return list(bundled_bank_paths().values())
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            out.append(path)
    return out


@command.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check bank files and report every problem in them.

    FILES are YAML bank files or directories of them; without FILES, the bundled banks are
    checked. Each problem is printed as FILE: PATH: PROBLEM, with the line where known.
    Exits with status 1 if any file is invalid.
    """
    paths = _expand(files)
    if not paths:
        click.echo("no bank files found", err=True)
        raise SystemExit(1)
    invalid = 0
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            bank = load_bank(path)
        except BankError as exc:
            invalid += 1
            click.echo(f"INVALID  {path}")
            click.echo(str(exc))
            continue
        if bank.key in seen:
            invalid += 1
            click.echo(f"INVALID  {path}")
            click.echo(f"{path}: key: bank key {bank.key!r} is also used by {seen[bank.key]}")
            continue
        seen[bank.key] = path
        click.echo(
            f"OK       {path}  ({bank.key} {bank.version}: {len(bank.competencies)} "
            f"competencies, {len(bank.items)} items, {', '.join(bank.languages)})"
        )
    if len(paths) > 1:
        click.echo(f"{len(paths)} files checked, {invalid} invalid")
    if invalid:
        raise SystemExit(1)


def _resolve(key_or_file: str) -> Bank:
    """A bundled bank by key, else a bank file by path."""
    if key_or_file in bundled_bank_paths():
        return get_bank(key_or_file)
    path = Path(key_or_file)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return load_bank(path)
    raise UnknownBankError(key_or_file, bundled_bank_paths())


def _wording(entry: Item | OpenQuestion, role: str | None, name: str, indent: str) -> list[str]:
    if role is not None:
        return [f"{indent}{entry.text(role, name)}"]
    return [
        f"{indent}self:   {entry.text('self', name)}",
        f"{indent}others: {entry.text('others', name)}",
    ]


@command.command("show")
@click.argument("key_or_file")
@click.option(
    "--lang",
    metavar="LANG",
    help="Show the texts in this language (e.g. de); missing texts fall back to the main one.",
)
@click.option(
    "--role",
    type=click.Choice(["self", "others"], case_sensitive=False),
    help="Show only the wording for this rater role (default: both).",
)
@click.option(
    "--name",
    default="{name}",
    show_default=True,
    help="Participant name to fill into the others-wording.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the bank snapshot as JSON.")
def show_command(
    key_or_file: str, lang: str | None, role: str | None, name: str, as_json: bool
) -> None:
    """Print a bank as raters will see it.

    KEY_OR_FILE is a bundled bank's key (see `banks list`) or the path of a bank file.
    Prints the scale, then every competency with its items (ids, wording, required
    marks), then the open questions.
    """
    try:
        bank = _resolve(key_or_file)
    except (BankError, UnknownBankError) as exc:
        _fail(exc)
    if lang:
        localized = bank.localized(lang)
        same_language = lang.lower().split("-")[0] == bank.language.lower().split("-")[0]
        if localized is bank and not same_language:
            click.echo(
                f"note: {bank.key} has no {lang!r} translation; showing {bank.language} "
                f"(available: {', '.join(bank.languages)})",
                err=True,
            )
        bank = localized
    if as_json:
        click.echo(json.dumps(bank.to_snapshot(), indent=2, ensure_ascii=False))
        return
    role = role.lower() if role else None

    lines = [
        f"{bank.title}  ({bank.key} {bank.version}, {bank.language})",
    ]
    if bank.description:
        lines.append(bank.description)
    lines.append("")
    points = [f"{value} = {label}" for value, label in bank.scale.labels.items()]
    lines.append(f"Scale: {'; '.join(points)}; N/A = {bank.scale.na_label}")
    if len(bank.languages) > 1:
        lines.append(f"Languages: {', '.join(bank.languages)}")
    for number, competency in enumerate(bank.competencies, start=1):
        lines += ["", f"{number}. {competency.title}  [{competency.id}]"]
        if competency.description:
            lines.append(f"   {competency.description}")
        for item in competency.items:
            required = "  (required)" if item.required else ""
            lines.append(f"   - {item.id}{required}")
            lines += _wording(item, role, name, "       ")
    if bank.open_questions:
        lines += ["", "Open questions"]
        for question in bank.open_questions:
            required = "  (required)" if question.required else ""
            lines.append(f"   - {question.id}{required}")
            lines += _wording(question, role, name, "       ")
    click.echo("\n".join(lines))
