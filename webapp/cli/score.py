"""``feedback360 score RATINGS.csv --out SCORES.csv``: offline scoring for analysts.

A thin wrapper over :func:`surveys.scores_csv.score_csv`; it needs no database or app
context. Bad input exits with status 2 and a message naming the offending lines.
Labels that a spreadsheet would run as formulas (``=…``, ``+…``, ``-…``, ``@…``) are
written with a leading ``'`` (:func:`surveys.csv_safety.safe_cell`, the same guard as the
console's exports).
"""

from __future__ import annotations

import json
from pathlib import Path

import click


class BadInput(click.ClickException):
    """Input the scorer cannot use; exit status 2 like a usage error, without the usage."""

    exit_code = 2


@click.command("score")
@click.argument(
    "ratings", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write scores.csv.",
)
@click.option("--bank", default=None, help="Question bank whose items map to competencies.")
@click.option(
    "--min-group-size",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Relationship groups with fewer raters are suppressed (self excepted).",
)
@click.option(
    "--method",
    type=click.Choice(["adjusted", "raw"]),
    default="adjusted",
    show_default=True,
    help="Others' score: corrected for rater leniency, or the plain mean.",
)
@click.option("--scale-min", default=1.0, show_default=True, type=float)
@click.option("--scale-max", default=5.0, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def command(
    ratings: Path,
    out: Path,
    bank: str | None,
    min_group_size: int,
    method: str,
    scale_min: float,
    scale_max: float,
    as_json: bool,
) -> None:
    """Score RATINGS.csv (rater_id,ratee_id,item_id,relationship,rating[,competency]).

    Writes one row per ratee × competency × relationship group, with ALL (every item)
    and others (everyone but self) rows, to --out.
    """
    from surveys.scores_csv import RatingsFileError, score_csv

    if not scale_min < scale_max:
        raise BadInput(f"--scale-min ({scale_min:g}) must be below --scale-max ({scale_max:g})")
    if out.resolve() == ratings.resolve():
        raise BadInput(f"--out {out} is the ratings file itself: choose another file")
    try:
        summary = score_csv(
            ratings,
            out,
            bank=bank,
            min_group_size=min_group_size,
            method=method,
            scale=(scale_min, scale_max),
        )
    except RatingsFileError as exc:  # one line per kind of problem, each with its lines
        raise BadInput("\n".join(f"{ratings}: {line}" for line in str(exc).splitlines())) from None
    except OSError as exc:
        raise BadInput(str(exc)) from None
    for note in summary["warnings"]:
        click.echo(f"warning: {note}", err=True)
    if as_json:
        click.echo(json.dumps(summary, indent=2, allow_nan=False))
        return
    counts = summary["counts"]
    click.echo(
        f"Scored {counts['ratees']:,} ratees from {counts['ratings']:,} ratings by "
        f"{counts['raters']:,} raters (method: {summary['method']}).\n"
        f"Wrote {counts['rows_written']:,} rows to {out} "
        f"({counts['rows_suppressed']:,} suppressed below {min_group_size} raters)."
    )


if __name__ == "__main__":  # python -m webapp.cli.score …
    command()
