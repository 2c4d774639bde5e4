"""Aggregation per ratee × competency × group, checked against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import GROUPS, Ratings, aggregate, pair_competency_means

OTHERS = GROUPS.index("others")
PEER = GROUPS.index("peer")
SELF = GROUPS.index("self")


@pytest.fixture
def small():
    # Ratee x: peers a, b; manager m; self x. Items q1, q2 (C1) and q3 (C2).
    rows = [
        ("a", "x", "q1", "peer", 4),
        ("a", "x", "q2", "peer", 5),
        ("a", "x", "q3", "peer", 3),
        ("b", "x", "q1", "peer", 2),
        ("b", "x", "q2", "peer", np.nan),
        ("b", "x", "q3", "peer", 1),
        ("m", "x", "q1", "manager", 3),
        ("m", "x", "q2", "manager", 3),
        ("m", "x", "q3", "manager", np.nan),
        ("x", "x", "q1", "self", 5),
        ("x", "x", "q2", "self", 5),
        ("x", "x", "q3", "self", 4),
    ]
    cols = list(zip(*rows, strict=True))
    return Ratings.from_arrays(*cols, {"q1": "C1", "q2": "C1", "q3": "C2"})


def test_means_over_raters_by_hand(small):
    agg = aggregate(small)
    assert agg.competency_ids == ("C1", "C2", "ALL")
    # C1: a = 4.5, b = 2 (1 of 2 items = half: counts), m = 3.
    assert agg.n_raters[0, 0, PEER] == 2
    assert agg.mean[0, 0, PEER] == pytest.approx((4.5 + 2) / 2)
    assert agg.sd[0, 0, PEER] == pytest.approx(np.std([4.5, 2], ddof=1))
    assert agg.mean[0, 0, OTHERS] == pytest.approx((4.5 + 2 + 3) / 3)
    # C2: the manager skipped the only item and does not count.
    assert agg.n_raters[0, 1, OTHERS] == 2
    assert agg.mean[0, 1, OTHERS] == pytest.approx(2.0)
    # ALL: a = 4, b = 1.5 (2 of 3), m = 3 (2 of 3).
    assert agg.mean[0, 2, OTHERS] == pytest.approx((4 + 1.5 + 3) / 3)
    assert agg.mean[0, 2, SELF] == pytest.approx(14 / 3)
    assert np.isnan(agg.sd[0, 2, SELF])  # one rater: no SD, and no RuntimeWarning


def test_min_item_fraction_is_configurable(small):
    agg = aggregate(small, min_item_fraction=1.0)
    assert agg.n_raters[0, 0, PEER] == 1  # b skipped q2
    assert agg.n_raters[0, 2, OTHERS] == 1  # only a answered everything
    with pytest.raises(ValueError, match="min_item_fraction"):
        aggregate(small, min_item_fraction=0)


def test_distribution_counts_item_answers_of_counting_raters(small):
    agg = aggregate(small)
    # Others on C1: answers 4, 5 (a), 2 (b), 3, 3 (m).
    assert agg.distribution[0, 0, OTHERS].tolist() == [0, 1, 2, 1, 1]
    assert agg.scale_points.tolist() == [1, 2, 3, 4, 5]


def test_pooled_standard_error_by_hand():
    # Two ratees, two peers each: pooled SD over ratees, rater as unit.
    r = Ratings.from_arrays(
        ["a", "b", "c", "d"], ["x", "x", "y", "y"], ["q"] * 4, ["peer"] * 4, [1, 3, 4, 5]
    )
    agg = aggregate(r)
    pooled = np.sqrt(((1 - 2) ** 2 + (3 - 2) ** 2 + (4 - 4.5) ** 2 + (5 - 4.5) ** 2) / 2)
    assert agg.pooled_sd[0, OTHERS] == pytest.approx(pooled)
    assert agg.se[0, 0, OTHERS] == pytest.approx(pooled / np.sqrt(2))
    assert agg.ci_high[0, 0, OTHERS] - agg.mean[0, 0, OTHERS] == pytest.approx(
        1.6448536 * pooled / np.sqrt(2)
    )


def test_pair_means_mark_invalid_pairs(small):
    means, counts, valid = pair_competency_means(small)
    assert means.shape == (small.n_pairs, 3)
    assert counts[valid].min() >= 1
    assert np.isnan(means[~valid]).all()


def test_ratee_with_one_rater_has_mean_but_no_sd():
    r = Ratings.from_arrays(["a"], ["x"], ["q"], ["peer"], [4])
    agg = aggregate(r)
    assert agg.mean[0, 0, OTHERS] == 4
    assert np.isnan(agg.sd[0, 0, OTHERS])
    assert np.isnan(agg.se[0, 0, OTHERS])
