"""Self–other agreement: gaps between self-view and others' view, with their noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from scoring.ratings import SELF, Ratings

__all__ = [
    "CATEGORIES",
    "AgreementResult",
    "item_agreement",
    "self_item_sd",
    "self_other_agreement",
]

#: Self–other agreement categories (Yammarino & Atwater 1997), "" when undefined.
CATEGORIES: tuple[str, ...] = (
    "over-estimator",
    "under-estimator",
    "in agreement (high)",
    "in agreement (low)",
)


@dataclass(frozen=True, eq=False)
class AgreementResult:
    """Self minus others per ratee and column (competency or item).

    Attributes
    ----------
    gap, gap_se, ci_low, ci_high : ndarray
        :math:`g=s-o` (self minus others), its standard error and interval.
    category : ndarray of str
        One of :data:`CATEGORIES`, ``""`` where self or others is missing.
    blind_spot : ndarray of bool
        Self rates clearly higher than others (``g > z·SE`` and ``g >= min_gap``).
    hidden_strength : ndarray of bool
        Others rate clearly higher than self (``g < -z·SE`` and ``-g >= min_gap``).
    norm : ndarray
        The level separating "high" from "low" agreement, per column.
    """

    gap: NDArray[np.float64]
    gap_se: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    category: NDArray[np.str_]
    blind_spot: NDArray[np.bool_]
    hidden_strength: NDArray[np.bool_]
    norm: NDArray[np.float64]
    confidence: float


def self_other_agreement(
    self_score: ArrayLike,
    others_score: ArrayLike,
    others_se: ArrayLike,
    self_se: ArrayLike = 0.0,
    *,
    confidence: float = 0.90,
    min_gap: float = 0.0,
    norm: ArrayLike | None = None,
) -> AgreementResult:
    """Classify self–other agreement, flagging gaps only where they exceed their noise.

    Parameters
    ----------
    self_score, others_score : array_like, shape (n_ratees, n_columns)
    others_se : array_like
        Standard error of ``others_score`` (rater as unit).
    self_se : array_like, default 0
        Measurement noise of the self score (e.g. item noise over the items averaged).
    confidence : float, default 0.90
    min_gap : float, default 0
        Smallest gap (scale points) worth flagging, in addition to the noise test.
    norm : array_like, optional
        Per-column level for "high"/"low" agreement; default the mean others' score.

    Notes
    -----
    :math:`SE_g=\\sqrt{SE_o^2+SE_s^2}`. A ratee is an *over-estimator* (blind spot) where
    :math:`g>z\\,SE_g`, an *under-estimator* (hidden strength) where :math:`g<-z\\,SE_g`,
    and otherwise *in agreement*, high or low as the others' score is at or above the
    norm or below it (Yammarino & Atwater 1997; Fleenor, McCauley & Brutus 1996).

    References
    ----------
    Yammarino, F. J. & Atwater, L. E. (1997). Do managers see themselves as others see
    them? *Organizational Dynamics* 25(4), 35–44.
    Fleenor, J. W., McCauley, C. D. & Brutus, S. (1996). Self-other rating agreement and
    leader effectiveness. *Leadership Quarterly* 7, 487–506.

    Examples
    --------
    >>> from scoring import self_other_agreement
    >>> res = self_other_agreement([[4.8], [3.0]], [[3.5], [3.1]], [[0.2], [0.2]])
    >>> res.category.ravel().tolist()
    ['over-estimator', 'in agreement (low)']
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1): {confidence}")
    s = np.atleast_2d(np.asarray(self_score, dtype=np.float64))
    o = np.atleast_2d(np.asarray(others_score, dtype=np.float64))
    if s.shape != o.shape:
        raise ValueError(f"self_score and others_score shapes differ: {s.shape} vs {o.shape}")
    se = np.sqrt(
        np.broadcast_to(np.asarray(others_se, dtype=np.float64), o.shape) ** 2
        + np.broadcast_to(np.asarray(self_se, dtype=np.float64), o.shape) ** 2
    )
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    gap = s - o
    if norm is None:
        has = ~np.isnan(o)
        cnt = has.sum(axis=0)
        level = np.full(o.shape[1], np.nan)
        np.divide(np.where(has, o, 0).sum(axis=0), cnt, out=level, where=cnt > 0)
    else:
        level = np.broadcast_to(np.asarray(norm, dtype=np.float64), (o.shape[1],)).copy()
    defined = ~np.isnan(gap) & ~np.isnan(se)
    gap0 = np.where(defined, gap, 0.0)
    se0 = np.where(defined, se, np.inf)
    over = defined & (gap0 > z * se0) & (gap0 >= min_gap)
    under = defined & (gap0 < -z * se0) & (-gap0 >= min_gap)
    high = np.where(defined, o, -np.inf) >= level[None, :]
    category = np.full(o.shape, "", dtype="<U19")
    category[defined] = np.where(high, CATEGORIES[2], CATEGORIES[3])[defined]
    category[over] = CATEGORIES[0]
    category[under] = CATEGORIES[1]
    return AgreementResult(
        gap=gap,
        gap_se=np.where(defined, se, np.nan),
        ci_low=gap - z * se,
        ci_high=gap + z * se,
        category=category,
        blind_spot=over,
        hidden_strength=under,
        norm=level,
        confidence=confidence,
    )


def item_agreement(
    ratings: Ratings, *, confidence: float = 0.90, min_gap: float = 0.0
) -> AgreementResult:
    """Self–other agreement per ratee × item, raw item means of the others.

    The others' SE of an item is the pooled within-ratee SD of that item's ratings over
    :math:`\\sqrt n`; the self noise is the pooled SD of self item ratings around each
    self's own mean (after item centring), the noise of a single item answer.
    """
    n_ratee, n_items = ratings.n_ratees, ratings.n_items
    v = ratings.value
    ok = ~np.isnan(v)
    is_self = ratings.relationship == SELF
    cell = ratings.ratee.astype(np.int64) * n_items + ratings.item
    size = n_ratee * n_items
    o = ok & ~is_self
    cnt = np.bincount(cell[o], minlength=size).astype(np.float64)
    mean = np.full(size, np.nan)
    np.divide(np.bincount(cell[o], weights=v[o], minlength=size), cnt, out=mean, where=cnt > 0)
    ss = np.bincount(cell[o], weights=(v[o] - mean[cell[o]]) ** 2, minlength=size)
    ss_i = ss.reshape(n_ratee, n_items).sum(axis=0)
    df_i = np.clip(cnt.reshape(n_ratee, n_items) - 1, 0, None).sum(axis=0)
    pooled = np.full(n_items, np.nan)
    np.divide(ss_i, df_i, out=pooled, where=df_i > 0)
    cnt2 = cnt.reshape(n_ratee, n_items)
    others_se = np.full((n_ratee, n_items), np.nan)
    np.sqrt(np.divide(pooled[None, :], cnt2, out=others_se, where=cnt2 > 0), out=others_se)

    s = ok & is_self
    self_flat = np.full(size, np.nan)
    self_flat[cell[s]] = v[s]
    self_score = self_flat.reshape(n_ratee, n_items)
    self_sd = self_item_sd(ratings)
    return self_other_agreement(
        self_score,
        mean.reshape(n_ratee, n_items),
        others_se,
        self_sd,
        confidence=confidence,
        min_gap=min_gap,
    )


def self_item_sd(ratings: Ratings) -> float:
    """Pooled SD of self item ratings around each self's mean, after item centring.

    The noise of a single self answer; 0 when there are too few self ratings.
    """
    s = ~np.isnan(ratings.value) & (ratings.relationship == SELF)
    if s.sum() < 3:
        return 0.0
    item, ratee, v = ratings.item[s], ratings.ratee[s], ratings.value[s]
    cnt_i = np.bincount(item, minlength=ratings.n_items)
    item_mean = np.bincount(item, weights=v, minlength=ratings.n_items) / np.maximum(cnt_i, 1)
    r = v - item_mean[item]
    cnt_e = np.bincount(ratee, minlength=ratings.n_ratees)
    mean_e = np.bincount(ratee, weights=r, minlength=ratings.n_ratees) / np.maximum(cnt_e, 1)
    df = float((cnt_e[cnt_e > 0] - 1).sum())
    return float(np.sqrt(((r - mean_e[ratee]) ** 2).sum() / df)) if df > 0 else 0.0
