"""One call that scores a survey: aggregates, adjusted scores, reliability, agreement."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.aggregation import Aggregates, aggregate
from scoring.agreement import (
    AgreementResult,
    item_agreement,
    self_item_sd,
    self_other_agreement,
)
from scoring.rater_model import RaterModelResult, constant_raters, fit_rater_model
from scoring.ratings import OTHERS, SELF, Ratings
from scoring.reliability import CompetencyReliability, competency_reliability
from scoring.warnings import DegenerateRatingsWarning

__all__ = ["METHODS", "Scores", "score_ratings"]

METHODS = ("adjusted", "raw")


@dataclass(frozen=True, eq=False)
class Scores:
    """Everything a report needs, per ratee × competency (``ALL`` last).

    Attributes
    ----------
    method : {"adjusted", "raw"}
        The method actually used for the others' score (``"raw"`` after a fallback).
    score, se, ci_low, ci_high : ndarray, shape (n_ratees, n_competencies + 1)
        The headline others' score (adjusted or raw) and its interval.
    aggregates : Aggregates
        Raw statistics per relationship group.
    model : RaterModelResult or None
        The rater-effect fit (None when ``method="raw"`` was requested).
    reliability : CompetencyReliability
    agreement : AgreementResult
        Self minus the others' headline score per competency.
    item_agreement : AgreementResult
        Self minus raw others' item means per item.
    warnings : tuple of str
        Every warning raised while scoring, as text.
    """

    ratee_ids: NDArray[Any]
    competency_ids: tuple[str, ...]
    method: str
    score: NDArray[np.float64]
    se: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    aggregates: Aggregates
    model: RaterModelResult | None
    reliability: CompetencyReliability
    agreement: AgreementResult
    item_agreement: AgreementResult
    confidence: float
    warnings: tuple[str, ...]


def score_ratings(
    ratings: Ratings,
    *,
    method: str = "adjusted",
    confidence: float = 0.90,
    min_item_fraction: float = 0.5,
    n_draws: int = 64,
    random_state: int | None = 0,
    calibrate: bool = True,
) -> Scores:
    """Score a survey: raw aggregates, the others' headline score, reliability, agreement.

    Parameters
    ----------
    ratings : Ratings
    method : {"adjusted", "raw"}
        ``"adjusted"`` (default) uses :func:`fit_rater_model` for the others' score;
        ``"raw"`` uses the others' raw mean with its rater-as-unit interval.
    confidence, min_item_fraction, n_draws, random_state
        Passed on to :func:`aggregate` and :func:`fit_rater_model`.
    calibrate : bool, default True
        Passed on to :func:`fit_rater_model`: parametric-bootstrap correction of the
        adjusted score and its SE for rounding and clipping at the scale ends
        (``model.calibration`` records what was applied).

    Returns
    -------
    Scores

    Examples
    --------
    >>> from scoring import Ratings, score_ratings
    >>> r = Ratings.from_arrays(["a", "b", "x"], ["x"] * 3, ["q"] * 3,
    ...                         ["peer", "peer", "self"], [4, 2, 5])
    >>> s = score_ratings(r, method="raw")
    >>> float(s.score[0, -1]), float(s.agreement.gap[0, -1])
    (3.0, 2.0)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agg = aggregate(ratings, min_item_fraction=min_item_fraction, confidence=confidence)
        model: RaterModelResult | None = None
        if method == "adjusted":
            model = fit_rater_model(
                ratings,
                confidence=confidence,
                min_item_fraction=min_item_fraction,
                n_draws=n_draws,
                random_state=random_state,
                calibrate=calibrate,
            )
        else:
            const = constant_raters(ratings)
            if const.any():
                warnings.warn(
                    f"{int(const.sum())} rater(s) gave the same score to every item they rated",
                    DegenerateRatingsWarning,
                    stacklevel=2,
                )
        reliability = competency_reliability(ratings, min_item_fraction=min_item_fraction)
        items = item_agreement(ratings, confidence=confidence)
    for w in caught:
        messages.append(f"{w.category.__name__}: {w.message}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    if model is not None:
        score, se, lo, hi = model.adjusted, model.se, model.ci_low, model.ci_high
        used = model.method
    else:
        score = agg.mean[:, :, OTHERS]
        se = agg.se[:, :, OTHERS]
        lo, hi = agg.ci_low[:, :, OTHERS], agg.ci_high[:, :, OTHERS]
        used = "raw"
    self_sd = self_item_sd(ratings)
    n_items = np.maximum(agg.items_per_competency, 1)
    agreement = self_other_agreement(
        agg.mean[:, :, SELF],
        score,
        se,
        self_sd / np.sqrt(n_items)[None, :],
        confidence=confidence,
    )
    return Scores(
        ratee_ids=ratings.ratee_ids,
        competency_ids=agg.competency_ids,
        method=used,
        score=score,
        se=se,
        ci_low=lo,
        ci_high=hi,
        aggregates=agg,
        model=model,
        reliability=reliability,
        agreement=agreement,
        item_agreement=items,
        confidence=confidence,
        warnings=tuple(messages),
    )
