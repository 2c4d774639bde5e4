"""The ``Ratings`` container: a validated long table of item ratings.

One row per (rater, ratee, item): the rater's key, the ratee's key, the item id, the
rater's relationship to the ratee and the value (NaN = not applicable). Keys are stored as
integer codes into label arrays, so that every statistic downstream is a ``bincount`` away.
"""

from __future__ import annotations

import gc
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["GROUPS", "RELATIONSHIPS", "InvalidRatingsError", "Ratings", "parse_relationship"]

#: Relationship of a rater to the ratee, in report order; codes are positions here.
RELATIONSHIPS: tuple[str, ...] = ("self", "manager", "peer", "direct_report", "other")
#: Aggregation groups: each relationship plus ``others`` (everyone but self).
GROUPS: tuple[str, ...] = (*RELATIONSHIPS, "others")
SELF = 0
OTHERS = len(RELATIONSHIPS)

_REL_CODE = {name: code for code, name in enumerate(RELATIONSHIPS)}
_REL_ALIASES = {"directreport": 3, "report": 3, "direct": 3, "dr": 3}


class InvalidRatingsError(ValueError):
    """Ratings that cannot be scored; ``rows`` holds the offending 0-based row positions.

    A ``ValueError`` subclass, so that callers can ``except ValueError``; readers of files
    map ``rows`` back to line numbers.
    """

    def __init__(self, message: str, rows: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.rows = tuple(int(r) for r in rows)


def parse_relationship(name: str) -> int:
    """Code of a relationship name (case and ``-``/space tolerant); ``-1`` if unknown."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key in _REL_CODE:
        return _REL_CODE[key]
    return _REL_ALIASES.get(key.replace("_", ""), -1)


def _factorize(values: ArrayLike) -> tuple[NDArray[np.int32], NDArray[Any]]:
    """Integer codes and labels, labels in order of first appearance."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.dtype.kind in "iu" and arr.size and arr.min() >= 0 and arr.max() < 4 * arr.size + 1024:
        # Dense non-negative integers: O(n) instead of a sort.
        present = np.zeros(int(arr.max()) + 1, dtype=bool)
        present[arr] = True
        labels = np.flatnonzero(present)
        lookup = np.cumsum(present, dtype=np.int64) - 1
        return lookup[arr].astype(np.int32), labels
    # Hash-based (first appearance order) instead of sorting: strings sort slowly.
    table: defaultdict[Any, int] = defaultdict(itertools.count().__next__)
    enabled = gc.isenabled()
    gc.disable()  # millions of short-lived labels would trigger repeated full collections
    try:
        codes = np.fromiter(map(table.__getitem__, arr.tolist()), dtype=np.int32, count=arr.size)
    finally:
        if enabled:
            gc.enable()
    labels = np.empty(len(table), dtype=object)
    labels[:] = list(table)
    if arr.dtype.kind in "iufUS":
        labels = labels.astype(arr.dtype)
    return codes, labels


def _label(x: Any) -> Any:
    """A numpy scalar label as the plain Python value (for readable messages)."""
    return x.item() if isinstance(x, np.generic) else x


def _row_list(mask: NDArray[np.bool_], limit: int = 5) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)[:limit]]


@dataclass(frozen=True, eq=False)
class Ratings:
    """A validated long table of ratings, keys stored as integer codes.

    Build it with :meth:`from_arrays` (any labels) or :meth:`from_codes` (already
    factorized, used by fast file readers). Treat the arrays as read-only.

    Attributes
    ----------
    rater, ratee, item : ndarray of int32, shape (n,)
        Codes into ``rater_ids``, ``ratee_ids`` and ``item_ids``.
    relationship : ndarray of int8, shape (n,)
        Codes into :data:`RELATIONSHIPS`.
    value : ndarray of float64, shape (n,)
        The rating; NaN means "not applicable".
    rater_ids, ratee_ids, item_ids : ndarray
        Labels, in order of first appearance.
    item_competency : ndarray of int32, shape (n_items,)
        Competency code of each item; ``-1`` when no competency map was given.
    competency_ids : tuple of str
        Competency labels (empty when no map was given: only ``ALL`` is scored).
    scale : tuple of float
        Lowest and highest allowed rating.
    pair : ndarray of int32, shape (n,)
        Code of the (rater, ratee) pair of each row.
    pair_rater, pair_ratee : ndarray of int32, shape (n_pairs,)
        Rater and ratee of each pair.
    pair_relationship : ndarray of int8, shape (n_pairs,)
        Relationship of each pair (one relationship per rater and ratee).
    """

    rater: NDArray[np.int32]
    ratee: NDArray[np.int32]
    item: NDArray[np.int32]
    relationship: NDArray[np.int8]
    value: NDArray[np.float64]
    rater_ids: NDArray[Any]
    ratee_ids: NDArray[Any]
    item_ids: NDArray[Any]
    item_competency: NDArray[np.int32]
    competency_ids: tuple[str, ...]
    scale: tuple[float, float]
    pair: NDArray[np.int32]
    pair_rater: NDArray[np.int32]
    pair_ratee: NDArray[np.int32]
    pair_relationship: NDArray[np.int8]

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_ratings(self) -> int:
        """Number of rows, N/A included."""
        return int(self.value.size)

    @property
    def n_raters(self) -> int:
        return int(self.rater_ids.size)

    @property
    def n_ratees(self) -> int:
        return int(self.ratee_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    @property
    def n_pairs(self) -> int:
        return int(self.pair_rater.size)

    @property
    def rating_competency(self) -> NDArray[np.int32]:
        """Competency code of each row (``-1`` without a competency map)."""
        return self.item_competency[self.item]

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        rater: ArrayLike,
        ratee: ArrayLike,
        item: ArrayLike,
        relationship: ArrayLike,
        value: ArrayLike,
        item_competency: Mapping[Any, str] | None = None,
        *,
        scale: tuple[float, float] = (1.0, 5.0),
    ) -> Ratings:
        """Validate and factorize a long table of ratings.

        Parameters
        ----------
        rater, ratee, item : array_like, shape (n,)
            Keys of any hashable, sortable type (strings or integers).
        relationship : array_like of str or int, shape (n,)
            ``self``, ``manager``, ``peer``, ``direct_report`` or ``other`` (or their codes
            0–4). Case, spaces and hyphens are tolerated.
        value : array_like of float, shape (n,)
            Ratings; NaN (or None) = not applicable.
        item_competency : mapping, optional
            Item id → competency id. When given, every item must be in it.
        scale : (float, float)
            Lowest and highest allowed rating.

        Raises
        ------
        InvalidRatingsError
            (a ``ValueError``) for empty input, unequal lengths, non-numeric or
            out-of-scale values, unknown relationships or items, duplicate
            (rater, ratee, item) rows, or a rater with two relationships to one ratee.
        """
        columns = [np.asarray(c) for c in (rater, ratee, item, relationship)]
        values = _to_float(value)
        n = values.size
        if any(c.ndim != 1 for c in columns) or values.ndim != 1:
            raise InvalidRatingsError("every column must be one-dimensional")
        if any(c.size != n for c in columns):
            sizes = ", ".join(str(c.size) for c in (*columns, values))
            raise InvalidRatingsError(f"columns have different lengths ({sizes})")
        if n == 0:
            raise InvalidRatingsError("no ratings: the input is empty")
        rel = columns[3]
        if rel.dtype.kind in "iu":
            rel_codes = rel.astype(np.int64)
            bad = (rel_codes < 0) | (rel_codes >= len(RELATIONSHIPS))
        else:
            rel_inv, rel_labels = _factorize(rel)
            lookup = np.array([parse_relationship(x) for x in rel_labels], dtype=np.int64)
            rel_codes = lookup[rel_inv]
            bad = rel_codes < 0
        if bad.any():
            rows = _row_list(bad)
            raise InvalidRatingsError(
                f"unknown relationship {_label(rel[rows[0]])!r} (expected one of "
                f"{', '.join(RELATIONSHIPS)})",
                rows,
            )
        rater_codes, rater_ids = _factorize(columns[0])
        ratee_codes, ratee_ids = _factorize(columns[1])
        item_codes, item_ids = _factorize(columns[2])
        if item_competency is None:
            comp = np.full(item_ids.size, -1, dtype=np.int32)
            comp_ids: tuple[str, ...] = ()
        else:
            unknown = [i for i, x in enumerate(item_ids.tolist()) if x not in item_competency]
            if unknown:
                names = ", ".join(repr(_label(item_ids[i])) for i in unknown[:5])
                rows = _row_list(np.isin(item_codes, unknown))
                raise InvalidRatingsError(
                    f"{len(unknown)} item(s) not in the competency map: {names}", rows
                )
            comp_labels = [str(item_competency[x]) for x in item_ids.tolist()]
            comp_ids = tuple(dict.fromkeys(comp_labels))
            index = {c: k for k, c in enumerate(comp_ids)}
            comp = np.array([index[c] for c in comp_labels], dtype=np.int32)
        return cls.from_codes(
            rater_codes,
            ratee_codes,
            item_codes,
            rel_codes.astype(np.int8),
            values,
            rater_ids=rater_ids,
            ratee_ids=ratee_ids,
            item_ids=item_ids,
            item_competency=comp,
            competency_ids=comp_ids,
            scale=scale,
        )

    @classmethod
    def from_codes(
        cls,
        rater: ArrayLike,
        ratee: ArrayLike,
        item: ArrayLike,
        relationship: ArrayLike,
        value: ArrayLike,
        *,
        rater_ids: ArrayLike,
        ratee_ids: ArrayLike,
        item_ids: ArrayLike,
        item_competency: ArrayLike | None = None,
        competency_ids: Sequence[str] = (),
        scale: tuple[float, float] = (1.0, 5.0),
    ) -> Ratings:
        """Build from integer codes (``0 <= code < len(labels)``); validates values and keys.

        Raises
        ------
        InvalidRatingsError
            As :meth:`from_arrays`.
        """
        lo, hi = (float(scale[0]), float(scale[1]))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InvalidRatingsError(f"scale must be two finite numbers, low < high: {scale}")
        rater_a = np.ascontiguousarray(rater, dtype=np.int32)
        ratee_a = np.ascontiguousarray(ratee, dtype=np.int32)
        item_a = np.ascontiguousarray(item, dtype=np.int32)
        rel_a = np.ascontiguousarray(relationship, dtype=np.int8)
        val = _to_float(value)
        n = val.size
        if any(a.shape != (n,) for a in (rater_a, ratee_a, item_a, rel_a)):
            raise InvalidRatingsError("columns have different lengths or are not 1-d")
        if n == 0:
            raise InvalidRatingsError("no ratings: the input is empty")
        labels = [np.asarray(x) for x in (rater_ids, ratee_ids, item_ids)]
        for name, codes, lab in zip(
            ("rater", "ratee", "item"), (rater_a, ratee_a, item_a), labels, strict=True
        ):
            if codes.min() < 0 or codes.max() >= lab.size:
                raise InvalidRatingsError(f"{name} codes out of range of the {name} labels")
        if rel_a.min() < 0 or rel_a.max() >= len(RELATIONSHIPS):
            raise InvalidRatingsError("relationship codes out of range")
        n_items = labels[2].size
        comp = (
            np.full(n_items, -1, dtype=np.int32)
            if item_competency is None
            else np.ascontiguousarray(item_competency, dtype=np.int32)
        )
        comp_ids = tuple(str(c) for c in competency_ids)
        if comp.shape != (n_items,) or (comp.size and comp.max() >= len(comp_ids)):
            raise InvalidRatingsError("item_competency must give a competency code per item")
        if comp_ids and comp.size and comp.min() < 0:
            raise InvalidRatingsError("every item needs a competency when competencies are given")

        finite = np.isfinite(val)
        bad = ~finite & ~np.isnan(val)
        if bad.any():
            rows = _row_list(bad)
            raise InvalidRatingsError(f"rating {val[rows[0]]} is not a finite number", rows)
        out = finite & ((val < lo) | (val > hi))
        if out.any():
            rows = _row_list(out)
            raise InvalidRatingsError(
                f"{int(out.sum())} rating(s) outside the scale {lo:g}–{hi:g} "
                f"(first: {val[rows[0]]:g})",
                rows,
            )

        # One sort of the (rater, ratee, item) key finds duplicates and builds the pairs.
        n_ratee = labels[1].size
        pair_key = rater_a.astype(np.int64) * n_ratee + ratee_a
        key = pair_key * n_items + item_a
        order: NDArray[np.intp] | None = None
        if n > 1 and not bool(np.all(key[1:] > key[:-1])):
            order = np.argsort(key, kind="stable")
            key = key[order]
        dup = key[1:] == key[:-1]
        if dup.any():
            first = int(np.flatnonzero(dup)[0])
            rows = (
                [first, first + 1] if order is None else [int(order[first]), int(order[first + 1])]
            )
            raise InvalidRatingsError(
                f"{int(dup.sum())} duplicate (rater, ratee, item) row(s); first: "
                f"rater {_label(labels[0][rater_a[rows[0]]])!r}, "
                f"ratee {_label(labels[1][ratee_a[rows[0]]])!r}, "
                f"item {_label(labels[2][item_a[rows[0]]])!r}",
                sorted(rows),
            )
        sorted_pair = key // n_items
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(sorted_pair[1:], sorted_pair[:-1], out=new[1:])
        pair_sorted = (np.cumsum(new) - 1).astype(np.int32)
        pair_keys = sorted_pair[new]
        rel_sorted = rel_a if order is None else rel_a[order]
        pair_rel = rel_sorted[new]
        clash = rel_sorted != pair_rel[pair_sorted]
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            row = i if order is None else int(order[i])
            raise InvalidRatingsError(
                f"rater {_label(labels[0][rater_a[row]])!r} has more than one relationship "
                f"to ratee {_label(labels[1][ratee_a[row]])!r}",
                [row],
            )
        if order is None:
            pair = pair_sorted
        else:
            pair = np.empty(n, dtype=np.int32)
            pair[order] = pair_sorted
        arrays = {
            "rater": rater_a,
            "ratee": ratee_a,
            "item": item_a,
            "relationship": rel_a,
            "value": val,
            "rater_ids": labels[0],
            "ratee_ids": labels[1],
            "item_ids": labels[2],
            "item_competency": comp,
            "pair": pair,
            "pair_rater": (pair_keys // n_ratee).astype(np.int32),
            "pair_ratee": (pair_keys % n_ratee).astype(np.int32),
            "pair_relationship": pair_rel,
        }
        return cls(competency_ids=comp_ids, scale=(lo, hi), **arrays)  # type: ignore[arg-type]

    def select(self, mask: ArrayLike) -> Ratings:
        """A new ``Ratings`` with the rows where ``mask`` is true (labels kept)."""
        m = np.asarray(mask, dtype=bool)
        return Ratings.from_codes(
            self.rater[m],
            self.ratee[m],
            self.item[m],
            self.relationship[m],
            self.value[m],
            rater_ids=self.rater_ids,
            ratee_ids=self.ratee_ids,
            item_ids=self.item_ids,
            item_competency=self.item_competency,
            competency_ids=self.competency_ids,
            scale=self.scale,
        )


def _to_float(value: ArrayLike) -> NDArray[np.float64]:
    """Values as float64 with None → NaN; non-numeric values raise with their row."""
    try:
        return np.ascontiguousarray(np.asarray(value, dtype=np.float64).ravel())
    except (TypeError, ValueError):
        pass
    items = list(np.asarray(value, dtype=object).ravel())
    out = np.empty(len(items), dtype=np.float64)
    for i, x in enumerate(items):
        if x is None or (isinstance(x, str) and x.strip().upper() in {"", "NA", "N/A"}):
            out[i] = np.nan
            continue
        try:
            out[i] = float(x)
        except (TypeError, ValueError):
            raise InvalidRatingsError(f"non-numeric rating {x!r}", [i]) from None
    return out
