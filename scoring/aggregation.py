"""Plain aggregates: per ratee × competency × relationship group, with the rater as unit.

Each rater first gets one score per competency — the mean of the items of that competency
they answered — and counts for the competency only if they answered at least
``min_item_fraction`` of its items. Group statistics are then taken over raters, not over
item ratings, because the rater (not the item rating) is the independent unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.ratings import GROUPS, OTHERS, SELF, Ratings

__all__ = ["ALL", "Aggregates", "aggregate", "pair_competency_means"]

#: Label of the "all items" pseudo-competency (always the last competency index).
ALL = "ALL"


def _items_per_competency(ratings: Ratings) -> NDArray[np.int64]:
    """Number of distinct items present per competency, ``ALL`` last."""
    present = np.bincount(ratings.item, minlength=ratings.n_items) > 0
    k = len(ratings.competency_ids)
    per = np.bincount(ratings.item_competency[present], minlength=k) if k else np.zeros(0)
    return np.append(per, present.sum()).astype(np.int64)


def pair_competency_means(
    ratings: Ratings,
    values: NDArray[np.float64] | None = None,
    mask: NDArray[np.bool_] | None = None,
    *,
    min_item_fraction: float = 0.5,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
    """Each rater's mean per competency for each (rater, ratee) pair.

    Parameters
    ----------
    ratings : Ratings
    values : ndarray, optional
        Values to average instead of ``ratings.value`` (e.g. item-centred values).
    mask : ndarray of bool, optional
        Rows to use (in addition to non-missing values).
    min_item_fraction : float
        A pair counts for a competency when it answered at least this share of the
        competency's items.

    Returns
    -------
    means : ndarray, shape (n_pairs, n_competencies + 1)
        NaN where the pair does not count; the last column is ``ALL``.
    counts : ndarray of int, same shape
        Number of items answered.
    valid : ndarray of bool, same shape
    """
    if not 0.0 < min_item_fraction <= 1.0:
        raise ValueError(f"min_item_fraction must be in (0, 1], got {min_item_fraction}")
    v = ratings.value if values is None else values
    use = ~np.isnan(v)
    if mask is not None:
        use &= mask
    k1 = len(ratings.competency_ids) + 1
    n_pairs = ratings.n_pairs
    pair = ratings.pair[use].astype(np.int64)
    vals = v[use]
    size = n_pairs * k1
    all_col = pair * k1 + (k1 - 1)
    sums = np.bincount(all_col, weights=vals, minlength=size)
    counts = np.bincount(all_col, minlength=size)
    if k1 > 1:
        comp_col = pair * k1 + ratings.item_competency[ratings.item[use]]
        sums += np.bincount(comp_col, weights=vals, minlength=size)
        counts += np.bincount(comp_col, minlength=size)
    sums = sums.reshape(n_pairs, k1)
    counts = counts.reshape(n_pairs, k1)
    need = min_item_fraction * _items_per_competency(ratings) - 1e-9
    valid = (counts >= need) & (counts > 0)
    means = np.full((n_pairs, k1), np.nan)
    np.divide(sums, counts, out=means, where=valid)
    return means, counts, valid


@dataclass(frozen=True, eq=False)
class Aggregates:
    """Raw statistics per ratee × competency × group, rater as unit.

    Arrays are indexed ``[ratee, competency, group]``: competencies in
    ``competency_ids`` order with ``ALL`` last, groups in :data:`scoring.GROUPS` order
    (the five relationships, then ``others`` = everyone but self).

    Attributes
    ----------
    n_raters : ndarray of int
        Raters who count for the cell.
    mean : ndarray
        Mean of the raters' competency means, :math:`\\bar m = \\frac1n\\sum_r m_r`
        (NaN when ``n_raters == 0``).
    sd : ndarray
        Standard deviation across raters, ``ddof=1`` (NaN when ``n_raters < 2``).
    se, ci_low, ci_high : ndarray
        Standard error :math:`s_p/\\sqrt n` with :math:`s_p` the pooled within-ratee SD
        of rater means for that competency and group (stable even for 2–3 raters), and
        the normal interval at ``confidence``.
    pooled_sd : ndarray, shape (n_competencies + 1, n_groups)
    distribution : ndarray of int, shape (..., n_points)
        Counts of item ratings per scale point (ratings rounded to the nearest point),
        over the raters who count.
    scale_points : ndarray
    items_per_competency : ndarray of int
    """

    ratee_ids: NDArray[Any]
    competency_ids: tuple[str, ...]
    groups: tuple[str, ...]
    n_raters: NDArray[np.int64]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    se: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    pooled_sd: NDArray[np.float64]
    distribution: NDArray[np.int64]
    scale_points: NDArray[np.float64]
    items_per_competency: NDArray[np.int64]
    confidence: float
    min_item_fraction: float


def aggregate(
    ratings: Ratings, *, min_item_fraction: float = 0.5, confidence: float = 0.90
) -> Aggregates:
    """Aggregate ratings per ratee × competency × relationship group.

    Parameters
    ----------
    ratings : Ratings
    min_item_fraction : float, default 0.5
        A rater counts for a competency only if they answered at least this share of
        its items.
    confidence : float, default 0.90
        Level of the raw-mean intervals.

    Returns
    -------
    Aggregates

    Notes
    -----
    For ratee :math:`e`, competency :math:`c` and group :math:`g` with counting raters
    :math:`R`, :math:`n=|R|`, the mean is :math:`\\bar m=\\frac1n\\sum_{r\\in R} m_{rec}` and
    the SD :math:`\\sqrt{\\sum (m_{rec}-\\bar m)^2/(n-1)}`. The pooled SD of a competency
    and group is :math:`s_p^2=\\sum_e SS_e/\\sum_e (n_e-1)`.

    Examples
    --------
    >>> from scoring import Ratings, aggregate
    >>> r = Ratings.from_arrays(["a", "b", "c"], ["x", "x", "x"], ["q1"] * 3,
    ...                         ["peer", "peer", "self"], [4, 2, 5])
    >>> agg = aggregate(r)
    >>> float(agg.mean[0, -1, 5]), int(agg.n_raters[0, -1, 5])  # ALL, others
    (3.0, 2)
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    means, _, valid = pair_competency_means(ratings, min_item_fraction=min_item_fraction)
    k1 = means.shape[1]
    n_groups = len(GROUPS)
    n_ratee = ratings.n_ratees
    p_idx, c_idx = np.nonzero(valid)
    m = means[p_idx, c_idx]
    rel = ratings.pair_relationship[p_idx].astype(np.int64)
    base = (ratings.pair_ratee[p_idx].astype(np.int64) * k1 + c_idx) * n_groups
    not_self = rel != SELF
    cells = np.concatenate([base + rel, base[not_self] + OTHERS])
    vals = np.concatenate([m, m[not_self]])
    size = n_ratee * k1 * n_groups
    n = np.bincount(cells, minlength=size)
    total = np.bincount(cells, weights=vals, minlength=size)
    mean = np.full(size, np.nan)
    np.divide(total, n, out=mean, where=n > 0)
    ss = np.bincount(cells, weights=(vals - mean[cells]) ** 2, minlength=size)
    sd = np.full(size, np.nan)
    np.sqrt(np.divide(ss, n - 1, out=sd, where=n > 1), out=sd, where=n > 1)

    shape = (n_ratee, k1, n_groups)
    ss3, n3 = ss.reshape(shape), n.reshape(shape)
    df = np.clip(n3 - 1, 0, None).sum(axis=0)
    pooled_var = np.full((k1, n_groups), np.nan)
    np.divide(ss3.sum(axis=0), df, out=pooled_var, where=df > 0)
    pooled_sd = np.sqrt(pooled_var)
    se = np.full(shape, np.nan)
    np.divide(pooled_sd[None, :, :], np.sqrt(n3), out=se, where=(n3 > 0) & (df[None] > 0))
    z = stats.norm.ppf(0.5 + confidence / 2)
    mean3 = mean.reshape(shape)

    # Distribution of item ratings of the raters who count, per scale point.
    lo, hi = ratings.scale
    n_points = round(hi - lo) + 1
    points = lo + np.arange(n_points, dtype=np.float64)
    v = ratings.value
    answered = ~np.isnan(v)
    pair = ratings.pair[answered]
    point = np.clip(np.rint(v[answered] - lo), 0, n_points - 1).astype(np.int64)
    rel_r = ratings.pair_relationship[pair].astype(np.int64)
    ratee_r = ratings.pair_ratee[pair].astype(np.int64)
    cols = [np.full(pair.size, k1 - 1, dtype=np.int64)]
    if k1 > 1:
        cols.append(ratings.item_competency[ratings.item[answered]].astype(np.int64))
    dist = np.zeros(size * n_points, dtype=np.int64)
    for col in cols:
        keep = valid[pair, col]
        cell = (ratee_r[keep] * k1 + col[keep]) * n_groups
        pt = point[keep]
        dist += np.bincount((cell + rel_r[keep]) * n_points + pt, minlength=dist.size)
        others = rel_r[keep] != SELF
        dist += np.bincount((cell[others] + OTHERS) * n_points + pt[others], minlength=dist.size)

    return Aggregates(
        ratee_ids=ratings.ratee_ids,
        competency_ids=(*ratings.competency_ids, ALL),
        groups=GROUPS,
        n_raters=n3,
        mean=mean3,
        sd=sd.reshape(shape),
        se=se,
        ci_low=mean3 - z * se,
        ci_high=mean3 + z * se,
        pooled_sd=pooled_sd,
        distribution=dist.reshape((*shape, n_points)),
        scale_points=points,
        items_per_competency=_items_per_competency(ratings),
        confidence=confidence,
        min_item_fraction=min_item_fraction,
    )
