"""Reliability statistics against published values and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scoring import (
    DegenerateRatingsWarning,
    competency_reliability,
    cronbach_alpha,
    icc,
    icc_shrout_fleiss,
    raters_needed,
    rwg_j,
    spearman_brown,
)

#: Shrout & Fleiss (1979), Table 2: 6 targets (rows) rated by 4 judges (columns).
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def test_shrout_fleiss_table_4_values():
    # Published in Shrout & Fleiss (1979), Table 4 (two decimals).
    res = icc_shrout_fleiss(SHROUT_FLEISS)
    assert round(res.icc1_1, 2) == 0.17
    assert round(res.icc2_1, 2) == 0.29
    assert round(res.icc3_1, 2) == 0.71
    assert round(res.icc1_k, 2) == 0.44
    assert round(res.icc2_k, 2) == 0.62
    assert round(res.icc3_k, 2) == 0.91


def test_one_way_icc_equals_shrout_fleiss_on_balanced_data():
    targets = np.repeat(np.arange(6), 4)
    res = icc(SHROUT_FLEISS.ravel(), targets)
    sf = icc_shrout_fleiss(SHROUT_FLEISS)
    assert res.icc1 == pytest.approx(sf.icc1_1)
    assert res.icck == pytest.approx(sf.icc1_k)
    assert res.n0 == 4


def test_unbalanced_icc_against_scipy_f_oneway():
    # Independent computation: F from scipy.stats.f_oneway, then ICC(k) = 1 - 1/F and
    # ICC(1) = (F - 1) / (F + n0 - 1) (Bliese 2000, eq. 3).
    rng = np.random.default_rng(0)
    sizes = [2, 3, 5, 4, 7, 3]
    groups = [rng.normal(mu, 1, n) for mu, n in zip(rng.normal(0, 1, 6), sizes, strict=True)]
    f = stats.f_oneway(*groups).statistic
    n = sum(sizes)
    n0 = (n - sum(s * s for s in sizes) / n) / (len(sizes) - 1)
    res = icc(np.concatenate(groups), np.repeat(np.arange(6), sizes))
    assert res.f == pytest.approx(f)
    assert res.icck == pytest.approx(1 - 1 / f)
    assert res.icc1 == pytest.approx((f - 1) / (f + n0 - 1))
    assert res.pvalue == pytest.approx(stats.f_oneway(*groups).pvalue)


def test_icc_nan_policy_and_errors():
    res = icc([1, 2, np.nan, 4, 5, 7], [0, 0, 0, 1, 1, 1])
    assert res.n_ratings == 5
    with pytest.raises(ValueError, match="NaN"):
        icc([1, np.nan], [0, 1], nan_policy="raise")
    with pytest.raises(ValueError, match="two targets"):
        icc([1, 2], [0, 0])


def test_icc_of_constant_data_warns_and_is_nan():
    with pytest.warns(DegenerateRatingsWarning):
        res = icc([3, 3, 3, 3], [0, 0, 1, 1])
    assert np.isnan(res.icc1)


def test_cronbach_alpha_equals_icc3k_of_shrout_fleiss():
    # Alpha with judges as items is ICC(3,k) (McGraw & Wong 1996); S&F report .91.
    res = cronbach_alpha(SHROUT_FLEISS)
    assert res.alpha == pytest.approx(icc_shrout_fleiss(SHROUT_FLEISS).icc3_k)
    assert round(res.alpha, 2) == 0.91


def test_cronbach_alpha_by_hand_and_listwise_deletion():
    # Item variances 10/3 and 5/3, total variance 29/3: alpha = 2 (1 - 15/29).
    x = [[1, 2], [2, 3], [4, 4], [5, 5], [np.nan, 1]]
    res = cronbach_alpha(x)
    assert res.alpha == pytest.approx(2 * (1 - 15 / 29))
    assert res.n_observations == 4
    with pytest.warns(DegenerateRatingsWarning):
        assert np.isnan(cronbach_alpha([[3, 3], [3, 3]]).alpha)


def test_rwg_j_by_hand():
    # James, Demaree & Wolf (1984) eq. for rwg(J); sigma2_EU = (A^2 - 1) / 12 = 2 for A = 5.
    x = np.array([[4, 4, 5], [4, 5, 5], [5, 4, 4]], dtype=float)
    s2 = x.var(axis=0, ddof=1).mean()  # 1/3
    j = 3
    expected = j * (1 - s2 / 2) / (j * (1 - s2 / 2) + s2 / 2)
    assert rwg_j(x) == pytest.approx(expected)
    assert rwg_j([[3, 3], [3, 3]]) == 1.0
    assert rwg_j([[1, 5], [5, 1], [1, 5], [5, 1]]) == 0.0  # worse than random: set to 0


def test_spearman_brown_reproduces_shrout_fleiss_icc1k():
    sf = icc_shrout_fleiss(SHROUT_FLEISS)
    assert spearman_brown(sf.icc1_1, 4) == pytest.approx(sf.icc1_k)


def test_raters_needed():
    assert raters_needed(0.3, 0.8) == 10  # 0.8 * 0.7 / (0.3 * 0.2) = 9.33
    assert raters_needed(0.5, 0.7) == 3  # 2.33
    # Exactly 4 (0.8 · 0.5 / (0.5 · 0.2)), though the floating-point sum is 4.000000000000001.
    assert raters_needed(0.5, 0.8) == 4
    assert raters_needed(-0.1, 0.7) == np.inf
    with pytest.raises(ValueError, match="target"):
        raters_needed(0.3, 1.2)


def test_competency_reliability_on_a_simulated_survey(make_survey):
    rel = competency_reliability(make_survey(n=120, round_to_scale=True).ratings)
    assert rel.competency_ids == ("C0", "C1", "ALL")
    assert ((rel.icc1 > 0) & (rel.icc1 < 1)).all()
    assert (rel.icck > rel.icc1).all()
    assert (rel.alpha > 0.5).all()
    assert (rel.raters_needed_80 >= rel.raters_needed_70).all()
    assert rel.rwg.shape == (120, 3)
    assert np.nanmin(rel.rwg) >= 0
    assert np.nanmax(rel.rwg) <= 1
