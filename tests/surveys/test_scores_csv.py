"""ratings.csv reading (line-numbered errors) and scores.csv writing (DESIGN §8)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from scoring import RELATIONSHIPS, Ratings, score_ratings
from surveys import banks, scores_csv
from surveys.scores_csv import (
    SCORES_COLUMNS,
    RatingsFileError,
    read_ratings_csv,
    score_csv,
    scores_table,
    write_scores_csv,
)

HEADER = "rater_id,ratee_id,item_id,relationship,rating,competency\n"


def write(tmp_path, text, name="ratings.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def survey_csv(n=30, raters=5, items=4, seed=0):
    """A ring-design survey as CSV text with self ratings and a competency column."""
    rng = np.random.default_rng(seed)
    lines = [HEADER]
    for e in range(n):
        group = [(e, "self")] + [((e + k) % n, "peer") for k in range(1, raters + 1)]
        for r, rel in group:
            for i in range(items):
                v = int(rng.integers(1, 6))
                lines.append(f"p{r},p{e},q{i},{rel},{v},C{i % 2}\n")
    return "".join(lines)


def test_reads_a_good_file_with_bom_crlf_and_na(tmp_path):
    text = HEADER + "a,x,q1,peer,4,C1\nb,x,q1,Peer,NA,C1\nc,x,q1,manager,,C1\nx,x,q1,self,5,C1\n"
    path = write(tmp_path, "\ufeff" + text.replace("\n", "\r\n"))
    r = read_ratings_csv(path)
    assert r.n_ratings == 4
    assert r.rater_ids.tolist() == ["a", "b", "c", "x"]
    assert np.isnan(r.value[1])
    assert np.isnan(r.value[2])
    assert r.competency_ids == ("C1",)


def test_column_order_and_extra_columns_do_not_matter(tmp_path):
    text = "rating,relationship,note,item_id,ratee_id,rater_id\n3,peer,hi,q1,x,a\n"
    r = read_ratings_csv(write(tmp_path, text))
    assert r.value.tolist() == [3.0]
    assert r.competency_ids == ()


def test_reads_from_a_text_stream():
    r = read_ratings_csv(io.StringIO(HEADER + "a,x,q1,peer,4,C1\n"))
    assert r.n_ratings == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a,x,q1,peer,4,C1\nb,x,q1,boss,4,C1\n", "line 3: unknown relationship 'boss'"),
        ("a,x,q1,peer,4,C1\nb,x,q1,peer,four,C1\n", "line 3: rating 'four' is not a number"),
        ("a,x,q1,peer,4,C1\nb,x,q1,peer,7,C1\nc,x,q1,peer,0,C1\n", "lines 3, 4: rating(s) outside"),
        ("a,x,q1,peer,4,C1\nb,x,q1,peer,3,C1\na,x,q1,peer,2,C1\n", "lines 2, 4: 1 duplicate"),
        ("a,x,q1,peer,4,C1\nb,x,q1,peer\n", "line 3: expected 6 fields, found 4"),
        ("a,x,q1,peer,4,C1\nb,x,q1,peer,3,C2\n", "is given more than one competency"),
        ("a,x,q1,peer,4,C1\n,x,q1,peer,3,C1\n", "line 3: empty rater_id"),
        ("a,x,q1,peer,4,C1\na,x,q2,manager,3,C1\n", "line 3: rater 'a' has more than one"),
    ],
)
def test_bad_rows_are_reported_with_line_numbers(tmp_path, body, message):
    with pytest.raises(RatingsFileError) as info:
        read_ratings_csv(write(tmp_path, HEADER + body))
    assert message in str(info.value)


def test_every_kind_of_bad_row_is_reported_in_one_run(tmp_path):
    """Fixing one line per run is no way to clean a file: each kind of problem is listed,
    each with its lines."""
    body = (
        "a,x,q1,boss,4,C1\n"  # line 2
        "b,x,q1,peer,six,C1\n"  # line 3
        "c,x,q1,peer,9,C1\n"  # line 4
        ",x,q1,peer,3,C1\n"  # line 5
        "d,x,q1,peer,4,C1\n"  # line 6: fine
    )
    with pytest.raises(RatingsFileError) as info:
        read_ratings_csv(write(tmp_path, HEADER + body))
    assert str(info.value).splitlines() == [
        "line 5: empty rater_id",
        "line 2: unknown relationship 'boss' (expected one of " + ", ".join(RELATIONSHIPS) + ")",
        "line 3: rating 'six' is not a number (leave it empty or write NA for not applicable)",
        "line 4: rating(s) outside the scale 1–5: 9",
    ]
    assert info.value.lines == (2, 3, 4, 5)


def test_blank_lines_are_skipped_and_later_lines_still_counted(tmp_path):
    body = "a,x,q1,peer,4,C1\n\nb,x,q1,peer,x,C1\n"
    with pytest.raises(RatingsFileError, match="line 4: rating 'x'"):
        read_ratings_csv(write(tmp_path, HEADER + body))


def test_missing_columns_empty_file_and_header_only(tmp_path):
    with pytest.raises(RatingsFileError, match="line 1: missing column\\(s\\) rating"):
        read_ratings_csv(write(tmp_path, "rater_id,ratee_id,item_id,relationship\na,x,q,peer\n"))
    with pytest.raises(RatingsFileError, match="empty"):
        read_ratings_csv(write(tmp_path, ""))
    with pytest.raises(RatingsFileError, match="no ratings"):
        read_ratings_csv(write(tmp_path, HEADER))


def test_unknown_items_against_a_competency_map(tmp_path):
    path = write(tmp_path, HEADER + "a,x,q1,peer,4,C1\na,x,q9,peer,4,C1\n")
    with pytest.raises(RatingsFileError, match="line 3: 1 item\\(s\\) not in the question bank"):
        read_ratings_csv(path, item_competency={"q1": "lead"})
    r = read_ratings_csv(path, item_competency={"q1": "lead", "q9": "care"})
    assert r.competency_ids == ("lead", "care")  # the map wins over the column


def test_scale_is_configurable(tmp_path):
    path = write(tmp_path, HEADER + "a,x,q1,peer,7,C1\n")
    assert read_ratings_csv(path, scale=(1, 7)).value.tolist() == [7.0]


def _same(a, b):
    for name in ("rater", "ratee", "item", "relationship"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.value, b.value)
    assert a.rater_ids.tolist() == b.rater_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.competency_ids == b.competency_ids


def test_arrow_read_equals_csv_module_read(tmp_path, monkeypatch):
    text = survey_csv(n=40)
    path = write(tmp_path, text)
    fast = read_ratings_csv(path)
    assert scores_csv._parse_fast(path.read_bytes()) is not None  # really the Arrow path
    monkeypatch.setattr(scores_csv, "_parse_fast", lambda data: None)
    _same(fast, read_ratings_csv(path))
    bad = write(tmp_path, text + "p1,p2,q0,peer,9,C0\n", name="bad.csv")
    with pytest.raises(RatingsFileError, match=f"line {1 + 40 * 6 * 4 + 1}: rating"):
        read_ratings_csv(bad)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_count_blank_lines_with_either_line_end(tmp_path, newline):
    body = "a,x,q1,peer,4,C1\n\n\nb,x,q1,peer,3,C1\n\nc,x,q1,peer,7,C1\n"
    path = write(tmp_path, "\ufeff" + (HEADER + body).replace("\n", newline))
    with pytest.raises(RatingsFileError, match=r"^line 7: rating\(s\) outside"):
        read_ratings_csv(path)


def test_quoted_fields_with_commas_and_newlines(tmp_path):
    body = (
        'a,"Smith, J",q1,peer,4,C1\n'
        '"b\nsecond line",x,q1,peer,3,C1\n'
        'c,x,q1,peer,3,"C1"\n'
        "d,x,q1,peer,oops,C1\n"
    )
    path = write(tmp_path, HEADER + body)
    with pytest.raises(RatingsFileError, match=r"^line 6: rating 'oops' is not a number"):
        read_ratings_csv(path)
    r = read_ratings_csv(write(tmp_path, HEADER + body.replace("oops", "2"), name="ok.csv"))
    assert r.ratee_ids.tolist() == ["Smith, J", "x"]
    assert r.rater_ids.tolist() == ["a", "b\nsecond line", "c", "d"]
    assert r.competency_ids == ("C1",)


def test_wrong_field_counts_and_bad_utf8_in_a_large_file(tmp_path):
    text = survey_csv(n=200)
    n_lines = text.count("\n")
    path = write(tmp_path, text + "p1,p2,q0\n" + "p3,p2,q0,peer,3\n")
    with pytest.raises(RatingsFileError, match=f"^lines {n_lines + 1}, {n_lines + 2}: expected 6"):
        read_ratings_csv(path)
    path.write_bytes(text.encode() + b"p1,p\xff,q0,peer,3,C0\n")
    with pytest.raises(RatingsFileError, match=f"^line {n_lines + 1}: the file is not UTF-8 text"):
        read_ratings_csv(path)


def test_scores_csv_has_the_design_columns_and_all_others_rows(tmp_path):
    ratings = read_ratings_csv(write(tmp_path, survey_csv()))
    scores = score_ratings(ratings)
    out = tmp_path / "scores.csv"
    table = write_scores_csv(scores, out, min_group_size=3)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == SCORES_COLUMNS
    assert len(rows) == len(table)
    first = [r for r in rows if r["ratee_id"] == "p0"]
    assert [(r["competency"], r["relationship"]) for r in first] == [
        (c, g) for c in ("C0", "C1", "ALL") for g in ("self", "peer", "others")
    ]
    others = next(r for r in first if r["competency"] == "ALL" and r["relationship"] == "others")
    assert others["n_raters"] == "5"
    assert others["suppressed"] == "0"
    assert float(others["ci_low"]) < float(others["adjusted"]) < float(others["ci_high"])
    peer = next(r for r in first if r["competency"] == "ALL" and r["relationship"] == "peer")
    assert peer["adjusted"] == ""  # adjusted only on others rows
    self_row = next(r for r in first if r["relationship"] == "self")
    assert self_row["suppressed"] == "0"
    assert self_row["se"] == ""


def small_scores(counts, min_size=3):
    """Scores for one ratee with the given number of raters per relationship."""
    rows, k = [], 0
    for rel, n in counts.items():
        for _ in range(n):
            rows.append((f"r{k}", "x", "q", rel, float(1 + k % 5)))
            k += 1
    cols = list(zip(*rows, strict=True))
    with pytest.warns():  # a single ratee: raw fallback
        scores = score_ratings(Ratings.from_arrays(*cols))
    return scores_table(scores, min_group_size=min_size)


def test_small_groups_are_suppressed_and_blanked():
    table = small_scores({"self": 1, "manager": 1, "peer": 4, "direct_report": 2})
    got = dict(zip(table.relationship.tolist(), table.suppressed.tolist(), strict=True))
    assert got == {
        "self": False,
        "manager": True,
        "peer": False,
        "direct_report": True,
        "others": False,
    }
    assert np.isnan(table.raw_mean[table.suppressed]).all()


def test_complementary_suppression_blocks_differencing():
    # Manager alone is hidden; peers (3) and reports (3) shown would give it away via
    # others (7) minus peers minus reports, so one more group must be hidden.
    table = small_scores({"manager": 1, "peer": 3, "direct_report": 4})
    got = dict(zip(table.relationship.tolist(), table.suppressed.tolist(), strict=True))
    assert got["manager"]
    assert got["peer"]
    assert not got["direct_report"]
    assert not got["others"]


def test_suppression_falls_back_to_hiding_others():
    table = small_scores({"manager": 1, "peer": 3})
    got = dict(zip(table.relationship.tolist(), table.suppressed.tolist(), strict=True))
    assert got["manager"]
    assert got["peer"]
    assert not got["others"]
    table = small_scores({"manager": 1, "peer": 1})
    assert table.suppressed[table.relationship != "self"].all()


def test_score_csv_summary_is_json_ready(tmp_path):
    src = write(tmp_path, survey_csv())
    summary = score_csv(src, tmp_path / "s.csv", method="raw")
    text = json.dumps(summary, allow_nan=False)
    assert summary["method"] == "raw"
    assert summary["counts"]["ratees"] == 30
    assert set(summary["reliability"]) == {"C0", "C1", "ALL"}
    assert "model" not in json.loads(text)


def test_score_csv_with_a_bank(tmp_path):
    bank = banks.list_banks()[0]
    items = list(bank.item_competency)[:3]
    lines = [HEADER.replace(",competency", "")]
    for e in range(12):
        for k in range(1, 4):
            for i, item in enumerate(items):
                lines.append(f"p{(e + k) % 12},p{e},{item},peer,{1 + (e + k + i) % 5}\n")
    summary = score_csv(write(tmp_path, "".join(lines)), tmp_path / "s.csv", bank=bank.key)
    assert summary["counts"]["competencies"] == list(
        dict.fromkeys(bank.item_competency[i] for i in items)
    )
    with pytest.raises(RatingsFileError, match="unknown question bank"):
        score_csv(write(tmp_path, "".join(lines)), tmp_path / "s.csv", bank="no-such-bank")


def test_latin1_and_semicolon_files_say_what_to_do(tmp_path):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "a,Jürgen,q1,peer,4,C1\n").encode("latin-1"))
    with pytest.raises(RatingsFileError, match=r'line 2: the file is not UTF-8 .* "CSV UTF-8"'):
        read_ratings_csv(latin1)
    semicolons = write(tmp_path, HEADER.replace(",", ";") + "a;x;q1;peer;4;C1\n")
    with pytest.raises(RatingsFileError, match="separated by ';': use commas"):
        read_ratings_csv(semicolons)
