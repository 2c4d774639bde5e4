"""Rater-effect model: ratee scores corrected for rater leniency, with honest uncertainty.

Plain means let a lenient peer group or one harsh rater move a person's result. The model
here separates what belongs to the ratee from what belongs to the rater, using raters who
rate several people, and shrinks both (BLUP) so that thin data never produces wild
corrections.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, sparse, stats

from scoring.aggregation import ALL, pair_competency_means
from scoring.design import DesignReport, design_from_pairs
from scoring.ratings import RELATIONSHIPS, SELF, Ratings
from scoring.warnings import (
    DegenerateRatingsWarning,
    DesignWarning,
    FallbackWarning,
    ScoringWarning,
    emit,
)

__all__ = ["Calibration", "RaterModelResult", "constant_raters", "fit_rater_model"]


@dataclass(frozen=True, eq=False)
class RaterModelResult:
    """Adjusted scores of the others' ratings, per ratee × competency (``ALL`` last).

    Attributes
    ----------
    method : {"adjusted", "raw"}
        ``"raw"`` when the design could not support the model (see ``warnings``).
    adjusted, se, ci_low, ci_high : ndarray, shape (n_ratees, n_competencies + 1)
        Adjusted score on the rating scale, its standard error and the interval at
        ``confidence``. NaN where the ratee has no counting rater. With ``method="raw"``
        these are the raw means and their rater-as-unit intervals.
    raw_mean, raw_se : ndarray, same shape
        Mean of the counting others' competency means (no adjustment) and its pooled
        rater-as-unit standard error (see :func:`scoring.aggregate`).
    n_raters : ndarray of int, same shape
        Counting others (raters, not item ratings).
    reliability : ndarray, shape (n_ratees,)
        Reliability of the ``ALL`` score, :math:`1-\\mathrm{PEV}_e/\\sigma^2_\\theta`
        (Spearman–Brown of ICC(1) when ``method="raw"``).
    rater_effect, rater_effect_se : ndarray, shape (n_raters,)
        Estimated leniency of each rater (positive = rates higher than an average rater)
        and its posterior SD; NaN for raters outside the fit. For diagnostics only —
        never show it in reports.
    relationship_effect : dict
        Shift of each relationship group relative to the average rater.
    item_effect : ndarray, shape (n_items,)
        Item mean minus grand mean (others' ratings).
    variance_components : dict
        ``ratee``, ``rater``, ``pair`` (rater × ratee) and ``item_residual`` variances.
    design : DesignReport
    warnings : tuple of str
    calibration : Calibration
        The parametric-bootstrap correction for rounding and clipping that was applied
        to ``adjusted`` and ``se`` (or why it was skipped).
    """

    ratee_ids: NDArray[Any]
    competency_ids: tuple[str, ...]
    rater_ids: NDArray[Any]
    method: str
    adjusted: NDArray[np.float64]
    se: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    raw_mean: NDArray[np.float64]
    raw_se: NDArray[np.float64]
    n_raters: NDArray[np.int64]
    reliability: NDArray[np.float64]
    rater_effect: NDArray[np.float64]
    rater_effect_se: NDArray[np.float64]
    relationship_effect: dict[str, float]
    item_effect: NDArray[np.float64]
    variance_components: dict[str, float]
    design: DesignReport
    confidence: float
    n_draws: int
    warnings: tuple[str, ...]
    calibration: Calibration

    @property
    def rater_severity(self) -> NDArray[np.float64]:
        """Severity = minus leniency (positive = rates lower than an average rater)."""
        return -self.rater_effect


def constant_raters(ratings: Ratings, *, min_ratings: int = 5) -> NDArray[np.bool_]:
    """Raters who gave one and the same value to all of at least ``min_ratings`` items."""
    ok = ~np.isnan(ratings.value)
    rater, v = ratings.rater[ok], ratings.value[ok]
    n = np.bincount(rater, minlength=ratings.n_raters).astype(np.float64)
    mean = np.bincount(rater, weights=v, minlength=ratings.n_raters) / np.maximum(n, 1)
    spread = np.bincount(rater, weights=(v - mean[rater]) ** 2, minlength=ratings.n_raters)
    return (n >= min_ratings) & (spread <= 1e-12 * max(1.0, float(np.abs(v).max(initial=0))))


def _onehot_within(
    rel: NDArray[np.int64], group: NDArray[np.int64], n_group: int, y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Relationship shifts from within-group contrasts, pair-weighted to mean zero.

    Regresses ``y`` on relationship dummies after removing group means, so that a
    ratee's true level cannot leak into the relationship effects.
    """
    codes = np.unique(rel)
    gamma = np.zeros(len(RELATIONSHIPS))
    if codes.size < 2:
        return gamma
    cnt = np.bincount(group, minlength=n_group).astype(np.float64)
    safe = np.maximum(cnt, 1)

    def within(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return x - (np.bincount(group, weights=x, minlength=n_group) / safe)[group]

    design = np.column_stack([within((rel == c).astype(np.float64)) for c in codes])
    coef, *_ = np.linalg.lstsq(design, within(y), rcond=None)
    n_rel = np.array([(rel == c).sum() for c in codes], dtype=np.float64)
    coef -= (coef * n_rel).sum() / n_rel.sum()
    gamma[codes] = coef
    return gamma


def _block_pcg(
    a: sparse.csr_matrix, b: NDArray[np.float64], *, tol: float, maxiter: int
) -> tuple[NDArray[np.float64], int, float]:
    """Jacobi-preconditioned conjugate gradients on all columns of ``b`` at once."""
    minv = 1.0 / a.diagonal()
    x = np.zeros_like(b)
    r = b.copy()
    z = minv[:, None] * r
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    bnorm = np.linalg.norm(b, axis=0)
    bnorm[bnorm == 0] = 1.0
    res = 0.0
    it = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for it in range(1, maxiter + 1):  # noqa: B007 - iteration count is returned
            ap = a @ p
            pap = np.einsum("ij,ij->j", p, ap)
            alpha = np.where(pap > 0, rz / pap, 0.0)
            x += alpha * p
            r -= alpha * ap
            res = float((np.linalg.norm(r, axis=0) / bnorm).max())
            if res < tol:
                break
            z = minv[:, None] * r
            rz_new = np.einsum("ij,ij->j", r, z)
            beta = np.where(rz > 0, rz_new / rz, 0.0)
            rz = rz_new
            p = z + beta * p
    return x, it, res


def _moments(
    m: NDArray[np.float64],
    n_items: NDArray[np.float64],
    ee: NDArray[np.int64],
    rr: NDArray[np.int64],
    n_ee: int,
    n_rr: int,
    s2_item: float,
) -> NDArray[np.float64]:
    """Method-of-moments variance components (ratee, rater, pair) of pair means.

    With pair means :math:`m_p=\\mu+\\theta_e+b_r+u_p`, :math:`\\operatorname{var} u_p=
    \\sigma^2_u+\\sigma^2_\\epsilon/k_p`, the within-ratee, within-rater and total sums of
    squares have expectations linear in :math:`(\\sigma^2_\\theta,\\sigma^2_b,\\sigma^2_u)`
    (Henderson 1953, method 1 adapted to one observation per cell); the system is solved
    under non-negativity.
    """
    n_p = m.size
    cnt_e = np.bincount(ee, minlength=n_ee).astype(np.float64)
    cnt_r = np.bincount(rr, minlength=n_rr).astype(np.float64)
    mean_e = np.bincount(ee, weights=m, minlength=n_ee) / np.maximum(cnt_e, 1)
    mean_r = np.bincount(rr, weights=m, minlength=n_rr) / np.maximum(cnt_r, 1)
    q1 = float(((m - mean_e[ee]) ** 2).sum())
    q2 = float(((m - mean_r[rr]) ** 2).sum())
    q3 = float(((m - m.mean()) ** 2).sum())
    inv_k = 1.0 / n_items
    a1 = n_p - float((cnt_e > 0).sum())
    a2 = n_p - float((cnt_r > 0).sum())
    c1 = float(((1 - 1 / cnt_e[ee]) * inv_k).sum())
    c2 = float(((1 - 1 / cnt_r[rr]) * inv_k).sum())
    c3 = float((1 - 1 / n_p) * inv_k.sum())
    lhs = np.array(
        [
            [0.0, a1, a1],
            [a2, 0.0, a2],
            [n_p - (cnt_e**2).sum() / n_p, n_p - (cnt_r**2).sum() / n_p, n_p - 1.0],
        ]
    )
    rhs = np.array([q1 - s2_item * c1, q2 - s2_item * c2, q3 - s2_item * c3])
    scale = np.abs(lhs).max(axis=1, keepdims=True)
    sol, _ = optimize.nnls(lhs / scale, rhs / scale[:, 0])
    return np.asarray(sol, dtype=np.float64)


def _raw_cells(
    means: NDArray[np.float64],
    valid: NDArray[np.bool_],
    pair_ratee: NDArray[np.integer],
    n_ratee: int,
    z: float,
) -> tuple[Any, ...]:
    """Raw others' mean per ratee × competency with pooled rater-as-unit SE."""
    k1 = means.shape[1]
    p_idx, c_idx = np.nonzero(valid)
    cell = pair_ratee[p_idx].astype(np.int64) * k1 + c_idx
    vals = means[p_idx, c_idx]
    size = n_ratee * k1
    n = np.bincount(cell, minlength=size)
    mean = np.full(size, np.nan)
    np.divide(np.bincount(cell, weights=vals, minlength=size), n, out=mean, where=n > 0)
    ss = np.bincount(cell, weights=(vals - mean[cell]) ** 2, minlength=size).reshape(n_ratee, k1)
    n2 = n.reshape(n_ratee, k1)
    df = np.clip(n2 - 1, 0, None).sum(axis=0)
    pooled = np.full(k1, np.nan)
    np.divide(ss.sum(axis=0), df, out=pooled, where=df > 0)
    se = np.full((n_ratee, k1), np.nan)
    np.sqrt(
        np.divide(pooled[None, :], n2, out=se, where=(n2 > 0) & (df[None] > 0)),
        out=se,
        where=(n2 > 0) & (df[None] > 0),
    )
    mean2 = mean.reshape(n_ratee, k1)
    return mean2, se, mean2 - z * se, mean2 + z * se, n2


def _icc1_spearman_brown(
    m: NDArray[np.float64], ee: NDArray[np.int64], n_ee: int
) -> NDArray[np.float64]:
    """Per-ratee reliability n·ICC(1)/(1+(n−1)·ICC(1)) of raw means (one-way ANOVA)."""
    cnt = np.bincount(ee, minlength=n_ee).astype(np.float64)
    k = int((cnt > 0).sum())
    out = np.full(n_ee, np.nan)
    if k < 2 or m.size <= k:
        return out
    mean_e = np.bincount(ee, weights=m, minlength=n_ee) / np.maximum(cnt, 1)
    msw = float(((m - mean_e[ee]) ** 2).sum()) / (m.size - k)
    msb = float((cnt * (mean_e - m.mean()) ** 2).sum()) / (k - 1)
    n0 = (m.size - (cnt**2).sum() / m.size) / (k - 1)
    denom = msb + (n0 - 1) * msw
    icc = max((msb - msw) / denom, 0.0) if denom > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = cnt * icc / (1 + (cnt - 1) * icc)
    out[cnt > 0] = rel[cnt > 0]
    return out


@dataclass(frozen=True)
class _Core:
    """Everything one fit of the model produces (private; see :func:`fit_rater_model`)."""

    fallback_reason: str | None
    design: DesignReport
    item_effect: NDArray[np.float64]
    raw: tuple[Any, ...]
    raw_means_fit: NDArray[np.float64]
    ee: NDArray[np.int64]
    s2: NDArray[np.float64]
    s2_item: float
    adjusted: NDArray[np.float64] | None = None
    se: NDArray[np.float64] | None = None
    reliability: NDArray[np.float64] | None = None
    rater_effect: NDArray[np.float64] | None = None
    rater_effect_se: NDArray[np.float64] | None = None
    relationship_effect: dict[str, float] | None = None
    #: Fitted intercept of every relationship code (absolute, item-centred scale).
    intercept: NDArray[np.float64] | None = None
    #: Intercept of the average relationship mix (the adjusted score's reference).
    ref: float = 0.0
    #: Floored (ratee, rater, pair) variances used in the mixed-model equations.
    s2_used: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Between-ratee variance of each competency's profile deviation.
    s2_profile: NDArray[np.float64] | None = None
    #: Mean item-centred pair mean and number of fitted pairs per relationship code.
    rel_mean: NDArray[np.float64] | None = None
    rel_count: NDArray[np.float64] | None = None


def _profile_devs(
    ratings: Ratings,
    valid: NDArray[np.bool_],
    adj_means: NDArray[np.float64],
    answered: NDArray[np.bool_],
    item_effect: NDArray[np.float64],
) -> Iterator[tuple[int, NDArray[np.intp], NDArray[np.int64], NDArray[np.float64]]]:
    """Per competency: pairs, their ratees and each rater's profile deviation.

    The deviation is the rater's competency mean minus their own overall mean for the
    ratee (relationship shifts removed within ratee): leniency and the rater's overall
    impression of the ratee cancel out.
    """
    k1 = valid.shape[1]
    if k1 == 1:
        return
    # Mean item effect of each competency's answered ratings, one pass over the rows.
    item_n = np.bincount(ratings.item[answered], minlength=ratings.n_items).astype(np.float64)
    comp_n = np.bincount(ratings.item_competency, weights=item_n, minlength=k1 - 1)
    comp_s = np.bincount(ratings.item_competency, weights=item_n * item_effect, minlength=k1 - 1)
    levels = np.zeros(k1 - 1)
    np.divide(comp_s, comp_n, out=levels, where=comp_n > 0)
    for c in range(k1 - 1):
        sel = np.flatnonzero(valid[:, c] & valid[:, -1])
        if sel.size == 0:
            continue
        level = float(levels[c])
        e_c = ratings.pair_ratee[sel].astype(np.int64)
        rel_c = ratings.pair_relationship[sel].astype(np.int64)
        dev = adj_means[sel, c] + level - adj_means[sel, -1]
        dev = dev - _onehot_within(rel_c, e_c, ratings.n_ratees, dev)[rel_c]
        yield c, sel, e_c, dev


def _fit_core(
    ratings: Ratings,
    v: NDArray[np.float64],
    *,
    min_item_fraction: float,
    min_ratees: int,
    min_pairs: int,
    n_draws: int,
    rng: np.random.Generator,
    tol: float,
    maxiter: int,
    z_crit: float,
    messages: list[str] | None,
    with_raw: bool = True,
    stats_only: bool = False,
) -> _Core:
    """Fit the model to values ``v`` on the design of ``ratings``.

    ``messages=None`` fits quietly (used for the calibration refits); ``stats_only``
    stops after the moment statistics (variance components, relationship means of the
    pair means), before the mixed-model equations.
    """

    def note(text: str, category: type[ScoringWarning]) -> None:
        if messages is not None:
            emit(messages, text, category)

    n_ratee, n_rater = ratings.n_ratees, ratings.n_raters
    k1 = len(ratings.competency_ids) + 1
    others = ratings.relationship != SELF
    answered = others & ~np.isnan(v)
    item_cnt = np.bincount(ratings.item[answered], minlength=ratings.n_items)
    item_sum = np.bincount(ratings.item[answered], weights=v[answered], minlength=ratings.n_items)
    grand = float(item_sum.sum() / item_cnt.sum()) if item_cnt.sum() else np.nan
    item_effect = np.zeros(ratings.n_items)
    np.subtract(item_sum / np.maximum(item_cnt, 1), grand, out=item_effect, where=item_cnt > 0)
    y_adj = v - item_effect[ratings.item]

    adj_means, counts, valid = pair_competency_means(
        ratings, y_adj, mask=others, min_item_fraction=min_item_fraction
    )
    if with_raw:
        raw_means, _, _ = pair_competency_means(
            ratings, v, mask=others, min_item_fraction=min_item_fraction
        )
        raw: tuple[Any, ...] = _raw_cells(raw_means, valid, ratings.pair_ratee, n_ratee, z_crit)
    else:  # calibration refits need the adjusted scores only
        raw_means, raw = adj_means, ()

    fit = np.flatnonzero(valid[:, -1])
    rr = ratings.pair_rater[fit].astype(np.int64)
    ee = ratings.pair_ratee[fit].astype(np.int64)
    design = design_from_pairs(rr, ee, n_rater, n_ratee, min_ratees=min_ratees, min_pairs=min_pairs)
    fallback_reason = None if design.adjustable else "; ".join(design.messages)
    m = adj_means[fit, -1]
    k_items = counts[fit, -1].astype(np.float64)
    if fallback_reason is None and float(np.ptp(m)) == 0.0:
        fallback_reason = "all raters' means are identical, so there is nothing to separate"

    s2 = np.zeros(3)
    s2_item = 0.0
    if fallback_reason is None:
        # Item-level residual variance from within-pair spread (pairs in the fit only).
        in_fit = np.zeros(ratings.n_pairs, dtype=bool)
        in_fit[fit] = True
        rows = answered & in_fit[ratings.pair]
        resid = y_adj[rows] - adj_means[ratings.pair[rows], -1]
        df_item = float((k_items - 1).sum())
        s2_item = float((resid**2).sum() / df_item) if df_item > 0 else 0.0
        rel = ratings.pair_relationship[fit].astype(np.int64)
        gamma_w = _onehot_within(rel, ee, n_ratee, m)
        s2 = _moments(m - gamma_w[rel], k_items, ee, rr, n_ratee, n_rater, s2_item)
        if s2[0] + s2[1] + s2[2] <= 0:
            fallback_reason = "the variance components could not be estimated"

    rel_all = ratings.pair_relationship[fit].astype(np.int64)
    rel_cnt = np.bincount(rel_all, minlength=len(RELATIONSHIPS)).astype(np.float64)
    rel_mean = np.zeros(len(RELATIONSHIPS))
    np.divide(
        np.bincount(rel_all, weights=m, minlength=len(RELATIONSHIPS)),
        rel_cnt,
        out=rel_mean,
        where=rel_cnt > 0,
    )
    base = {
        "rel_mean": rel_mean,
        "rel_count": rel_cnt,
        "design": design,
        "item_effect": item_effect,
        "raw": raw,
        "raw_means_fit": raw_means[fit, -1],
        "ee": ee,
        "s2": s2,
        "s2_item": s2_item,
    }
    if fallback_reason is not None:
        return _Core(fallback_reason=fallback_reason, **base)

    total_var = float(m.var()) or 1.0
    floor = 1e-6 * total_var
    s2_theta, s2_b, s2_u = (max(float(x), floor) for x in s2)
    if stats_only:  # the auxiliary statistics of the calibration's pilot replicate
        s2_profile = np.zeros(k1 - 1)
        for c, _, e_c, dev in _profile_devs(ratings, valid, adj_means, answered, item_effect):
            s2_profile[c] = _one_way_components(dev, e_c, n_ratee, fallback=(s2_u, s2_item))[0]
        return _Core(
            fallback_reason=None, s2_used=(s2_theta, s2_b, s2_u), s2_profile=s2_profile, **base
        )

    for text in design.messages:
        note(text, DesignWarning)

    # ---- mixed-model equations on pair means ------------------------------------------
    w = 1.0 / (s2_u + s2_item / k_items)
    rel_codes, rel_col = np.unique(ratings.pair_relationship[fit], return_inverse=True)
    n_fix = rel_codes.size
    ratee_in = np.bincount(ee, minlength=n_ratee) > 0
    rater_in = np.bincount(rr, minlength=n_rater) > 0
    ratee_col = np.cumsum(ratee_in) - 1
    rater_col = np.cumsum(rater_in) - 1
    n_e, n_r = int(ratee_in.sum()), int(rater_in.sum())
    n_unknown = n_fix + n_e + n_r
    n_fit = fit.size
    rows_z = np.repeat(np.arange(n_fit), 3)
    cols_z = np.column_stack([rel_col, n_fix + ratee_col[ee], n_fix + n_e + rater_col[rr]]).ravel()
    zmat = sparse.csr_matrix((np.ones(3 * n_fit), (rows_z, cols_z)), shape=(n_fit, n_unknown))
    zt = zmat.T.tocsr()
    prior = np.concatenate([np.zeros(n_fix), np.full(n_e, 1 / s2_theta), np.full(n_r, 1 / s2_b)])
    a = (zt @ sparse.diags(w) @ zmat + sparse.diags(prior)).tocsr()
    rhs = np.empty((n_unknown, n_draws + 1))
    rhs[:, 0] = zt @ (w * m)
    eps = rng.standard_normal((n_fit, n_draws)) * np.sqrt(w)[:, None]
    rhs[:, 1:] = zt @ eps
    rhs[:, 1:] += np.sqrt(prior)[:, None] * rng.standard_normal((n_unknown, n_draws))
    sol, _, res = _block_pcg(a, rhs, tol=tol, maxiter=maxiter)
    if res > 1e-3:
        note(
            f"the solver stopped before full convergence (relative residual {res:.1e})",
            DesignWarning,
        )
    est, draws = sol[:, 0], sol[:, 1:]

    rel_n = np.bincount(rel_col, minlength=n_fix).astype(np.float64)
    c_rel = rel_n / rel_n.sum()
    gamma = est[:n_fix]
    ref = float(c_rel @ gamma)
    ref_draw = c_rel @ draws[:n_fix]
    theta = est[n_fix : n_fix + n_e]
    theta_draw = draws[n_fix : n_fix + n_e]
    b_hat = est[n_fix + n_e :]
    b_draw = draws[n_fix + n_e :]
    intercept = np.full(len(RELATIONSHIPS), ref)
    intercept[rel_codes] = gamma

    adjusted = np.full((n_ratee, k1), np.nan)
    se = np.full((n_ratee, k1), np.nan)
    adjusted[ratee_in, -1] = ref + theta
    se[ratee_in, -1] = np.sqrt(((theta_draw + ref_draw) ** 2).mean(axis=1))
    reliability = np.full(n_ratee, np.nan)
    reliability[ratee_in] = np.clip(1 - (theta_draw**2).mean(axis=1) / s2_theta, 0, 1)
    rater_effect = np.full(n_rater, np.nan)
    rater_effect_se = np.full(n_rater, np.nan)
    rater_effect[rater_in] = b_hat
    rater_effect_se[rater_in] = np.sqrt((b_draw**2).mean(axis=1))
    relationship_effect = {
        RELATIONSHIPS[c]: float(g - ref) for c, g in zip(rel_codes, gamma, strict=True)
    }

    # ---- competencies: overall score plus the shrunk profile deviation ---------------
    s2_profile = np.zeros(k1 - 1)
    if k1 > 1:
        overall = adjusted[:, -1]
        pev_overall = se[:, -1] ** 2
        for c, _, e_c, dev in _profile_devs(ratings, valid, adj_means, answered, item_effect):
            est_c, var_c, _ = _one_way_blup(dev, e_c, n_ratee, fallback=(s2_u, s2_item))
            s2_profile[c] = _one_way_components(dev, e_c, n_ratee, fallback=(s2_u, s2_item))[0]
            has = ~np.isnan(est_c) & ~np.isnan(overall)
            adjusted[has, c] = overall[has] + est_c[has]
            se[has, c] = np.sqrt(var_c[has] + pev_overall[has])

    return _Core(
        fallback_reason=None,
        adjusted=adjusted,
        se=se,
        reliability=reliability,
        rater_effect=rater_effect,
        rater_effect_se=rater_effect_se,
        relationship_effect=relationship_effect,
        intercept=intercept,
        ref=ref,
        s2_used=(s2_theta, s2_b, s2_u),
        s2_profile=s2_profile,
        **base,
    )


@dataclass(frozen=True, eq=False)
class Calibration:
    """Parametric-bootstrap calibration of the observation process (rounding, clipping).

    Attributes
    ----------
    applied : bool
        Whether the adjusted scores and standard errors were corrected.
    reason : str
        Why the calibration was skipped (empty when applied).
    n_replicates, n_ratees : int
        Simulated replicates of the design and ratees scored per replicate.
    observation : str
        The observation process replayed: ``"round+clip"`` or ``"clip"``.
    bias : ndarray, shape (n_ratees, n_competencies + 1)
        Estimated bias subtracted from each adjusted score (zeros when not applied).
    se_ratio : tuple of float
        Realised error spread over reported standard error in the simulation,
        ``(overall, competency)``, after the bias correction.
    se_factor : tuple of float
        Factor applied to the standard errors, ``max(1, se_ratio)``.
    """

    applied: bool
    reason: str
    n_replicates: int
    n_ratees: int
    observation: str
    bias: NDArray[np.float64]
    se_ratio: tuple[float, float]
    se_factor: tuple[float, float]


def _skipped(reason: str, shape: tuple[int, int]) -> Calibration:
    return Calibration(
        applied=False,
        reason=reason,
        n_replicates=0,
        n_ratees=0,
        observation="",
        bias=np.zeros(shape),
        se_ratio=(np.nan, np.nan),
        se_factor=(1.0, 1.0),
    )


def _expected_observed(
    mu: NDArray[np.float64], sd: float, lo: float, hi: float, integer: bool
) -> NDArray[np.float64]:
    """E[obs(Y)] for Y ~ N(mu, sd²), obs = clip(round(·), lo, hi) or clip(·, lo, hi)."""
    sd = max(sd, 1e-9)
    if integer:
        out = np.full_like(mu, lo)
        for k in np.arange(lo + 0.5, hi):
            out += stats.norm.sf((k - mu) / sd)
        return out
    a, b = (lo - mu) / sd, (hi - mu) / sd
    cdf_a, cdf_b = stats.norm.cdf(a), stats.norm.cdf(b)
    return np.asarray(
        lo * cdf_a
        + hi * (1 - cdf_b)
        + mu * (cdf_b - cdf_a)
        + sd * (stats.norm.pdf(a) - stats.norm.pdf(b)),
        dtype=np.float64,
    )


def _poly_fit(
    x: NDArray[np.float64], y: NDArray[np.float64], degree: int
) -> tuple[NDArray[np.float64], float, float, float, float]:
    """Least-squares polynomial of ``y`` on standardised ``x``, with its support."""
    centre, scale = float(x.mean()), float(x.std()) or 1.0
    degree = int(min(degree, max(0, x.size // 200 - 1)))
    t = (x - centre) / scale
    coef, *_ = np.linalg.lstsq(np.vander(t, degree + 1), y, rcond=None)
    lo, hi = (float(q) for q in np.quantile(t, [0.005, 0.995]))
    return np.asarray(coef, dtype=np.float64), centre, scale, lo, hi


def _poly_eval(
    fit: tuple[NDArray[np.float64], float, float, float, float], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    coef, centre, scale, lo, hi = fit
    t = np.clip((x - centre) / scale, lo, hi)  # constant beyond the simulated range
    return np.asarray(np.polyval(coef, t), dtype=np.float64)


def _calibrate(
    ratings: Ratings,
    core: _Core,
    *,
    fit_kw: dict[str, Any],
    rng: np.random.Generator,
    min_ratees: int,
    target_ratees: int,
    max_replicates: int,
    n_draws: int,
    degree: int = 3,
) -> Calibration:
    """Parametric bootstrap of the fitted model through the observation process."""
    assert core.adjusted is not None
    assert core.intercept is not None
    assert core.s2_profile is not None
    shape = core.adjusted.shape
    n_ratee, k1 = shape
    n_fit_ratees = int(np.isfinite(core.adjusted[:, -1]).sum())
    if n_fit_ratees < min_ratees:
        return _skipped(
            f"only {n_fit_ratees} ratees in the fit (< {min_ratees}): too few to calibrate",
            shape,
        )
    lo, hi = ratings.scale
    others = ratings.relationship != SELF
    rows = np.flatnonzero(others & ~np.isnan(ratings.value))
    observed = ratings.value[rows]
    integer = (
        bool(np.all(observed == np.rint(observed))) and lo == np.rint(lo) and hi == np.rint(hi)
    )
    e_row = ratings.ratee[rows]
    r_row = ratings.rater[rows]
    p_row = ratings.pair[rows]
    i_row = ratings.item[rows]
    rel_row = ratings.pair_relationship[p_row]
    c_row = ratings.item_competency[i_row] if k1 > 1 else np.zeros(rows.size, dtype=np.int64)
    items = np.flatnonzero(np.bincount(i_row, minlength=ratings.n_items) > 0)
    item_comp = ratings.item_competency[items] if k1 > 1 else np.zeros(items.size, np.int64)
    n_per_comp = np.bincount(item_comp, minlength=max(k1 - 1, 1)).astype(np.float64)
    n_rep = int(min(max_replicates, max(1, -(-target_ratees // n_fit_ratees))))
    refit_kw = {**fit_kw, "tol": max(fit_kw["tol"], 1e-4)}

    def replicate(par: dict[str, Any], *, pilot: bool = False) -> tuple[_Core, NDArray[np.float64]]:
        """Simulate the design from ``par``, observe it like the data, refit it."""
        sd = np.sqrt(par["s2"])
        theta = rng.standard_normal(n_ratee) * sd[0]
        b = rng.standard_normal(ratings.n_raters) * sd[1]
        u = rng.standard_normal(ratings.n_pairs) * sd[2]
        profile = np.zeros((n_ratee, max(k1 - 1, 1)))
        if k1 > 1:
            profile = rng.standard_normal((n_ratee, k1 - 1)) * np.sqrt(par["profile"])[None, :]
            profile -= (profile @ n_per_comp / n_per_comp.sum())[:, None]
        latent = (
            par["intercept"][rel_row]
            + par["item"][i_row]
            + theta[e_row]
            + b[r_row]
            + u[p_row]
            + profile[e_row, c_row]
            + rng.standard_normal(rows.size) * sd[3]
        )
        if integer:
            np.rint(latent, out=latent)
        np.clip(latent, lo, hi, out=latent)
        v_sim = np.full(ratings.n_ratings, np.nan)
        v_sim[rows] = latent
        refit = _fit_core(
            ratings,
            v_sim,
            n_draws=n_draws,
            rng=rng,
            messages=None,
            with_raw=False,
            stats_only=pilot,
            **refit_kw,
        )
        if pilot:
            return refit, np.zeros(0)
        # Truth of the replicate: expected observed rating of an average rater.
        truth = np.zeros(shape)
        sd_obs = float(np.hypot(sd[2], sd[3]))
        for item, comp in zip(items, item_comp, strict=True):
            mu = par["ref"] + theta + par["item"][item] + (profile[:, comp] if k1 > 1 else 0.0)
            t_item = _expected_observed(mu, sd_obs, lo, hi, integer)
            truth[:, -1] += t_item / items.size
            if k1 > 1:
                truth[:, comp] += t_item / n_per_comp[comp]
        return refit, truth

    # Pilot replicate from the fitted parameters; one indirect-inference step then moves
    # the latent parameters so that the refit of simulated data reproduces the fit of
    # the real data (the fitted components are themselves attenuated by the clipping).
    def aux(c: _Core) -> tuple[NDArray[np.float64], ...]:
        assert c.rel_mean is not None
        assert c.s2_profile is not None
        return c.rel_mean, c.item_effect, np.array([*c.s2_used, c.s2_item]), c.s2_profile

    s2_fit = np.array([*core.s2_used, core.s2_item])
    pilot, _ = replicate(
        {
            "intercept": core.intercept,
            "ref": core.ref,
            "item": core.item_effect,
            "s2": s2_fit,
            "profile": core.s2_profile,
        },
        pilot=True,
    )
    if pilot.fallback_reason is not None:
        return _skipped(
            f"a simulated replicate could not be fitted: {pilot.fallback_reason}", shape
        )
    aux_real, aux_sim = aux(core), aux(pilot)
    assert core.rel_count is not None
    shift = aux_real[0] - aux_sim[0]  # relationship means lost to clipping
    weight = core.rel_count / core.rel_count.sum()

    def stretch(target: NDArray[np.float64], got: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(np.clip(target / np.maximum(got, 1e-12), 0.5, 2.0), dtype=np.float64)

    par = {
        "intercept": core.intercept + shift,
        "ref": core.ref + float(weight @ shift),
        "item": core.item_effect + (aux_real[1] - aux_sim[1]),
        "s2": s2_fit * stretch(aux_real[2], aux_sim[2]),
        "profile": core.s2_profile * stretch(aux_real[3], aux_sim[3]),
    }

    xs: list[list[NDArray[np.float64]]] = [[], []]
    errs: list[list[NDArray[np.float64]]] = [[], []]
    ses: list[list[NDArray[np.float64]]] = [[], []]
    for _ in range(n_rep):
        refit, truth = replicate(par)
        if refit.adjusted is None or refit.se is None:
            return _skipped(
                f"a simulated replicate could not be fitted: {refit.fallback_reason}", shape
            )
        for level, cols in enumerate((slice(k1 - 1, k1), slice(0, k1 - 1))):
            x = refit.adjusted[:, cols].ravel()
            ok = np.isfinite(x) & np.isfinite(refit.se[:, cols].ravel())
            xs[level].append(x[ok])
            errs[level].append((x - truth[:, cols].ravel())[ok])
            ses[level].append(refit.se[:, cols].ravel()[ok])

    bias = np.zeros(shape)
    ratio = [np.nan, np.nan]
    factor = [1.0, 1.0]
    for level, cols in enumerate((slice(k1 - 1, k1), slice(0, k1 - 1))):
        if level == 1 and k1 == 1:
            continue
        x, err, se_sim = (np.concatenate(a[level]) for a in (xs, errs, ses))
        if x.size < 50:
            continue
        poly = _poly_fit(x, err, degree)
        resid = err - _poly_eval(poly, x)
        ratio[level] = float(np.sqrt((resid**2).sum() / (se_sim**2).sum()))
        factor[level] = max(1.0, ratio[level])
        real = core.adjusted[:, cols]
        bias[:, cols] = np.where(np.isfinite(real), _poly_eval(poly, np.nan_to_num(real)), 0.0)
    return Calibration(
        applied=True,
        reason="",
        n_replicates=n_rep,
        n_ratees=n_fit_ratees,
        observation="round+clip" if integer else "clip",
        bias=bias,
        se_ratio=(ratio[0], ratio[1]),
        se_factor=(factor[0], factor[1]),
    )


def fit_rater_model(
    ratings: Ratings,
    *,
    confidence: float = 0.90,
    min_item_fraction: float = 0.5,
    min_ratees: int = 2,
    min_pairs: int = 10,
    n_draws: int = 64,
    random_state: int | np.random.Generator | None = 0,
    tol: float = 1e-6,
    maxiter: int = 2000,
    calibrate: bool = True,
    calibration_min_ratees: int = 200,
    calibration_ratees: int = 6000,
) -> RaterModelResult:
    """Fit the additive rater-effect model to the others' ratings and score every ratee.

    Parameters
    ----------
    ratings : Ratings
        Self ratings are ignored (they are reported raw beside the adjusted score).
    confidence : float, default 0.90
        Level of the intervals.
    min_item_fraction : float, default 0.5
        A rater counts for a competency if they answered this share of its items.
    min_ratees, min_pairs : int
        Design thresholds, see :func:`scoring.check_design`.
    n_draws : int, default 64
        Posterior draws used for the standard errors (more = smoother SEs).
    random_state : int, Generator or None, default 0
        Seed of the draws; the default makes results reproducible.
    tol, maxiter : float, int
        Conjugate-gradient stopping rule.
    calibrate : bool, default True
        Correct the adjusted scores and standard errors for the observation process
        (rounding to the scale's integers, clipping at its ends) by a parametric
        bootstrap, see Notes and ``result.calibration``. Costs a pilot simulation plus
        one extra fit per replicate (about +0.7 s for 3.2 M ratings).
    calibration_min_ratees : int, default 200
        Below this many ratees in the fit the calibration is skipped (its Monte Carlo
        estimates would be noisier than the bias it removes); ``result.calibration``
        says so.
    calibration_ratees : int, default 6000
        Simulated ratees aimed at: ``ceil(calibration_ratees / n_ratees)`` replicates,
        at most 4.

    Returns
    -------
    RaterModelResult

    Notes
    -----
    Ratings :math:`y_{rei}` of rater :math:`r` on ratee :math:`e` and item :math:`i`
    follow

    .. math:: y_{rei} = \\mu + \\alpha_i + \\gamma_{g(r,e)} + \\theta_e + b_r + u_{re}
              + \\epsilon_{rei},

    with item effects :math:`\\alpha_i`, relationship effects :math:`\\gamma_g` (fixed),
    ratee effects :math:`\\theta_e\\sim N(0,\\sigma^2_\\theta)`, rater leniency
    :math:`b_r\\sim N(0,\\sigma^2_b)`, a rater × ratee impression
    :math:`u_{re}\\sim N(0,\\sigma^2_u)` (halo: it is shared by all items the rater
    answered about that ratee) and item noise :math:`\\epsilon\\sim N(0,\\sigma^2_\\epsilon)`.

    Because :math:`u_{re}` is shared across items, the unit of information is the
    rater: the model is fitted to pair means :math:`m_{re}` (item-centred) with variance
    :math:`v_{re}=\\sigma^2_u+\\sigma^2_\\epsilon/k_{re}`, never to single item ratings.
    :math:`\\sigma^2_\\epsilon` comes from within-pair item residuals, the other
    components from the method of moments (Henderson 1953). The mixed-model equations
    (Henderson 1975)

    .. math:: (Z^\\top W Z + \\Lambda)\\,\\hat x = Z^\\top W m,\\quad
              \\Lambda=\\operatorname{diag}(0,\\sigma_\\theta^{-2},\\sigma_b^{-2})

    are solved by preconditioned conjugate gradients (sparse; one row per pair). The
    BLUPs :math:`\\hat\\theta_e,\\hat b_r` are shrunk towards zero by exactly the amount
    the data cannot support. The adjusted score is
    :math:`\\hat\\mu+\\bar\\gamma+\\hat\\theta_e`, the score an average rater of the
    average relationship mix would give. Its standard error is the posterior SD, from
    ``n_draws`` perturbation draws :math:`x_s=(Z^\\top WZ+\\Lambda)^{-1}(Z^\\top W^{1/2}
    \\varepsilon_s+\\Lambda^{1/2}\\eta_s)`, which have covariance
    :math:`(Z^\\top WZ+\\Lambda)^{-1}` exactly (Papandreou & Yuille 2010); it therefore
    includes the uncertainty of every rater's leniency, correlations included.

    Per competency :math:`c`, each rater's (item-centred) competency mean minus their
    own overall mean for the ratee, :math:`d_{rec}`, is free of the rater's leniency and
    overall impression; its ratee mean is shrunk by a one-way random-effects BLUP over
    raters, :math:`\\hat\\delta_{ec}=\\hat\\mu_c+\\lambda_{ec}(\\bar d_{ec}-\\hat\\mu_c)`,
    :math:`\\lambda=n\\sigma^2_\\delta/(n\\sigma^2_\\delta+\\sigma^2_d)`. The score is
    :math:`s_e+\\hat\\delta_{ec}` (:math:`s_e` the adjusted overall score) with variance
    :math:`\\mathrm{PEV}(s_e)+\\mathrm{PEV}(\\hat\\delta_{ec})`. Raters count for a
    competency score only if they also count for the overall score.

    **Calibration of the observation process.** The model is additive on the rating
    scale, but ratings are rounded and clipped at the scale ends. Near the ceiling a
    lenient rater's ratings are cut off, so after removing the estimated leniencies the
    average over raters of different leniency falls short of what an average rater
    would give (Jensen: the clipped response is concave there), and the realised error
    spread exceeds the posterior SD. Both are properties of the estimator under the
    observation process, so they are estimated by a parametric bootstrap (Efron &
    Tibshirani 1993, §10 on bootstrap bias estimation; Davison & Hinkley 1997, §2.2
    and §3.8 for random-effects models): on the actual design (raters, ratees,
    relationships, items, N/A pattern), fresh effects :math:`\\theta^*_e, b^*_r, u^*_{re},
    \\delta^*_{ec}, \\epsilon^*` are drawn from normal distributions, added to relationship
    intercepts and item effects, rounded (if all observed ratings are integers) and
    clipped to the scale exactly as the data were, and the model is refitted.

    The fitted components are themselves estimated on the already clipped scale, so
    simulating from them would clip twice and understate the problem. The simulation
    parameters are therefore set by one indirect-inference step (Gouriéroux, Monfort &
    Renault 1993): a pilot replicate from the fitted values gives the moment statistics
    the estimator would report (relationship means of the pair means, item effects,
    variance components, competency-profile variances); the latent locations are moved
    by the real-minus-pilot difference and the latent variances multiplied by the
    real/pilot ratio (bounded to [0.5, 2]), so that simulated data reproduce the
    statistics of the real data. The replicate's truth is the estimand itself, the
    expected observed rating of an average rater,
    :math:`\\tfrac1{|I|}\\sum_i E[\\mathrm{obs}(\\mu^*_{\\rm ref}+\\alpha^*_i+\\theta^*_e+
    \\delta^*_{e,c(i)}+N(0,\\sigma^{*2}_u+\\sigma^{*2}_\\epsilon))]` (closed form).
    The bias :math:`E[\\hat s-s\\mid\\hat s]` is estimated as a cubic polynomial in the
    refitted score (overall and competency scores separately; held constant beyond the
    0.5–99.5 % range of the simulated scores) and subtracted from the adjusted scores;
    the standard errors are multiplied by :math:`\\max(1,\\,\\sqrt{\\sum(\\hat s-s-
    \\widehat{\\rm bias})^2/\\sum\\mathrm{SE}^2})`, the realised error spread over the
    reported SE in the replicates (never narrowed: a ratio below one is within Monte
    Carlo error of the model-based SE). Only the fitted model and the observed design
    enter the simulation. ``ceil(calibration_ratees / n_ratees)`` replicates (at most 4)
    keep the Monte Carlo error of the correction well below the standard errors; with
    fewer than ``calibration_min_ratees`` ratees the calibration is skipped and
    ``result.calibration.reason`` says why.

    If the design cannot support the model (see :func:`scoring.check_design`), raw means
    with pooled rater-as-unit standard errors are returned, ``method="raw"``, and a
    :class:`~scoring.FallbackWarning` is emitted.

    References
    ----------
    Henderson, C. R. (1953). Estimation of variance and covariance components.
    *Biometrics* 9, 226–252.
    Henderson, C. R. (1975). Best linear unbiased estimation and prediction under a
    selection model. *Biometrics* 31, 423–447.
    Papandreou, G. & Yuille, A. (2010). Gaussian sampling by local perturbations. *NIPS*.
    Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman &
    Hall, ch. 10 (bias estimation and bias correction).
    Davison, A. C. & Hinkley, D. V. (1997). *Bootstrap Methods and their Application*.
    Cambridge University Press.
    Gouriéroux, C., Monfort, A. & Renault, E. (1993). Indirect inference. *Journal of
    Applied Econometrics* 8, S85–S118.
    Hoffman, B. J., Lance, C. E., Bynum, B. & Gentry, W. A. (2010). Rater source effects
    are alive and well after all. *Personnel Psychology* 63, 119–151.

    Examples
    --------
    >>> import numpy as np
    >>> from scoring import Ratings, fit_rater_model
    >>> rng = np.random.default_rng(1)
    >>> rater = np.repeat(np.arange(40), 5); ratee = (rater + np.tile(np.arange(5), 40)) % 40
    >>> v = np.clip(3 + rng.normal(size=40)[ratee] * .5
    ...             + rng.normal(size=40)[rater] * .5 + rng.normal(size=200), 1, 5)
    >>> fit = fit_rater_model(Ratings.from_arrays(rater, ratee, ["q"] * 200,
    ...                                           ["peer"] * 200, v))
    >>> fit.method, fit.adjusted.shape
    ('adjusted', (40, 1))
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_draws < 8:
        raise ValueError(f"n_draws must be at least 8, got {n_draws}")
    rng = np.random.default_rng(random_state)
    z_crit = float(stats.norm.ppf(0.5 + confidence / 2))
    messages: list[str] = []
    n_ratee, n_rater = ratings.n_ratees, ratings.n_raters
    k1 = len(ratings.competency_ids) + 1
    comp_ids = (*ratings.competency_ids, ALL)

    const = constant_raters(ratings)
    if const.any():
        emit(
            messages,
            f"{int(const.sum())} rater(s) gave the same score to every item they rated; "
            "they are kept, and their leniency is estimated like anyone else's",
            DegenerateRatingsWarning,
        )

    fit_kw: dict[str, Any] = {
        "min_item_fraction": min_item_fraction,
        "min_ratees": min_ratees,
        "min_pairs": min_pairs,
        "tol": tol,
        "maxiter": maxiter,
        "z_crit": z_crit,
    }
    core = _fit_core(ratings, ratings.value, n_draws=n_draws, rng=rng, messages=messages, **fit_kw)
    raw = core.raw
    n_cells = raw[4]

    if core.fallback_reason is not None:
        emit(messages, f"raw means reported: {core.fallback_reason}", FallbackWarning)
        with np.errstate(divide="ignore", invalid="ignore"):
            reliability = _icc1_spearman_brown(core.raw_means_fit, core.ee, n_ratee)
        nan_r = np.full(n_rater, np.nan)
        return RaterModelResult(
            ratee_ids=ratings.ratee_ids,
            competency_ids=comp_ids,
            rater_ids=ratings.rater_ids,
            method="raw",
            adjusted=raw[0],
            se=raw[1],
            ci_low=raw[2],
            ci_high=raw[3],
            raw_mean=raw[0],
            raw_se=raw[1],
            n_raters=n_cells.astype(np.int64),
            reliability=reliability,
            rater_effect=nan_r,
            rater_effect_se=nan_r.copy(),
            relationship_effect={},
            item_effect=core.item_effect,
            variance_components={
                "ratee": np.nan,
                "rater": np.nan,
                "pair": np.nan,
                "item_residual": core.s2_item,
            },
            design=core.design,
            confidence=confidence,
            n_draws=0,
            warnings=tuple(messages),
            calibration=_skipped("raw means reported", (n_ratee, k1)),
        )

    assert core.adjusted is not None
    assert core.se is not None
    assert core.reliability is not None
    assert core.rater_effect is not None
    assert core.rater_effect_se is not None
    adjusted, se = core.adjusted, core.se
    if calibrate:
        calibration = _calibrate(
            ratings,
            core,
            fit_kw=fit_kw,
            rng=rng,
            min_ratees=calibration_min_ratees,
            target_ratees=calibration_ratees,
            max_replicates=4,
            n_draws=8,
        )
        if calibration.applied:
            adjusted = adjusted - calibration.bias
            factor = np.full(k1, calibration.se_factor[1])
            factor[-1] = calibration.se_factor[0]
            se = se * factor[None, :]
    else:
        calibration = _skipped("calibration switched off (calibrate=False)", adjusted.shape)

    ci_low = adjusted - z_crit * se
    ci_high = adjusted + z_crit * se
    assert core.relationship_effect is not None
    s2 = core.s2
    return RaterModelResult(
        ratee_ids=ratings.ratee_ids,
        competency_ids=comp_ids,
        rater_ids=ratings.rater_ids,
        method="adjusted",
        adjusted=adjusted,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        raw_mean=raw[0],
        raw_se=raw[1],
        n_raters=n_cells.astype(np.int64),
        reliability=core.reliability,
        rater_effect=core.rater_effect,
        rater_effect_se=core.rater_effect_se,
        relationship_effect=core.relationship_effect,
        item_effect=core.item_effect,
        variance_components={
            "ratee": float(s2[0]),
            "rater": float(s2[1]),
            "pair": float(s2[2]),
            "item_residual": core.s2_item,
        },
        design=core.design,
        confidence=confidence,
        n_draws=n_draws,
        warnings=tuple(messages),
        calibration=calibration,
    )


def _one_way_blup(
    z: NDArray[np.float64],
    group: NDArray[np.int64],
    n_group: int,
    *,
    fallback: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """BLUP of group levels in a one-way random-effects model, unbalanced ANOVA moments.

    :math:`\\hat\\sigma^2_\\epsilon=MS_W`, :math:`\\hat\\sigma^2_\\theta=(MS_B-MS_W)/n_0`
    with :math:`n_0=(N-\\sum n_e^2/N)/(k-1)` (Searle et al. 1992, §3.6). Returns the
    estimate, its prediction error variance (including that of the grand mean) and the
    shrinkage factor :math:`\\lambda_e=n_e\\sigma^2_\\theta/(n_e\\sigma^2_\\theta+
    \\sigma^2_\\epsilon)`.
    """
    cnt, mean_g, s2_t, s2_e = _one_way_moments(z, group, n_group, fallback=fallback)
    k = int((cnt > 0).sum())
    n_tot = z.size
    mu = float(z.mean())
    lam = np.zeros(n_group)
    np.divide(cnt * s2_t, cnt * s2_t + s2_e, out=lam, where=cnt > 0)
    est = np.where(cnt > 0, mu + lam * (mean_g - mu), np.nan)
    var_mu = (s2_t + s2_e / max(n_tot / max(k, 1), 1.0)) / max(k, 1)
    pev = s2_t * (1 - lam) + (1 - lam) ** 2 * var_mu
    pev[cnt == 0] = np.nan
    return est, pev, lam


def _one_way_moments(
    z: NDArray[np.float64],
    group: NDArray[np.int64],
    n_group: int,
    *,
    fallback: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Group counts, group means and the ANOVA variance components of :func:`_one_way_blup`."""
    cnt = np.bincount(group, minlength=n_group).astype(np.float64)
    k = int((cnt > 0).sum())
    n_tot = z.size
    mean_g = np.full(n_group, np.nan)
    np.divide(np.bincount(group, weights=z, minlength=n_group), cnt, out=mean_g, where=cnt > 0)
    mu = float(z.mean())
    if k >= 2 and n_tot > k:
        msw = float(((z - mean_g[group]) ** 2).sum()) / (n_tot - k)
        msb = float((cnt[cnt > 0] * (mean_g[cnt > 0] - mu) ** 2).sum()) / (k - 1)
        n0 = (n_tot - (cnt**2).sum() / n_tot) / (k - 1)
        s2_t, s2_e = max((msb - msw) / n0, 0.0), msw
    else:
        s2_t, s2_e = fallback
    if s2_t <= 0:
        s2_t = 1e-6 * max(s2_e, 1e-12)
    return cnt, mean_g, float(s2_t), float(s2_e)


def _one_way_components(
    z: NDArray[np.float64],
    group: NDArray[np.int64],
    n_group: int,
    *,
    fallback: tuple[float, float],
) -> tuple[float, float]:
    """Between- and within-group variance of :func:`_one_way_blup`."""
    _, _, s2_t, s2_e = _one_way_moments(z, group, n_group, fallback=fallback)
    return s2_t, s2_e
