"""Factories for scoring tests: small simulated surveys with known truth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from scoring import Ratings


@dataclass(frozen=True)
class Simulated:
    ratings: Ratings
    true_score: np.ndarray  # per ratee code (latent, item-averaged)
    leniency: np.ndarray  # per rater code


def simulate(
    n: int = 300,
    *,
    raters_per_ratee: int = 6,
    n_items: int = 8,
    leniency_sd: float = 0.4,
    true_sd: float = 0.5,
    impression_sd: float = 0.25,
    noise_sd: float = 0.5,
    seed: int = 0,
    with_self: bool = True,
    round_to_scale: bool = False,
) -> Simulated:
    """Ring design: ratee e is rated by people e+1 … e+k (all peers) and by themself."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, true_sd, n)
    lenient = rng.normal(0, leniency_sd, n)
    offsets = np.arange(1, raters_per_ratee + 1)
    rater = (np.arange(n)[:, None] + offsets[None, :]) % n
    ratee = np.repeat(np.arange(n)[:, None], raters_per_ratee, axis=1)
    rel = np.full(rater.shape, "peer", dtype=object)
    if with_self:
        rater = np.column_stack([np.arange(n), rater])
        ratee = np.column_stack([np.arange(n), ratee])
        rel = np.column_stack([np.full(n, "self", dtype=object), rel])
    latent = (
        3.0
        + true[ratee][..., None]
        + lenient[rater][..., None]
        + rng.normal(0, impression_sd, rater.shape)[..., None]
        + rng.normal(0, noise_sd, (*rater.shape, n_items))
    )
    value = np.clip(np.rint(latent), 1, 5) if round_to_scale else np.clip(latent, 1, 5)
    shape = value.shape
    items = np.array([f"q{i}" for i in range(n_items)])
    ratings = Ratings.from_arrays(
        np.broadcast_to(rater[..., None], shape).ravel(),
        np.broadcast_to(ratee[..., None], shape).ravel(),
        np.broadcast_to(items, shape).ravel(),
        np.broadcast_to(rel[..., None], shape).ravel(),
        value.ravel(),
        {f"q{i}": f"C{i % 2}" for i in range(n_items)},
    )
    # Labels are the integer ids in order of first appearance.
    ratee_order = np.asarray(ratings.ratee_ids, dtype=np.int64)
    rater_order = np.asarray(ratings.rater_ids, dtype=np.int64)
    return Simulated(ratings, 3.0 + true[ratee_order], lenient[rater_order])


@pytest.fixture
def make_survey() -> Callable[..., Simulated]:
    return simulate
