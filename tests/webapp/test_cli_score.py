"""``feedback360 score``: CSV in, CSV out, clear errors with exit status 2."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from webapp.cli import main
from webapp.cli.score import command

HEADER = "rater_id,ratee_id,item_id,relationship,rating,competency\n"


@pytest.fixture
def ratings_csv(tmp_path):
    lines = [HEADER]
    n = 20
    for e in range(n):
        lines += [f"p{e},p{e},q{i},self,{1 + (e + i) % 5},C{i % 2}\n" for i in range(4)]
        for k in range(1, 6):
            rel = "manager" if k == 1 else "peer"
            lines += [
                f"p{(e + k) % n},p{e},q{i},{rel},{1 + (e * k + i) % 5},C{i % 2}\n" for i in range(4)
            ]
    path = tmp_path / "ratings.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_scores_a_file(tmp_path, ratings_csv):
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(command, [str(ratings_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Scored 20 ratees" in result.output
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0].keys() == {
        "ratee_id",
        "competency",
        "relationship",
        "n_raters",
        "raw_mean",
        "adjusted",
        "se",
        "ci_low",
        "ci_high",
        "suppressed",
    }
    assert {r["competency"] for r in rows} == {"C0", "C1", "ALL"}
    assert {r["relationship"] for r in rows} == {"self", "manager", "peer", "others"}
    manager = [r for r in rows if r["relationship"] == "manager"]
    assert all(r["suppressed"] == "1" and r["raw_mean"] == "" for r in manager)


def test_json_summary(tmp_path, ratings_csv):
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        command, [str(ratings_csv), "--out", str(out), "--json", "--method", "raw"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["method"] == "raw"
    assert summary["counts"]["ratings"] == 20 * 6 * 4
    assert "ALL" in summary["reliability"]


def test_bad_row_exits_2_with_line_number_and_no_traceback(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text(HEADER + "a,x,q1,peer,4,C1\na,y,q1,peer,9,C1\n", encoding="utf-8")
    result = CliRunner().invoke(command, [str(src), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "line 3" in result.output
    assert "outside the scale" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_missing_out_and_bad_options_are_usage_errors(tmp_path, ratings_csv):
    runner = CliRunner()
    assert runner.invoke(command, [str(ratings_csv)]).exit_code == 2
    result = runner.invoke(
        command,
        [
            str(ratings_csv),
            "--out",
            str(tmp_path / "o.csv"),
            "--scale-min",
            "5",
            "--scale-max",
            "1",
        ],
    )
    assert result.exit_code == 2
    assert "--scale-min" in result.output
    result = runner.invoke(
        command, [str(ratings_csv), "--out", str(tmp_path / "o.csv"), "--bank", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown question bank" in result.output


def test_registered_in_the_feedback360_group(tmp_path, ratings_csv):
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(main, ["score", str(ratings_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_out_may_not_be_the_ratings_file_itself(tmp_path, ratings_csv):
    before = ratings_csv.read_bytes()
    for out in (str(ratings_csv), str(tmp_path / "." / "ratings.csv")):
        result = CliRunner().invoke(command, [str(ratings_csv), "--out", out])
        assert result.exit_code == 2
        assert "is the ratings file itself" in result.output
    assert ratings_csv.read_bytes() == before
