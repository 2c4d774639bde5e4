"""Self–other agreement classification."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import Ratings, item_agreement, self_other_agreement


def test_classification_follows_the_gap_and_its_noise():
    res = self_other_agreement(
        [[4.8], [2.0], [3.6], [3.0], [np.nan]],
        [[3.5], [3.6], [3.5], [3.1], [3.0]],
        [[0.2], [0.2], [0.2], [0.2], [0.2]],
    )
    assert res.category.ravel().tolist() == [
        "over-estimator",
        "under-estimator",
        "in agreement (high)",
        "in agreement (low)",
        "",
    ]
    assert res.blind_spot.ravel().tolist() == [True, False, False, False, False]
    assert res.hidden_strength.ravel().tolist() == [False, True, False, False, False]
    assert res.gap[0, 0] == pytest.approx(1.3)
    assert res.norm[0] == pytest.approx((3.5 + 3.6 + 3.5 + 3.1 + 3.0) / 5)


def test_noise_can_hide_a_gap():
    # The same 0.5 gap is flagged with a small SE and not with a large one.
    small = self_other_agreement([[4.0]], [[3.5]], [[0.1]])
    large = self_other_agreement([[4.0]], [[3.5]], [[0.3]], self_se=0.2)
    assert small.blind_spot[0, 0]
    assert not large.blind_spot[0, 0]
    assert large.gap_se[0, 0] == pytest.approx(np.hypot(0.3, 0.2))


def test_min_gap_and_norm():
    res = self_other_agreement([[3.9]], [[3.5]], [[0.01]], min_gap=0.5, norm=[4.0])
    assert res.category[0, 0] == "in agreement (low)"


def test_the_bounds_of_min_gap_and_norm_are_included():
    # A gap of exactly min_gap counts; an others' score exactly at the norm is "high".
    over = self_other_agreement([[4.0]], [[3.5]], [[0.01]], min_gap=0.5, norm=[4.0])
    assert over.blind_spot[0, 0]
    assert over.category[0, 0] == "over-estimator"
    under = self_other_agreement([[3.0]], [[3.5]], [[0.01]], min_gap=0.5, norm=[4.0])
    assert under.hidden_strength[0, 0]
    level = self_other_agreement([[4.0]], [[4.0]], [[0.01]], norm=[4.0])
    assert level.category[0, 0] == "in agreement (high)"


def test_item_agreement_by_hand():
    r = Ratings.from_arrays(
        ["a", "b", "c", "x", "a", "b", "c", "x"],
        ["x"] * 8,
        ["q1"] * 4 + ["q2"] * 4,
        ["peer", "peer", "peer", "self"] * 2,
        [2, 3, 4, 5, 4, 4, 5, 4],
    )
    res = item_agreement(r)
    assert res.gap[0].tolist() == pytest.approx([5 - 3, 4 - 13 / 3])


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes differ"):
        self_other_agreement([[1, 2]], [[1]], [[0.1]])
