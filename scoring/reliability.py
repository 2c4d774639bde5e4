"""Reliability and within-group agreement: ICC, Cronbach's alpha, rwg(j), Spearman–Brown."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from scoring.aggregation import ALL, pair_competency_means
from scoring.ratings import SELF, Ratings
from scoring.warnings import DegenerateRatingsWarning

__all__ = [
    "CompetencyReliability",
    "CronbachAlphaResult",
    "ICCResult",
    "ShroutFleissResult",
    "competency_reliability",
    "cronbach_alpha",
    "icc",
    "icc_shrout_fleiss",
    "raters_needed",
    "rwg_j",
    "spearman_brown",
]


@dataclass(frozen=True)
class ICCResult:
    """One-way intraclass correlations of possibly unbalanced data.

    Attributes
    ----------
    icc1 : float
        Reliability of a single rater, ICC(1).
    icck : float
        Reliability of the mean of a target's raters, ICC(k) (Bliese's ICC(2)).
    n0 : float
        Effective number of raters per target.
    msb, msw, f, pvalue : float
        Between/within mean squares, F = MSB/MSW and its p-value.
    df_between, df_within : int
    n_targets, n_ratings : int
    """

    icc1: float
    icck: float
    n0: float
    msb: float
    msw: float
    f: float
    pvalue: float
    df_between: int
    df_within: int
    n_targets: int
    n_ratings: int


def icc(values: ArrayLike, targets: ArrayLike, *, nan_policy: str = "omit") -> ICCResult:
    """One-way random-effects ICC(1) and ICC(k) for unbalanced data.

    Parameters
    ----------
    values : array_like, shape (n,)
        One value per rating (e.g. a rater's competency mean for a ratee).
    targets : array_like, shape (n,)
        The rated target of each value.
    nan_policy : {"omit", "raise", "propagate"}
        What to do with NaN values.

    Returns
    -------
    ICCResult

    Notes
    -----
    With :math:`k` targets, :math:`N` values and :math:`n_j` values per target,

    .. math:: \\mathrm{ICC}(1)=\\frac{MS_B-MS_W}{MS_B+(n_0-1)MS_W},\\qquad
              \\mathrm{ICC}(k)=\\frac{MS_B-MS_W}{MS_B},\\qquad
              n_0=\\frac{N-\\sum_j n_j^2/N}{k-1}.

    For balanced data these are Shrout & Fleiss's ICC(1,1) and ICC(1,k). Constant data
    (:math:`MS_B=MS_W=0`) gives NaN and a :class:`~scoring.DegenerateRatingsWarning`.

    References
    ----------
    Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing
    rater reliability. *Psychological Bulletin* 86, 420–428.
    Bliese, P. D. (2000). Within-group agreement, non-independence, and reliability. In
    Klein & Kozlowski (eds), *Multilevel Theory, Research, and Methods in Organizations*.

    Examples
    --------
    >>> from scoring import icc
    >>> res = icc([9, 2, 5, 8, 6, 1, 3, 2], [0, 0, 0, 0, 1, 1, 1, 1])
    >>> round(res.icc1, 3)
    0.267
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    t = np.asarray(targets).ravel()
    if v.size != t.size:
        raise ValueError(f"values and targets differ in length ({v.size} vs {t.size})")
    nan = np.isnan(v)
    if nan.any():
        if nan_policy == "raise":
            raise ValueError("values contain NaN")
        if nan_policy == "propagate":
            return ICCResult(*(np.nan,) * 8, 0, 0, int(v.size))  # type: ignore[arg-type]
        if nan_policy != "omit":
            raise ValueError(f"nan_policy must be 'omit', 'raise' or 'propagate': {nan_policy}")
        v, t = v[~nan], t[~nan]
    _, g = np.unique(t, return_inverse=True)
    return _icc_codes(v, g.ravel())


def _icc_codes(v: NDArray[np.float64], g: NDArray[np.intp]) -> ICCResult:
    n = v.size
    cnt = np.bincount(g).astype(np.float64)
    k = int((cnt > 0).sum())
    if k < 2 or n <= k:
        raise ValueError(
            f"ICC needs at least two targets and more values than targets (got {k} "
            f"targets, {n} values)"
        )
    mean_g = np.bincount(g, weights=v) / np.maximum(cnt, 1)
    grand = float(v.mean())
    ssb = float((cnt * (mean_g - grand) ** 2).sum())
    ssw = float(((v - mean_g[g]) ** 2).sum())
    dfb, dfw = k - 1, n - k
    msb, msw = ssb / dfb, ssw / dfw
    n0 = (n - float((cnt**2).sum()) / n) / dfb
    if msb <= 0 and msw <= 0:
        warnings.warn("all values are equal; ICC is undefined", DegenerateRatingsWarning, 2)
        return ICCResult(np.nan, np.nan, n0, msb, msw, np.nan, np.nan, dfb, dfw, k, n)
    icc1 = (msb - msw) / (msb + (n0 - 1) * msw)
    icck = (msb - msw) / msb if msb > 0 else np.nan
    if msw > 0:
        f = msb / msw
        p = float(stats.f.sf(f, dfb, dfw))
    else:
        f, p = np.inf, 0.0
    return ICCResult(float(icc1), float(icck), float(n0), msb, msw, float(f), p, dfb, dfw, k, n)


@dataclass(frozen=True)
class ShroutFleissResult:
    """The six Shrout & Fleiss (1979) ICCs of a complete targets × judges table."""

    icc1_1: float
    icc2_1: float
    icc3_1: float
    icc1_k: float
    icc2_k: float
    icc3_k: float
    n_targets: int
    n_judges: int


def icc_shrout_fleiss(x: ArrayLike) -> ShroutFleissResult:
    """All six Shrout & Fleiss ICCs of a complete table (targets in rows, judges in columns).

    Notes
    -----
    With two-way ANOVA mean squares :math:`BMS` (targets), :math:`JMS` (judges),
    :math:`EMS` (residual), :math:`WMS` (within targets), :math:`n` targets, :math:`k`
    judges:

    .. math::
        \\mathrm{ICC}(1,1)=\\frac{BMS-WMS}{BMS+(k-1)WMS},\\;
        \\mathrm{ICC}(2,1)=\\frac{BMS-EMS}{BMS+(k-1)EMS+k(JMS-EMS)/n},\\;
        \\mathrm{ICC}(3,1)=\\frac{BMS-EMS}{BMS+(k-1)EMS},

    and the average-measure forms :math:`(BMS-WMS)/BMS`,
    :math:`(BMS-EMS)/(BMS+(JMS-EMS)/n)`, :math:`(BMS-EMS)/BMS`.

    References
    ----------
    Shrout, P. E. & Fleiss, J. L. (1979). *Psychological Bulletin* 86, 420–428, Table 2–4.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError("x must be a 2-d table with at least two targets and two judges")
    if np.isnan(a).any():
        raise ValueError("x must be complete (no NaN); use icc() for unbalanced data")
    n, k = a.shape
    grand = a.mean()
    ssb = k * ((a.mean(axis=1) - grand) ** 2).sum()
    ssj = n * ((a.mean(axis=0) - grand) ** 2).sum()
    sst = ((a - grand) ** 2).sum()
    bms, jms = ssb / (n - 1), ssj / (k - 1)
    wms = (sst - ssb) / (n * (k - 1))
    ems = (sst - ssb - ssj) / ((n - 1) * (k - 1))
    if bms <= 0:
        warnings.warn("targets do not differ; ICCs are undefined", DegenerateRatingsWarning, 2)
        return ShroutFleissResult(*(np.nan,) * 6, n, k)  # type: ignore[arg-type]
    return ShroutFleissResult(
        icc1_1=float((bms - wms) / (bms + (k - 1) * wms)),
        icc2_1=float((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)),
        icc3_1=float((bms - ems) / (bms + (k - 1) * ems)),
        icc1_k=float((bms - wms) / bms),
        icc2_k=float((bms - ems) / (bms + (jms - ems) / n)),
        icc3_k=float((bms - ems) / bms),
        n_targets=n,
        n_judges=k,
    )


@dataclass(frozen=True)
class CronbachAlphaResult:
    """Cronbach's alpha with the number of complete observations and items used."""

    alpha: float
    n_observations: int
    n_items: int


def cronbach_alpha(x: ArrayLike, *, nan_policy: str = "omit") -> CronbachAlphaResult:
    """Cronbach's alpha of an observations × items table.

    Parameters
    ----------
    x : array_like, shape (n_observations, n_items)
    nan_policy : {"omit", "raise"}
        ``"omit"`` drops incomplete observations (listwise deletion).

    Notes
    -----
    .. math:: \\alpha=\\frac{k}{k-1}\\Bigl(1-\\frac{\\sum_i s_i^2}{s_T^2}\\Bigr)

    with item variances :math:`s_i^2` and the variance :math:`s_T^2` of the sum score
    (``ddof=1``). It equals Shrout & Fleiss's ICC(3,k) of the same table with items as
    judges (McGraw & Wong 1996). A constant sum score gives NaN and a
    :class:`~scoring.DegenerateRatingsWarning`.

    References
    ----------
    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests.
    *Psychometrika* 16, 297–334.

    Examples
    --------
    >>> from scoring import cronbach_alpha
    >>> round(cronbach_alpha([[1, 2], [2, 3], [4, 4], [5, 5]]).alpha, 4)
    0.9655
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("x must be 2-d (observations × items)")
    if nan_policy not in ("omit", "raise"):
        raise ValueError(f"nan_policy must be 'omit' or 'raise': {nan_policy}")
    complete = ~np.isnan(a).any(axis=1)
    if nan_policy == "raise" and not complete.all():
        raise ValueError("x contains NaN")
    a = a[complete]
    n, k = a.shape
    if k < 2 or n < 2:
        raise ValueError(f"need at least 2 items and 2 complete observations (got {k}, {n})")
    item_var = a.var(axis=0, ddof=1).sum()
    total_var = a.sum(axis=1).var(ddof=1)
    return CronbachAlphaResult(_alpha(k, item_var, total_var), n, k)


def _alpha(k: int, item_var: float, total_var: float) -> float:
    if total_var <= 0:
        warnings.warn("the sum score is constant; alpha is undefined", DegenerateRatingsWarning, 3)
        return float("nan")
    return float(k / (k - 1) * (1 - item_var / total_var))


def rwg_j(x: ArrayLike, *, n_options: int = 5) -> float:
    """Within-group agreement rwg(J) of raters on a J-item scale (James et al. 1984).

    Parameters
    ----------
    x : array_like, shape (n_raters, n_items)
        Ratings of one target; NaN ignored item by item.
    n_options : int
        Number of response options :math:`A`; the uniform null variance is
        :math:`\\sigma^2_{EU}=(A^2-1)/12`.

    Notes
    -----
    .. math:: r_{wg(J)}=\\frac{J(1-\\bar s^2/\\sigma^2_{EU})}
              {J(1-\\bar s^2/\\sigma^2_{EU})+\\bar s^2/\\sigma^2_{EU}}

    with :math:`\\bar s^2` the mean of the item variances (``ddof=1``). Values outside
    [0, 1] (more disagreement than random responding) are set to 0, following
    LeBreton & Senter (2008).

    References
    ----------
    James, L. R., Demaree, R. G. & Wolf, G. (1984). Estimating within-group interrater
    reliability with and without response bias. *J. Applied Psychology* 69, 85–98.
    LeBreton, J. M. & Senter, J. L. (2008). Answers to 20 questions about interrater
    reliability and interrater agreement. *Organizational Research Methods* 11, 815–852.

    Examples
    --------
    >>> from scoring import rwg_j
    >>> round(rwg_j([[4, 4, 5], [4, 5, 5], [5, 4, 4]]), 3)
    0.938
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError("x must be 2-d (raters × items)")
    if n_options < 2:
        raise ValueError("n_options must be at least 2")
    n = (~np.isnan(a)).sum(axis=0)
    ok = n >= 2
    if not ok.any():
        raise ValueError("rwg(j) needs at least two raters on some item")
    with np.errstate(invalid="ignore"):
        s2 = np.nanvar(a[:, ok], axis=0, ddof=1)
    return float(_rwg(s2.mean(), int(ok.sum()), n_options))


def _rwg(mean_var: Any, j: Any, n_options: int) -> Any:
    ratio = np.asarray(mean_var, dtype=np.float64) / ((n_options**2 - 1) / 12.0)
    num = j * (1 - ratio)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / (num + ratio)
    return np.where(np.isnan(mean_var), np.nan, np.clip(np.where(ratio >= 1, 0.0, out), 0, 1))


def spearman_brown(reliability: ArrayLike, factor: ArrayLike) -> Any:
    """Reliability of a measure lengthened by ``factor``: :math:`\\frac{m\\rho}{1+(m-1)\\rho}`.

    Examples
    --------
    >>> from scoring import spearman_brown
    >>> round(float(spearman_brown(0.17, 4)), 3)  # ICC(1,1) → four judges
    0.45
    """
    rho = np.asarray(reliability, dtype=np.float64)
    m = np.asarray(factor, dtype=np.float64)
    return m * rho / (1 + (m - 1) * rho)


def raters_needed(icc1: ArrayLike, target: float = 0.7) -> Any:
    """Raters needed for a mean to reach ``target`` reliability (Spearman–Brown inverted).

    :math:`m=\\frac{\\rho^*(1-\\rho)}{\\rho(1-\\rho^*)}`, rounded up; ``inf`` when
    ICC(1) ≤ 0.

    Examples
    --------
    >>> from scoring import raters_needed
    >>> int(raters_needed(0.3, 0.8))
    10
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1): {target}")
    rho = np.asarray(icc1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = target * (1 - rho) / (rho * (1 - target))
    return np.where(rho > 0, np.ceil(m - 1e-9), np.inf)


@dataclass(frozen=True, eq=False)
class CompetencyReliability:
    """Reliability of the others' ratings per competency (``ALL`` last).

    Attributes
    ----------
    icc1, icck : ndarray, shape (n_competencies + 1,)
        One-way ICC(1) and ICC(k) of raters' competency means (rater as unit).
    alpha : ndarray
        Cronbach's alpha of the competency's items over complete rater–ratee pairs.
    raters_needed_70, raters_needed_80 : ndarray
        Raters needed per ratee for reliability .70 / .80.
    rwg : ndarray, shape (n_ratees, n_competencies + 1)
        rwg(J) of each ratee's others on each competency (NaN with fewer than 2 raters).
    """

    competency_ids: tuple[str, ...]
    icc1: NDArray[np.float64]
    icck: NDArray[np.float64]
    alpha: NDArray[np.float64]
    raters_needed_70: NDArray[np.float64]
    raters_needed_80: NDArray[np.float64]
    rwg: NDArray[np.float64]
    n_options: int


def competency_reliability(
    ratings: Ratings, *, min_item_fraction: float = 0.5
) -> CompetencyReliability:
    """ICC(1), ICC(k), alpha, raters needed and rwg(J) of the others' ratings.

    Statistics that the data cannot support (e.g. a single ratee) are NaN; constant data
    emits one :class:`~scoring.DegenerateRatingsWarning`.
    """
    others = ratings.relationship != SELF
    means, counts, valid = pair_competency_means(
        ratings, mask=others, min_item_fraction=min_item_fraction
    )
    k1 = means.shape[1]
    lo, hi = ratings.scale
    n_options = round(hi - lo) + 1
    icc1 = np.full(k1, np.nan)
    icck = np.full(k1, np.nan)
    alpha = np.full(k1, np.nan)
    degenerate = []
    for c in range(k1):
        sel = valid[:, c] & others_pairs(ratings)
        v, g = means[sel, c], ratings.pair_ratee[sel]
        if v.size and np.unique(g).size >= 2 and v.size > np.unique(g).size:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DegenerateRatingsWarning)
                res = icc(v, g)
            degenerate += caught
            icc1[c], icck[c] = res.icc1, res.icck
    # Alpha from the long table: complete pairs only, no dense pair × item matrix.
    answered = others & ~np.isnan(ratings.value)
    comp_row = np.where(
        np.full(ratings.n_ratings, k1 > 1), ratings.item_competency[ratings.item], -1
    )
    present = np.bincount(ratings.item[answered], minlength=ratings.n_items) > 0
    n_items_c = np.append(
        np.bincount(ratings.item_competency[present], minlength=k1 - 1) if k1 > 1 else [],
        present.sum(),
    ).astype(np.int64)
    for c in range(k1):
        col = c if c < k1 - 1 else -1
        rows = answered & ((comp_row == c) if c < k1 - 1 else True)
        kc = int(n_items_c[c])
        complete = counts[:, col] == kc
        rows &= complete[ratings.pair]
        n_obs = int(complete[others_pairs(ratings)].sum())
        if kc < 2 or n_obs < 2:
            continue
        it, pr, v = ratings.item[rows], ratings.pair[rows], ratings.value[rows]
        cnt_i = np.bincount(it, minlength=ratings.n_items)
        s1 = np.bincount(it, weights=v, minlength=ratings.n_items)
        s2 = np.bincount(it, weights=v * v, minlength=ratings.n_items)
        use = cnt_i > 1
        item_var = float(((s2[use] - s1[use] ** 2 / cnt_i[use]) / (cnt_i[use] - 1)).sum())
        total = np.bincount(pr, weights=v, minlength=ratings.n_pairs)[complete]
        total_var = float(total.var(ddof=1))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DegenerateRatingsWarning)
            alpha[c] = _alpha(kc, item_var, total_var)
        degenerate += caught
    if degenerate:
        warnings.warn(
            f"{len(degenerate)} reliability statistic(s) undefined because the ratings are "
            "constant; reported as NaN",
            DegenerateRatingsWarning,
            stacklevel=2,
        )
    rwg = _rwg_table(ratings, answered, valid, k1, n_options)
    return CompetencyReliability(
        competency_ids=(*ratings.competency_ids, ALL),
        icc1=icc1,
        icck=icck,
        alpha=alpha,
        raters_needed_70=np.where(np.isnan(icc1), np.nan, raters_needed(icc1, 0.7)),
        raters_needed_80=np.where(np.isnan(icc1), np.nan, raters_needed(icc1, 0.8)),
        rwg=rwg,
        n_options=n_options,
    )


def others_pairs(ratings: Ratings) -> NDArray[np.bool_]:
    """Pairs whose rater is not the ratee's self."""
    return np.asarray(ratings.pair_relationship != SELF)


def _rwg_table(
    ratings: Ratings,
    answered: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    k1: int,
    n_options: int,
) -> NDArray[np.float64]:
    """rwg(J) per ratee × competency from item variances among counting others."""
    n_ratee, n_items = ratings.n_ratees, ratings.n_items
    pair = ratings.pair
    keep = answered & valid[pair, -1]
    ratee = ratings.pair_ratee[pair[keep]].astype(np.int64)
    item = ratings.item[keep].astype(np.int64)
    v = ratings.value[keep]
    cell = ratee * n_items + item
    size = n_ratee * n_items
    cnt = np.bincount(cell, minlength=size).astype(np.float64)
    s1 = np.bincount(cell, weights=v, minlength=size)
    s2 = np.bincount(cell, weights=v * v, minlength=size)
    var = np.full(size, np.nan)
    np.divide(s2 - s1**2 / np.maximum(cnt, 1), cnt - 1, out=var, where=cnt > 1)
    var = np.clip(var, 0, None).reshape(n_ratee, n_items)
    ok = ~np.isnan(var)
    comp = ratings.item_competency if k1 > 1 else np.zeros(n_items, dtype=np.int32)
    out = np.full((n_ratee, k1), np.nan)
    for c in range(k1):
        cols = np.ones(n_items, dtype=bool) if c == k1 - 1 else comp == c
        j = ok[:, cols].sum(axis=1)
        total = np.where(ok[:, cols], var[:, cols], 0).sum(axis=1)
        mean_var = np.full(n_ratee, np.nan)
        np.divide(total, j, out=mean_var, where=j > 0)
        out[:, c] = _rwg(mean_var, j, n_options)
    return out
