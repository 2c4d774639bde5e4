"""ratings.csv in, scores.csv out (DESIGN §8): the file side of ``feedback360 score``.

``ratings.csv``: ``rater_id,ratee_id,item_id,relationship,rating[,competency]``; a rating
that is empty, ``NA`` or ``N/A`` means "not applicable". Items map to competencies through
a question bank (``bank``) or the optional ``competency`` column; with neither, only the
``ALL`` score is produced. A UTF-8 byte-order mark and CRLF line ends are accepted.

``scores.csv``: one row per ratee × competency × relationship group with raters, plus an
``others`` row for every ratee and competency::

    ratee_id,competency,relationship,n_raters,raw_mean,adjusted,se,ci_low,ci_high,suppressed

``se``/``ci_low``/``ci_high`` describe the row's headline score: the adjusted score on
``others`` rows when the method is ``adjusted``, otherwise the raw mean (rater as unit).
``adjusted`` is empty except on ``others`` rows. A group with fewer than
``min_group_size`` raters (self excepted) is suppressed — ``suppressed=1`` and every number
blanked — and enough further groups are suppressed that no group can be recovered by
subtracting the shown groups from ``others``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import itertools
import math
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from numpy.typing import NDArray

from scoring import (
    GROUPS,
    RELATIONSHIPS,
    InvalidRatingsError,
    Ratings,
    Scores,
    score_ratings,
)
from scoring.ratings import OTHERS, parse_relationship
from surveys.csv_safety import safe_cell

__all__ = [
    "REQUIRED_COLUMNS",
    "SCORES_COLUMNS",
    "RatingsFileError",
    "ScoresTable",
    "read_ratings_csv",
    "score_csv",
    "scores_table",
    "write_scores_csv",
    "write_scores_table",
]

REQUIRED_COLUMNS = ("rater_id", "ratee_id", "item_id", "relationship", "rating")
SCORES_COLUMNS = (
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
)
_NA = {"", "NA", "N/A", "NAN"}
_CHUNK = 200_000


class RatingsFileError(ValueError):
    """A ratings file that cannot be scored; the message names the line numbers."""

    def __init__(self, message: str, lines: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.lines = lines


def _lines_text(lines: NDArray[np.int64] | list[int]) -> str:
    shown = [int(x) for x in list(lines)[:5]]
    more = " …" if len(lines) > 5 else ""
    word = "line" if len(shown) == 1 else "lines"
    return f"{word} {', '.join(map(str, shown))}{more}"


def _fail(message: str, lines: NDArray[np.int64] | list[int]) -> RatingsFileError:
    return RatingsFileError(f"{_lines_text(lines)}: {message}", tuple(int(x) for x in lines[:5]))


def _codes_lines(codes: NDArray[np.int32], bad: list[int], lines: _LineMap) -> Any:
    return lines[np.flatnonzero(np.isin(codes, bad))[:5]]


def _clean(labels: list[str], codes: NDArray[np.int32]) -> tuple[list[str], NDArray[np.int32]]:
    """Strip surrounding spaces from labels, merging labels that become equal."""
    stripped = [x.strip() for x in labels]
    if stripped == labels:
        return labels, codes
    index: dict[str, int] = {}
    remap = np.array([index.setdefault(x, len(index)) for x in stripped], dtype=np.int32)
    return list(index), remap[codes]


@contextlib.contextmanager
def _gc_paused() -> Any:
    """Pause the cyclic garbage collector while millions of acyclic rows are built.

    Row lists and strings cannot form cycles, but their sheer number triggers a full
    collection again and again; pausing it makes parsing about three times faster.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _header(reader: Any) -> tuple[list[int], int]:
    """Positions of the wanted columns (competency last, if present) and field count."""
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RatingsFileError(f"line 1: cannot read the header ({exc})", (1,)) from None
    if header is None or not any(h.strip() for h in header):
        raise RatingsFileError("the file is empty (no header line)")
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        separator = next((c for c in ";\t|" if len(header) == 1 and c in header[0]), None)
        hint = f"; the fields look separated by {separator!r}: use commas" if separator else ""
        raise RatingsFileError(
            f"line 1: missing column(s) {', '.join(missing)} (the header must name "
            f"{', '.join(REQUIRED_COLUMNS)}[, competency]){hint}",
            (1,),
        )
    dupes = sorted({n for n in names if names.count(n) > 1 and n})
    if dupes:
        raise RatingsFileError(f"line 1: duplicate column(s) {', '.join(dupes)}", (1,))
    wanted = [*REQUIRED_COLUMNS, *(["competency"] if "competency" in names else [])]
    return [names.index(c) for c in wanted], len(names)


Parsed = tuple[list[NDArray[np.int32]], list[list[str]], "_LineMap"]
Rows = tuple[list[NDArray[np.int32]], list[list[str]], NDArray[np.int64]]


def _parse_rows(reader: Any, positions: list[int], n_fields: int, line: int) -> Rows:
    """Factorize the wanted columns of every row; ``line`` = last line already read.

    Returns per column the codes and the labels (in order of first appearance), and
    the line number of every row. One record per line is assumed (no quoted newlines).
    """
    tables: list[defaultdict[str, int]] = [
        defaultdict(itertools.count().__next__) for _ in positions
    ]
    parts: list[list[NDArray[np.int32]]] = [[] for _ in positions]
    line_parts: list[NDArray[np.int64]] = []
    while True:
        try:
            chunk = list(itertools.islice(reader, _CHUNK))
        except (csv.Error, UnicodeDecodeError) as exc:
            at = line + 1
            raise RatingsFileError(f"line {at}: {exc}", (at,)) from None
        if not chunk:
            break
        lines = np.arange(line + 1, line + 1 + len(chunk), dtype=np.int64)
        line += len(chunk)
        lengths = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
        if (lengths != n_fields).any():
            blank = lengths == 0
            wrong = ~blank & (lengths != n_fields)
            if wrong.any():
                first = int(np.flatnonzero(wrong)[0])
                raise _fail(
                    f"expected {n_fields} fields, found {int(lengths[first])}", lines[wrong]
                )
            chunk = [row for row in chunk if row]
            lines = lines[~blank]
            if not chunk:
                continue
        columns = list(zip(*chunk, strict=True))
        for k, pos in enumerate(positions):
            parts[k].append(
                np.fromiter(
                    map(tables[k].__getitem__, columns[pos]), dtype=np.int32, count=len(chunk)
                )
            )
        line_parts.append(lines)
    if not line_parts:
        return (
            [np.zeros(0, np.int32) for _ in positions],
            [[] for _ in positions],
            np.zeros(0, np.int64),
        )
    return (
        [np.concatenate(p) for p in parts],
        [list(t) for t in tables],
        np.concatenate(line_parts),
    )


def read_ratings_csv(
    source: str | Path | IO[str],
    *,
    item_competency: Mapping[str, str] | None = None,
    scale: tuple[float, float] = (1.0, 5.0),
) -> Ratings:
    """Read and validate ``ratings.csv``.

    Parameters
    ----------
    source : path or text file
    item_competency : mapping, optional
        Item id → competency id (from a question bank); it takes precedence over a
        ``competency`` column, and every item must be in it.
    scale : (float, float)
        Lowest and highest allowed rating.

    Raises
    ------
    RatingsFileError
        With line numbers: missing columns, empty file, wrong number of fields, empty
        ids, unknown relationship, non-numeric or out-of-scale rating, unknown item,
        an item in two competencies, duplicate (rater, ratee, item), or a rater with two
        relationships to the same ratee.

    Notes
    -----
    The file is parsed by Arrow's multithreaded C++ CSV reader (``pyarrow.csv``), which
    also factorizes the id columns (dictionary encoding); validation is vectorised over
    the distinct labels. Line numbers are needed only for errors, so the row → line map
    is built only then: from the newline positions when the file holds no quote
    character, otherwise by a :mod:`csv` pass that notes the physical line on which
    each record starts (quoted fields may span lines). Input Arrow rejects (a row with
    the wrong number of fields, invalid UTF-8, a broken quote) is re-read by the
    sequential :mod:`csv` reader, which names the offending lines.
    """
    if isinstance(source, str | Path):
        data = Path(source).read_bytes()
    else:
        data = source.read().encode("utf-8", "surrogatepass")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    parsed = _parse_fast(data)
    if parsed is None:
        with _gc_paused():
            parsed = _parse_slow(data)
    return _finish(*parsed, item_competency, scale)


def _parse_slow(data: bytes) -> Parsed:
    """Sequential :mod:`csv` parse (records numbered as lines); exact error messages."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = 1 + data.count(b"\n", 0, exc.start)
        raise RatingsFileError(
            f"line {at}: the file is not UTF-8 text (byte {data[exc.start]:#04x}); save it as"
            ' "CSV UTF-8" and try again',
            (at,),
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    positions, n_fields = _header(reader)
    codes, labels, lines = _parse_rows(reader, positions, n_fields, 1)
    return codes, labels, _LineMap.of_array(lines)


def _parse_fast(data: bytes) -> Parsed | None:
    """Arrow parse; ``None`` when Arrow rejects the input (the slow path explains why)."""
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    if b'"' in first:  # a quoted header may span lines: leave it to the csv module
        return None
    try:
        header_text = first.decode("utf-8")
    except UnicodeDecodeError:
        return None
    positions, n_fields = _header(csv.reader([header_text.rstrip("\r")]))
    if end < 0 or not data[end + 1 :].strip(b"\r\n"):
        return (
            [np.zeros(0, np.int32) for _ in positions],
            [[] for _ in positions],
            _LineMap(lambda: np.zeros(0, np.int64), 0),
        )
    quoted = b'"' in data
    names = [f"f{i}" for i in range(n_fields)]
    wanted = [names[p] for p in positions]
    text_type = pa.dictionary(pa.int32(), pa.string())
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(data)[end + 1 :]),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=4 << 20),
            parse_options=pa_csv.ParseOptions(newlines_in_values=quoted),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, text_type),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    table = table.unify_dictionaries()
    codes: list[NDArray[np.int32]] = []
    labels: list[list[str]] = []
    for name in wanted:
        column = table.column(name)
        chunks = column.chunks
        if chunks:
            dictionary = chunks[0].dictionary
            indices = pa.concat_arrays([c.indices for c in chunks])
            codes.append(indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False))
            labels.append(dictionary.to_pylist())
        else:
            codes.append(np.zeros(0, np.int32))
            labels.append([])
    n_rows = table.num_rows
    return codes, labels, _LineMap(lambda: _record_lines(data, quoted, n_rows), n_rows)


class _LineMap:
    """Row index → line number, computed on first use (only errors need it)."""

    def __init__(self, build: Callable[[], NDArray[np.int64]], size: int) -> None:
        self._build = build
        self._lines: NDArray[np.int64] | None = None
        self.size = size

    @classmethod
    def of_array(cls, lines: NDArray[np.int64]) -> _LineMap:
        return cls(lambda: lines, int(lines.size))

    def __getitem__(self, rows: Any) -> NDArray[np.int64]:
        if self._lines is None:
            self._lines = self._build()
        return self._lines[rows]


def _record_lines(data: bytes, quoted: bool, n_rows: int) -> NDArray[np.int64]:
    """Line on which each non-blank record after the header starts (``data`` sans BOM)."""
    lone_cr = b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
    if not quoted and not lone_cr:
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(raw == 10)
        if not data.endswith(b"\n"):
            ends = np.append(ends, len(data))
        starts = np.concatenate([[0], ends[:-1] + 1])
        length = ends - starts
        has_cr = np.zeros(length.size, dtype=bool)
        nonzero = length > 0
        has_cr[nonzero] = raw[ends[nonzero] - 1] == 13
        blank = (length == 0) | ((length == 1) & has_cr)
        lines = np.flatnonzero(~blank) + 1
    else:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        found: list[int] = []
        start = 1
        for row in reader:
            if row:
                found.append(start)
            start = reader.line_num + 1
        lines = np.asarray(found, dtype=np.int64)
    lines = lines[1:]  # the header
    if lines.size != n_rows:  # the parsers disagree on records: do not guess
        raise RuntimeError("ratings.csv: cannot map rows to line numbers")
    return lines


def _finish(
    codes: list[NDArray[np.int32]],
    labels: list[list[str]],
    lines_all: _LineMap,
    item_competency: Mapping[str, str] | None,
    scale: tuple[float, float],
) -> Ratings:
    """Validate parsed columns and build the ``Ratings``; errors name their lines."""
    if lines_all.size == 0:
        raise RatingsFileError("the file has a header but no ratings")
    # Every kind of problem is collected before anything stops, so one run lists them all.
    problems: list[RatingsFileError] = []
    for k, name in enumerate(("rater_id", "ratee_id", "item_id")):
        labels[k], codes[k] = _clean(labels[k], codes[k])
        empty = [i for i, x in enumerate(labels[k]) if not x]
        if empty:
            problems.append(_fail(f"empty {name}", _codes_lines(codes[k], empty, lines_all)))

    rel_lookup = np.array([parse_relationship(x) for x in labels[3]], dtype=np.int64)
    bad = [i for i, c in enumerate(rel_lookup) if c < 0]
    if bad:
        problems.append(
            _fail(
                f"unknown relationship {', '.join(repr(labels[3][i]) for i in bad[:5])}"
                f" (expected one of {', '.join(RELATIONSHIPS)})",
                _codes_lines(codes[3], bad, lines_all),
            )
        )
    relationship = rel_lookup[codes[3]].astype(np.int8)

    value_lookup = np.empty(len(labels[4]))
    not_numbers = []
    for i, text in enumerate(labels[4]):
        t = text.strip()
        if t.upper() in _NA:
            value_lookup[i] = np.nan
            continue
        try:
            value_lookup[i] = float(t)
        except ValueError:
            value_lookup[i] = np.nan
            not_numbers.append(i)
    if not_numbers:
        shown = ", ".join(repr(labels[4][i]) for i in not_numbers[:5])
        problems.append(
            _fail(
                f"rating {shown} is not a number (leave it empty or write NA for not applicable)",
                _codes_lines(codes[4], not_numbers, lines_all),
            )
        )
    lo, hi = float(scale[0]), float(scale[1])
    out = [i for i, x in enumerate(value_lookup) if not np.isnan(x) and not lo <= x <= hi]
    if out:
        shown = ", ".join(labels[4][i].strip() for i in out[:5])
        problems.append(
            _fail(
                f"rating(s) outside the scale {lo:g}–{hi:g}: {shown}",
                _codes_lines(codes[4], out, lines_all),
            )
        )
    if item_competency is not None:
        unknown = [i for i, x in enumerate(labels[2]) if x and x not in item_competency]
        if unknown:
            names_ = ", ".join(repr(labels[2][i]) for i in unknown[:5])
            problems.append(
                _fail(
                    f"{len(unknown)} item(s) not in the question bank: {names_}",
                    _codes_lines(codes[2], unknown, lines_all),
                )
            )
    if problems:
        lines = sorted({line for p in problems for line in p.lines})
        raise RatingsFileError("\n".join(str(p) for p in problems), tuple(lines))
    values = value_lookup[codes[4]]

    item_labels = labels[2]
    if item_competency is not None:
        comp_labels = [str(item_competency[x]) for x in item_labels]
        comp_ids = list(dict.fromkeys(comp_labels))
        index = {c: k for k, c in enumerate(comp_ids)}
        comp_of_item = np.array([index[c] for c in comp_labels], dtype=np.int32)
    elif len(codes) > 5:
        labels[5], codes[5] = _clean(labels[5], codes[5])
        empty = [i for i, x in enumerate(labels[5]) if not x]
        if empty:
            raise _fail("empty competency", _codes_lines(codes[5], empty, lines_all))
        pairs = np.unique(codes[2].astype(np.int64) * len(labels[5]) + codes[5])
        item_of, comp_of = pairs // len(labels[5]), pairs % len(labels[5])
        clash = np.flatnonzero(np.bincount(item_of, minlength=len(item_labels)) > 1)
        if clash.size:
            i = int(clash[0])
            raise _fail(
                f"item {item_labels[i]!r} is given more than one competency",
                lines_all[codes[2] == i],
            )
        comp_of_item = np.empty(len(item_labels), dtype=np.int32)
        comp_of_item[item_of] = comp_of
        comp_ids = labels[5]
    else:
        comp_of_item = None  # type: ignore[assignment]
        comp_ids = []

    try:
        return Ratings.from_codes(
            codes[0],
            codes[1],
            codes[2],
            relationship,
            values,
            rater_ids=np.array(labels[0], dtype=object),
            ratee_ids=np.array(labels[1], dtype=object),
            item_ids=np.array(item_labels, dtype=object),
            item_competency=comp_of_item,
            competency_ids=comp_ids,
            scale=(lo, hi),
        )
    except InvalidRatingsError as exc:
        raise _fail(exc.message, lines_all[list(exc.rows)]) from None


# ---- writing -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScoresTable:
    """scores.csv as columns (flattened ratee × competency × group, rows kept only).

    A suppressed row's figures are NaN (written blank); its ``n_raters`` is not written.
    """

    ratee_id: NDArray[Any]
    competency: NDArray[Any]
    relationship: NDArray[Any]
    n_raters: NDArray[np.int64]
    raw_mean: NDArray[np.float64]
    adjusted: NDArray[np.float64]
    se: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    suppressed: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ratee_id.size)


def _suppress(n: NDArray[np.int64], min_group_size: int) -> NDArray[np.bool_]:
    """Primary and complementary suppression per ratee × competency (groups last axis)."""
    sub = np.zeros(n.shape, dtype=bool)
    sub[..., 1:] = n[..., 1:] < min_group_size  # self (0) is never suppressed
    parts = n[..., 1:OTHERS]  # manager, peer, direct_report, other: they sum to others
    for _ in range(OTHERS):
        hidden = np.where(sub[..., 1:OTHERS] & (parts > 0), parts, 0).sum(axis=-1)
        leak = ~sub[..., OTHERS] & (hidden > 0) & (hidden < min_group_size)
        if not leak.any():
            break
        shown = np.where(~sub[..., 1:OTHERS] & (parts > 0), parts, np.iinfo(np.int64).max)
        smallest = shown.argmin(axis=-1)
        has_shown = shown.min(axis=-1) < np.iinfo(np.int64).max
        idx = np.nonzero(leak & has_shown)
        sub[(*idx, smallest[idx] + 1)] = True
        only = leak & ~has_shown
        sub[..., OTHERS] |= only
    return sub


def scores_table(scores: Scores, *, min_group_size: int = 3) -> ScoresTable:
    """The rows of scores.csv (see the module docstring) as arrays."""
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be at least 1, got {min_group_size}")
    agg = scores.aggregates
    n = agg.n_raters
    keep = n > 0
    keep[..., OTHERS] = True
    adjusted = np.full(n.shape, np.nan)
    se, lo, hi = agg.se.copy(), agg.ci_low.copy(), agg.ci_high.copy()
    se[..., OTHERS] = scores.se
    lo[..., OTHERS] = scores.ci_low
    hi[..., OTHERS] = scores.ci_high
    if scores.method == "adjusted":
        adjusted[..., OTHERS] = scores.score
    suppressed = _suppress(n, min_group_size)
    flat = keep.ravel()
    e_idx, c_idx, g_idx = (a.ravel()[flat] for a in np.indices(n.shape))
    sup = suppressed.ravel()[flat]

    def col(a: NDArray[np.float64]) -> NDArray[np.float64]:
        out = a.ravel()[flat].astype(np.float64)
        out[sup] = np.nan
        return out

    return ScoresTable(
        ratee_id=np.asarray(scores.ratee_ids, dtype=object)[e_idx],
        competency=np.asarray(scores.competency_ids, dtype=object)[c_idx],
        relationship=np.asarray(GROUPS, dtype=object)[g_idx],
        n_raters=n.ravel()[flat],
        raw_mean=col(agg.mean),
        adjusted=col(adjusted),
        se=col(se),
        ci_low=col(lo),
        ci_high=col(hi),
        suppressed=sup,
    )


def _fmt(a: NDArray[np.float64], digits: int = 4) -> list[str]:
    spec = f"{{:.{digits}f}}"
    return ["" if x != x else spec.format(x) for x in a.tolist()]


def write_scores_csv(
    scores: Scores, target: str | Path | IO[str], *, min_group_size: int = 3
) -> ScoresTable:
    """Write scores.csv (DESIGN §8 columns) and return the table written."""
    table = scores_table(scores, min_group_size=min_group_size)
    write_scores_table(table, target)
    return table


def write_scores_table(
    table: ScoresTable, target: str | Path | IO[str], *, header: bool = True
) -> None:
    """Write rows already made (e.g. HR's export of report figures) as scores.csv;
    ``header=False`` writes the rows alone (a later piece of a file being streamed)."""
    with _gc_paused():
        _write(table, target, header)


def _write(table: ScoresTable, target: str | Path | IO[str], header: bool = True) -> None:
    n_text = [str(x) for x in table.n_raters.tolist()]
    n_text = ["" if s else t for s, t in zip(table.suppressed.tolist(), n_text, strict=True)]
    # Quote each distinct label once, not once per row.
    ratee_labels, ratee_idx = np.unique(table.ratee_id.astype(str), return_inverse=True)
    ratee_text = np.array([_csv_field(x) for x in ratee_labels.tolist()], dtype=object)
    comp_labels, comp_idx = np.unique(table.competency.astype(str), return_inverse=True)
    comp_text = np.array([_csv_field(x) for x in comp_labels.tolist()], dtype=object)
    columns = [
        ratee_text[ratee_idx.ravel()].tolist(),
        comp_text[comp_idx.ravel()].tolist(),
        table.relationship.tolist(),
        n_text,
        _fmt(table.raw_mean),
        _fmt(table.adjusted),
        _fmt(table.se),
        _fmt(table.ci_low),
        _fmt(table.ci_high),
        ["1" if s else "0" for s in table.suppressed.tolist()],
    ]
    body = "\n".join(map(",".join, zip(*columns, strict=True)))
    text = (",".join(SCORES_COLUMNS) + "\n" if header else "") + (body + "\n" if body else "")
    if isinstance(target, str | Path):
        Path(target).write_text(text, encoding="utf-8")
    else:
        target.write(text)


def _csv_field(value: Any) -> str:
    s = safe_cell(value)  # a label such as "=HYPERLINK(…)" must not run in a spreadsheet
    if any(ch in s for ch in ',"\n\r') or s != s.strip():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow([s])
        return buf.getvalue()
    return s


# ---- the whole pipeline --------------------------------------------------------------


def _clean_json(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def score_csv(
    ratings_path: str | Path,
    out_path: str | Path,
    *,
    bank: str | None = None,
    min_group_size: int = 3,
    method: str = "adjusted",
    scale: tuple[float, float] = (1.0, 5.0),
) -> dict[str, Any]:
    """Read ratings.csv, score it, write scores.csv; return a JSON-ready summary.

    Raises
    ------
    RatingsFileError
        Bad input (with line numbers) or an unknown bank.
    """
    t0 = time.perf_counter()
    item_competency = _bank_items(bank) if bank else None
    ratings = read_ratings_csv(ratings_path, item_competency=item_competency, scale=scale)
    t_read = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collected in scores.warnings and reported
        scores = score_ratings(ratings, method=method)
    t_score = time.perf_counter() - t0 - t_read
    table = write_scores_csv(scores, out_path, min_group_size=min_group_size)
    notes = list(scores.warnings)
    if not ratings.competency_ids:
        notes.insert(0, "no --bank and no competency column: only ALL scores were computed")
    rel = scores.reliability
    model = scores.model
    summary = {
        "input": str(ratings_path),
        "output": str(out_path),
        "method_requested": method,
        "method": scores.method,
        "counts": {
            "ratings": ratings.n_ratings,
            "answered": int((~np.isnan(ratings.value)).sum()),
            "raters": ratings.n_raters,
            "ratees": ratings.n_ratees,
            "items": ratings.n_items,
            "competencies": list(ratings.competency_ids),
            "rows_written": len(table),
            "rows_suppressed": int(table.suppressed.sum()),
        },
        "min_group_size": min_group_size,
        "confidence": scores.confidence,
        "warnings": notes,
        "reliability": {
            c: {
                "icc1": rel.icc1[k],
                "icck": rel.icck[k],
                "alpha": rel.alpha[k],
                "raters_needed_70": rel.raters_needed_70[k],
                "raters_needed_80": rel.raters_needed_80[k],
                "median_rwg": _nanmedian(rel.rwg[:, k]),
            }
            for k, c in enumerate(rel.competency_ids)
        },
        "agreement": {
            "blind_spots": int(scores.agreement.blind_spot[:, :-1].sum()),
            "hidden_strengths": int(scores.agreement.hidden_strength[:, :-1].sum()),
        },
        "seconds": {"read": t_read, "score": t_score, "total": time.perf_counter() - t0},
    }
    if model is not None:
        design = model.design
        summary["model"] = {
            "variance_components": model.variance_components,
            "relationship_effect": model.relationship_effect,
            "median_ratee_reliability": _nanmedian(model.reliability),
            "components": design.n_components,
            "largest_component_share": design.largest_component_share,
            "raters_few_ratees": design.n_raters_few_ratees,
        }
    return _clean_json(summary)  # type: ignore[no-any-return]


def _nanmedian(a: NDArray[np.float64]) -> float:
    a = a[~np.isnan(a)]
    return float(np.median(a)) if a.size else float("nan")


def _bank_items(key: str) -> dict[str, str]:
    """Item → competency map of a question bank (surveys.banks, imported lazily)."""
    try:
        from surveys import banks
    except ImportError as exc:
        raise RatingsFileError(f"question banks are not available ({exc})") from None
    try:
        bank = banks.get_bank(key)
    except (KeyError, LookupError, ValueError, FileNotFoundError) as exc:
        raise RatingsFileError(f"unknown question bank {key!r} ({exc})") from None
    return {str(k): str(v) for k, v in bank.item_competency.items()}
