"""Design checks on the rater–ratee graph."""

from __future__ import annotations

import numpy as np

from scoring import Ratings, check_design


def test_closed_teams_are_separate_components():
    rater = ["a", "b", "c", "d", "e", "f"]
    ratee = ["x", "x", "x", "y", "y", "y"]
    r = Ratings.from_arrays(rater, ratee, ["q"] * 6, ["peer"] * 6, [3, 4, 2, 5, 4, 4])
    rep = check_design(r)
    assert rep.n_components == 2
    assert rep.component.tolist() == [0, 1]
    assert rep.largest_component_share == 0.5
    assert any("2 separate components" in m for m in rep.messages)


def test_connected_design_with_shared_raters_is_adjustable(make_survey):
    rep = check_design(make_survey(n=60).ratings)
    assert rep.n_components == 1
    assert rep.adjustable
    assert rep.n_raters_few_ratees == 0
    assert rep.messages == ()


def test_self_ratings_are_not_part_of_the_graph():
    r = Ratings.from_arrays(["x", "a"], ["x", "x"], ["q", "q"], ["self", "peer"], [5, 3])
    rep = check_design(r)
    assert rep.n_pairs == 1
    assert rep.ratees_per_rater.tolist() == [0, 1]


def test_raters_who_rate_once_make_the_design_unadjustable():
    n = 200
    r = Ratings.from_arrays(np.arange(n), np.arange(n) % 20, ["q"] * n, ["peer"] * n, np.ones(n))
    rep = check_design(r)
    assert not rep.adjustable
    assert rep.n_raters_few_ratees == n
    assert rep.share_pairs_few_ratees == 1.0
    assert any("no rater rated more than one person" in m for m in rep.messages)


def test_single_ratee_and_too_few_pairs():
    r = Ratings.from_arrays(["a", "b"], ["x", "x"], ["q"] * 2, ["peer"] * 2, [3, 4])
    rep = check_design(r)
    assert not rep.adjustable
    assert any("two ratees" in m for m in rep.messages)
