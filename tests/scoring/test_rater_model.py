"""Rater-effect model: recovery of planted effects, honest intervals, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse, stats
from scipy.sparse import linalg

from scoring import (
    DegenerateRatingsWarning,
    DesignWarning,
    FallbackWarning,
    Ratings,
    fit_rater_model,
)
from scoring.rater_model import _block_pcg, _expected_observed, _one_way_blup


def test_recovers_planted_leniency_and_beats_raw_means(make_survey):
    sim = make_survey(n=300, leniency_sd=0.5)
    fit = fit_rater_model(sim.ratings)
    assert fit.method == "adjusted"
    truth = sim.true_score
    raw_err = np.sqrt(np.mean((fit.raw_mean[:, -1] - truth) ** 2))
    adj_err = np.sqrt(np.mean((fit.adjusted[:, -1] - truth) ** 2))
    assert adj_err < 0.8 * raw_err
    assert np.corrcoef(fit.rater_effect, sim.leniency)[0, 1] > 0.85
    np.testing.assert_allclose(fit.rater_severity, -fit.rater_effect)


def test_variance_components_are_recovered(make_survey):
    # Simulated: ratee SD 0.5, rater SD 0.4, impression SD 0.25, item noise SD 0.5.
    fit = fit_rater_model(make_survey(n=600, seed=3).ratings)
    vc = fit.variance_components
    assert vc["ratee"] == pytest.approx(0.25, rel=0.25)
    assert vc["rater"] == pytest.approx(0.16, rel=0.25)
    assert vc["pair"] == pytest.approx(0.0625, rel=0.4)
    assert vc["item_residual"] == pytest.approx(0.25, rel=0.15)


def test_intervals_cover_the_truth_about_as_promised(make_survey):
    hits = []
    for seed in range(3):
        sim = make_survey(n=300, seed=seed)
        fit = fit_rater_model(sim.ratings)
        hits.append(np.abs(fit.adjusted[:, -1] - sim.true_score) <= 1.6449 * fit.se[:, -1])
    coverage = np.mean(hits)
    assert 0.84 <= coverage <= 0.96


def test_intervals_treat_the_rater_as_unit(make_survey):
    # Doubling the number of items shrinks item noise, not rater disagreement: the SE
    # must stay well above what counting item ratings as independent would give.
    few = fit_rater_model(make_survey(n=200, n_items=4).ratings)
    many = fit_rater_model(make_survey(n=200, n_items=40).ratings)
    ratio = np.nanmean(many.se[:, -1]) / np.nanmean(few.se[:, -1])
    assert ratio > 0.6  # item-as-unit would give about sqrt(4/40) = 0.32


def test_self_ratings_do_not_move_the_adjusted_score(make_survey):
    r = make_survey(n=80).ratings
    fit = fit_rater_model(r)
    flipped = r.value.copy()
    is_self = r.relationship == 0
    flipped[is_self] = 6 - flipped[is_self]
    other = Ratings.from_codes(
        r.rater,
        r.ratee,
        r.item,
        r.relationship,
        flipped,
        rater_ids=r.rater_ids,
        ratee_ids=r.ratee_ids,
        item_ids=r.item_ids,
        item_competency=r.item_competency,
        competency_ids=r.competency_ids,
    )
    np.testing.assert_allclose(fit_rater_model(other).adjusted, fit.adjusted)


def test_results_are_reproducible_with_a_seed(make_survey):
    r = make_survey(n=60).ratings
    a, b = fit_rater_model(r, random_state=7), fit_rater_model(r, random_state=7)
    np.testing.assert_array_equal(a.se, b.se)


def test_competency_scores_have_intervals(make_survey):
    fit = fit_rater_model(make_survey(n=100).ratings)
    assert fit.competency_ids == ("C0", "C1", "ALL")
    assert np.isfinite(fit.adjusted).all()
    assert (fit.se[:, :2] >= fit.se[:, [2]] * 0.99).all()  # a part is never surer than all
    assert (fit.ci_low < fit.adjusted).all()
    # The interval is the stated confidence's two-sided normal interval around the score.
    z = stats.norm.ppf(0.95)  # 90%: 1.645
    np.testing.assert_allclose(fit.ci_high - fit.adjusted, z * fit.se)
    np.testing.assert_allclose(fit.adjusted - fit.ci_low, z * fit.se)
    wider = fit_rater_model(make_survey(n=100).ratings, confidence=0.95)
    np.testing.assert_allclose(wider.ci_high - wider.adjusted, stats.norm.ppf(0.975) * wider.se)


def test_single_ratee_falls_back_to_raw_with_a_warning():
    r = Ratings.from_arrays(list("abcd"), ["x"] * 4, ["q"] * 4, ["peer"] * 4, [1, 2, 4, 5])
    with pytest.warns(FallbackWarning, match="raw means reported"):
        fit = fit_rater_model(r)
    assert fit.method == "raw"
    assert fit.adjusted[0, 0] == 3.0
    assert fit.se[0, 0] == pytest.approx(np.std([1, 2, 4, 5], ddof=1) / 2)
    assert any("FallbackWarning" in w for w in fit.warnings)


def test_100k_raters_each_rating_once_fall_back_quickly():
    n = 100_000
    rng = np.random.default_rng(0)
    r = Ratings.from_arrays(
        np.arange(n),
        np.arange(n) % 1000,
        np.zeros(n, int),
        np.full(n, 2),
        rng.integers(1, 6, n).astype(float),
    )
    with pytest.warns(FallbackWarning, match="no rater rated more than one person"):
        fit = fit_rater_model(r)
    assert fit.method == "raw"
    assert np.isfinite(fit.adjusted).all()
    assert np.isfinite(fit.se).all()
    assert (fit.n_raters[:, 0] == 100).all()


def test_constant_rater_warns_without_dividing_by_zero(make_survey):
    r = make_survey(n=60, n_items=6).ratings
    value = r.value.copy()
    value[r.rater == 0] = 4.0
    r2 = Ratings.from_codes(
        r.rater,
        r.ratee,
        r.item,
        r.relationship,
        value,
        rater_ids=r.rater_ids,
        ratee_ids=r.ratee_ids,
        item_ids=r.item_ids,
        item_competency=r.item_competency,
        competency_ids=r.competency_ids,
    )
    with pytest.warns(DegenerateRatingsWarning, match="same score to every item"):
        fit = fit_rater_model(r2)
    assert np.isfinite(fit.adjusted).all()
    assert np.isfinite(fit.rater_effect[0])


def test_all_constant_ratings_fall_back():
    n = 40
    rater = np.arange(2 * n) % n
    ratee = (rater + 1 + np.arange(2 * n) // n) % n
    r = Ratings.from_arrays(rater, ratee, ["q"] * 2 * n, ["peer"] * 2 * n, np.full(2 * n, 3.0))
    with pytest.warns(FallbackWarning, match="identical"):
        fit = fit_rater_model(r)
    assert (fit.adjusted == 3).all()


def test_ratee_with_one_rater_gets_a_wide_interval(make_survey):
    r = make_survey(n=60, with_self=False).ratings
    # Keep a single rater for ratee code 0.
    keep = (r.ratee != 0) | (r.rater == r.rater[r.ratee == 0][0])
    fit = fit_rater_model(r.select(keep))
    assert fit.n_raters[0, -1] == 1
    assert np.isfinite(fit.se[0, -1])
    assert fit.se[0, -1] > 1.5 * np.median(fit.se[1:, -1])


def test_closed_teams_warn_about_the_design():
    rng = np.random.default_rng(1)
    rows = []
    for t in range(30):
        team = [f"t{t}p{i}" for i in range(5)]
        for e in team:
            for r in team:
                if r != e:
                    rows.append((r, e, "q", "peer", float(rng.integers(1, 6))))
    cols = list(zip(*rows, strict=True))
    with pytest.warns(DesignWarning, match="30 separate components"):
        fit = fit_rater_model(Ratings.from_arrays(*cols))
    assert fit.design.n_components == 30


def test_block_cg_matches_a_direct_sparse_solve():
    # Independent reference: scipy.sparse.linalg.spsolve on the same SPD system.
    rng = np.random.default_rng(0)
    m = sparse.random(300, 200, density=0.02, random_state=1, format="csr")
    a = (m.T @ m + sparse.diags(rng.uniform(0.5, 2, 200))).tocsr()
    b = rng.normal(size=(200, 3))
    x, _, res = _block_pcg(a, b, tol=1e-10, maxiter=1000)
    assert res < 1e-10
    for j in range(3):
        np.testing.assert_allclose(x[:, j], linalg.spsolve(a.tocsc(), b[:, j]), atol=1e-8)


def test_one_way_blup_matches_the_textbook_formula():
    # Balanced one-way: lambda = n s2t / (n s2t + s2e) with ANOVA estimates (Searle 1992).
    z = np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 2.0, 2.5, 3.0])
    g = np.repeat(np.arange(3), 3)
    est, pev, lam = _one_way_blup(z, g, 3, fallback=(1.0, 1.0))
    means = np.array([2.0, 6.0, 2.5])
    msw = (2 + 2 + 0.5) / 6
    msb = 3 * ((means - z.mean()) ** 2).sum() / 2
    s2t = (msb - msw) / 3
    expect_lam = 3 * s2t / (3 * s2t + msw)
    np.testing.assert_allclose(lam, expect_lam)
    np.testing.assert_allclose(est, z.mean() + expect_lam * (means - z.mean()))
    assert (pev > s2t * (1 - expect_lam) - 1e-12).all()


def test_bad_parameters_raise():
    r = Ratings.from_arrays(["a"], ["x"], ["q"], ["peer"], [1])
    with pytest.raises(ValueError, match="confidence"):
        fit_rater_model(r, confidence=1.5)
    with pytest.raises(ValueError, match="n_draws"):
        fit_rater_model(r, n_draws=2)


def _ceiling_survey(seed: int, n: int = 500, centre: float = 4.2) -> tuple[Ratings, np.ndarray]:
    """Ring design near the top of a 1–5 scale with strong leniency, rounded and clipped.

    Truth: the expected observed rating of an average rater (leniency 0), the estimand
    of the adjusted score, E[clip(round(centre + true + impression + noise), 1, 5)].
    """
    rng = np.random.default_rng(seed)
    k, n_items, imp_sd, noise_sd = 6, 8, 0.3, 0.55
    true = rng.normal(0, 0.45, n)
    lenient = rng.normal(0, 0.6, n)
    rater = (np.arange(n)[:, None] + np.arange(1, k + 1)[None, :]) % n
    ratee = np.repeat(np.arange(n)[:, None], k, axis=1)
    latent = (
        centre
        + true[ratee][..., None]
        + lenient[rater][..., None]
        + rng.normal(0, imp_sd, rater.shape)[..., None]
        + rng.normal(0, noise_sd, (*rater.shape, n_items))
    )
    value = np.clip(np.rint(latent), 1, 5)
    shape = value.shape
    r = Ratings.from_arrays(
        np.broadcast_to(rater[..., None], shape).ravel(),
        np.broadcast_to(ratee[..., None], shape).ravel(),
        np.broadcast_to(np.arange(n_items), shape).ravel(),
        np.full(value.size, "peer"),
        value.ravel(),
    )
    sd = np.hypot(imp_sd, noise_sd)
    truth = 1 + sum(stats.norm.sf((t - centre - true) / sd) for t in (1.5, 2.5, 3.5, 4.5))
    return r, truth[np.asarray(r.ratee_ids, dtype=np.int64)]


@pytest.mark.filterwarnings("ignore::scoring.DegenerateRatingsWarning")
def test_calibration_removes_an_injected_ceiling_bias():
    # Lenient raters near the ceiling: the additive model alone is biased low and its
    # intervals undercover; the parametric-bootstrap calibration must remove most of
    # the bias and restore coverage, using nothing but the data.
    err_plain, err_cal, cover_plain, cover_cal = [], [], [], []
    for seed in range(3):
        r, truth = _ceiling_survey(seed)
        plain = fit_rater_model(r, calibrate=False)
        fit = fit_rater_model(r)
        assert fit.calibration.applied
        assert fit.calibration.observation == "round+clip"
        assert fit.calibration.n_replicates >= 1
        assert fit.calibration.se_factor[0] >= 1.0
        assert not plain.calibration.applied
        for f, err, cover in ((plain, err_plain, cover_plain), (fit, err_cal, cover_cal)):
            e = f.adjusted[:, -1] - truth
            err.append(e.mean())
            cover.append(np.mean(np.abs(e) <= 1.6449 * f.se[:, -1]))
        np.testing.assert_allclose(fit.adjusted, plain.adjusted - fit.calibration.bias)
    assert np.mean(err_plain) < -0.04  # the injected ceiling bias
    assert abs(np.mean(err_cal)) < 0.5 * abs(np.mean(err_plain))
    assert np.mean(cover_cal) > np.mean(cover_plain) + 0.02
    assert 0.85 <= np.mean(cover_cal) <= 0.95


def test_calibration_is_skipped_on_tiny_designs(make_survey):
    r = make_survey(n=60).ratings
    fit = fit_rater_model(r)
    plain = fit_rater_model(r, calibrate=False)
    assert not fit.calibration.applied
    assert "too few to calibrate" in fit.calibration.reason
    assert (fit.calibration.bias == 0).all()
    np.testing.assert_array_equal(fit.adjusted, plain.adjusted)
    np.testing.assert_array_equal(fit.se, plain.se)
    assert "calibrate=False" in plain.calibration.reason


def test_calibration_is_small_away_from_the_scale_ends(make_survey):
    # Continuous ratings centred mid-scale: little clipping, so little to correct.
    fit = fit_rater_model(make_survey(n=300, seed=1).ratings)
    assert fit.calibration.applied
    assert fit.calibration.observation == "clip"
    assert np.abs(fit.calibration.bias).max() < 0.05
    assert max(fit.calibration.se_factor) < 1.05


def test_expected_observed_rating_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu = np.array([0.7, 2.2, 3.9, 4.6, 5.4])
    y = mu[:, None] + 0.6 * rng.standard_normal((5, 200_000))
    for integer, obs in ((True, np.clip(np.rint(y), 1, 5)), (False, np.clip(y, 1, 5))):
        np.testing.assert_allclose(
            _expected_observed(mu, 0.6, 1.0, 5.0, integer), obs.mean(axis=1), atol=5e-3
        )
