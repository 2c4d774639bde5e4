"""Ratings container: validation and factorization."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import InvalidRatingsError, Ratings


def build(**overrides):
    data = {
        "rater": ["a", "b", "a", "b"],
        "ratee": ["x", "x", "y", "y"],
        "item": ["q1", "q1", "q1", "q1"],
        "relationship": ["peer", "manager", "peer", "self"],
        "value": [4, 3, 5, np.nan],
    }
    data.update(overrides)
    return Ratings.from_arrays(
        data["rater"], data["ratee"], data["item"], data["relationship"], data["value"]
    )


def test_codes_follow_first_appearance_and_pairs_are_built():
    r = build()
    assert r.rater_ids.tolist() == ["a", "b"]
    assert r.ratee_ids.tolist() == ["x", "y"]
    assert r.n_pairs == 4
    assert r.relationship.tolist() == [2, 1, 2, 0]
    assert r.pair_relationship[r.pair].tolist() == r.relationship.tolist()
    assert np.isnan(r.value[3])
    assert r.competency_ids == ()


def test_relationship_spelling_is_tolerated():
    r = build(relationship=["Peer", "Direct Report", "direct-report", "SELF"])
    assert r.relationship.tolist() == [2, 3, 3, 0]


@pytest.mark.parametrize(
    ("overrides", "match", "rows"),
    [
        ({"relationship": ["peer", "boss", "peer", "self"]}, "unknown relationship 'boss'", (1,)),
        ({"value": [4, 3, "four", 1]}, "non-numeric rating 'four'", (2,)),
        ({"value": [4, 3, 6, 0]}, "2 rating\\(s\\) outside the scale 1–5", (2, 3)),
        ({"value": [4, 3, np.inf, 1]}, "not a finite number", (2,)),
        ({"ratee": ["x", "x", "x", "y"], "rater": ["a", "b", "a", "c"]}, "duplicate", (0, 2)),
    ],
)
def test_bad_input_names_rows(overrides, match, rows):
    with pytest.raises(InvalidRatingsError, match=match) as info:
        build(**overrides)
    assert info.value.rows == rows
    assert isinstance(info.value, ValueError)


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        Ratings.from_arrays([], [], [], [], [])


def test_unequal_lengths_are_refused():
    with pytest.raises(ValueError, match="different lengths"):
        Ratings.from_arrays(["a"], ["x", "y"], ["q"], ["peer"], [1])


def test_two_relationships_for_one_pair_are_refused():
    with pytest.raises(InvalidRatingsError, match="more than one relationship"):
        Ratings.from_arrays(["a", "a"], ["x", "x"], ["q1", "q2"], ["peer", "manager"], [1, 2])


def test_unknown_items_are_refused_with_a_competency_map():
    with pytest.raises(InvalidRatingsError, match="not in the competency map: 'q9'"):
        Ratings.from_arrays(["a", "a"], ["x", "x"], ["q1", "q9"], ["peer"] * 2, [1, 2], {"q1": "C"})


def test_none_means_not_applicable_and_all_na_raters_are_kept():
    r = Ratings.from_arrays(["a", "b"], ["x", "x"], ["q", "q"], ["peer"] * 2, [None, 3])
    assert np.isnan(r.value[0])
    assert r.n_raters == 2


def test_competency_map_assigns_codes():
    r = Ratings.from_arrays(
        ["a"] * 3,
        ["x"] * 3,
        ["q1", "q2", "q3"],
        ["peer"] * 3,
        [1, 2, 3],
        {"q1": "lead", "q2": "care", "q3": "lead"},
    )
    assert r.competency_ids == ("lead", "care")
    assert r.item_competency.tolist() == [0, 1, 0]


def test_scale_must_be_ordered():
    with pytest.raises(ValueError, match="scale"):
        Ratings.from_arrays(["a"], ["x"], ["q"], ["peer"], [1], scale=(5, 1))


def test_select_keeps_labels():
    r = build()
    sub = r.select(r.relationship != 0)
    assert sub.n_ratings == 3
    assert sub.ratee_ids.tolist() == ["x", "y"]


def test_100k_distinct_raters_each_rating_once():
    n = 100_000  # how long this takes is benchmarks/scoring_speed.py's business
    r = Ratings.from_arrays(
        np.arange(n), np.arange(n) % 1000, np.zeros(n, int), np.full(n, 2), np.ones(n) * 3
    )
    assert r.n_raters == n
    assert r.n_pairs == n
