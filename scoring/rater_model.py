"""Rater-effect model: ratee scores corrected for rater leniency, with honest uncertainty.

Plain means let a lenient peer group or one harsh rater move a person's result. The model
here separates what belongs to the ratee from what belongs to the rater, using raters who
rate several people, and shrinks both (BLUP) so that thin data never produces wild
corrections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, sparse, stats

from scoring.aggregation import ALL, pair_competency_means
from scoring.design import DesignReport, design_from_pairs
from scoring.ratings import RELATIONSHIPS, SELF, Ratings
from scoring.warnings import DegenerateRatingsWarning, DesignWarning, FallbackWarning, emit

__all__ = ["RaterModelResult", "constant_raters", "fit_rater_model"]


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

    v = ratings.value
    others = ratings.relationship != SELF
    answered = others & ~np.isnan(v)
    item_cnt = np.bincount(ratings.item[answered], minlength=ratings.n_items)
    item_sum = np.bincount(ratings.item[answered], weights=v[answered], minlength=ratings.n_items)
    grand = float(item_sum.sum() / item_cnt.sum()) if item_cnt.sum() else np.nan
    item_effect = np.zeros(ratings.n_items)
    np.subtract(item_sum / np.maximum(item_cnt, 1), grand, out=item_effect, where=item_cnt > 0)
    y_adj = v - item_effect[ratings.item]

    raw_means, _, valid = pair_competency_means(
        ratings, mask=others, min_item_fraction=min_item_fraction
    )
    adj_means, counts, _ = pair_competency_means(
        ratings, y_adj, mask=others, min_item_fraction=min_item_fraction
    )
    raw = _raw_cells(raw_means, valid, ratings.pair_ratee, n_ratee, z_crit)
    n_cells = raw[4]

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

    if fallback_reason is not None:
        emit(messages, f"raw means reported: {fallback_reason}", FallbackWarning)
        with np.errstate(divide="ignore", invalid="ignore"):
            reliability = _icc1_spearman_brown(raw_means[fit, -1], ee, n_ratee)
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
            item_effect=item_effect,
            variance_components={
                "ratee": np.nan,
                "rater": np.nan,
                "pair": np.nan,
                "item_residual": s2_item,
            },
            design=design,
            confidence=confidence,
            n_draws=0,
            warnings=tuple(messages),
        )

    for text in design.messages:
        emit(messages, text, DesignWarning)

    # ---- mixed-model equations on pair means ------------------------------------------
    total_var = float(m.var()) or 1.0
    floor = 1e-6 * total_var
    s2_theta, s2_b, s2_u = (max(float(x), floor) for x in s2)
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
        emit(
            messages,
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
    if k1 > 1:
        overall = adjusted[:, -1]
        pev_overall = se[:, -1] ** 2
        comp_of_row = ratings.item_competency[ratings.item]
        for c in range(k1 - 1):
            sel = np.flatnonzero(valid[:, c] & valid[:, -1])
            if sel.size == 0:
                continue
            in_c = answered & (comp_of_row == c)
            level = float(item_effect[ratings.item[in_c]].mean()) if in_c.any() else 0.0
            e_c = ratings.pair_ratee[sel].astype(np.int64)
            rel_c = ratings.pair_relationship[sel].astype(np.int64)
            # Rater's competency mean minus their own overall mean: leniency and the
            # rater's overall impression of the ratee cancel out.
            dev = adj_means[sel, c] + level - adj_means[sel, -1]
            dev = dev - _onehot_within(rel_c, e_c, n_ratee, dev)[rel_c]
            est_c, var_c, _ = _one_way_blup(dev, e_c, n_ratee, fallback=(s2_u, s2_item))
            has = ~np.isnan(est_c) & ~np.isnan(overall)
            adjusted[has, c] = overall[has] + est_c[has]
            se[has, c] = np.sqrt(var_c[has] + pev_overall[has])

    ci_low = adjusted - z_crit * se
    ci_high = adjusted + z_crit * se
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
        reliability=reliability,
        rater_effect=rater_effect,
        rater_effect_se=rater_effect_se,
        relationship_effect=relationship_effect,
        item_effect=item_effect,
        variance_components={
            "ratee": float(s2[0]),
            "rater": float(s2[1]),
            "pair": float(s2[2]),
            "item_residual": s2_item,
        },
        design=design,
        confidence=confidence,
        n_draws=n_draws,
        warnings=tuple(messages),
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
    lam = np.zeros(n_group)
    np.divide(cnt * s2_t, cnt * s2_t + s2_e, out=lam, where=cnt > 0)
    est = np.where(cnt > 0, mu + lam * (mean_g - mu), np.nan)
    var_mu = (s2_t + s2_e / max(n_tot / max(k, 1), 1.0)) / max(k, 1)
    pev = s2_t * (1 - lam) + (1 - lam) ** 2 * var_mu
    pev[cnt == 0] = np.nan
    return est, pev, lam
