"""score_ratings: the one-call pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import FallbackWarning, Ratings, score_ratings


def test_adjusted_pipeline(make_survey):
    s = score_ratings(make_survey(n=80, round_to_scale=True).ratings)
    assert s.method == "adjusted"
    assert s.model is not None
    np.testing.assert_array_equal(s.score, s.model.adjusted)
    assert s.agreement.gap.shape == s.score.shape
    assert s.item_agreement.gap.shape == (80, 8)
    assert s.warnings == ()


def test_raw_method_uses_the_others_mean(make_survey):
    s = score_ratings(make_survey(n=40).ratings, method="raw")
    assert s.model is None
    np.testing.assert_array_equal(s.score, s.aggregates.mean[:, :, 5])


def test_warnings_are_recorded_and_still_emitted():
    r = Ratings.from_arrays(list("abx"), ["x"] * 3, ["q"] * 3, ["peer", "peer", "self"], [4, 2, 5])
    with pytest.warns(FallbackWarning):
        s = score_ratings(r)
    assert s.method == "raw"
    assert any(w.startswith("FallbackWarning") for w in s.warnings)
    assert s.score[0, -1] == pytest.approx(3.0)  # the fallback: the peers' plain mean of 4, 2


def test_unknown_method_is_refused(make_survey):
    with pytest.raises(ValueError, match="method"):
        score_ratings(make_survey(n=10).ratings, method="magic")
