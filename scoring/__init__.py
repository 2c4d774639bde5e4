"""feedback360 scoring: aggregation, rater-effect adjustment, reliability, agreement.

Pure numpy/scipy over a long table of ratings (DESIGN §5); no I/O and nothing of the
rest of the project. Results are frozen dataclasses of arrays. The usual entry point is
:func:`score_ratings` on a :class:`Ratings` table.
"""

from scoring.aggregation import ALL, Aggregates, aggregate, pair_competency_means
from scoring.agreement import (
    CATEGORIES,
    AgreementResult,
    item_agreement,
    self_item_sd,
    self_other_agreement,
)
from scoring.design import DesignReport, check_design
from scoring.rater_model import Calibration, RaterModelResult, constant_raters, fit_rater_model
from scoring.ratings import GROUPS, RELATIONSHIPS, InvalidRatingsError, Ratings
from scoring.reliability import (
    CompetencyReliability,
    CronbachAlphaResult,
    ICCResult,
    ShroutFleissResult,
    competency_reliability,
    cronbach_alpha,
    icc,
    icc_shrout_fleiss,
    raters_needed,
    rwg_j,
    spearman_brown,
)
from scoring.scores import METHODS, Scores, score_ratings
from scoring.warnings import (
    DegenerateRatingsWarning,
    DesignWarning,
    FallbackWarning,
    ScoringWarning,
)

__all__ = [
    "ALL",
    "CATEGORIES",
    "GROUPS",
    "METHODS",
    "RELATIONSHIPS",
    "Aggregates",
    "AgreementResult",
    "Calibration",
    "CompetencyReliability",
    "CronbachAlphaResult",
    "DegenerateRatingsWarning",
    "DesignReport",
    "DesignWarning",
    "FallbackWarning",
    "ICCResult",
    "InvalidRatingsError",
    "RaterModelResult",
    "Ratings",
    "Scores",
    "ScoringWarning",
    "ShroutFleissResult",
    "aggregate",
    "check_design",
    "competency_reliability",
    "constant_raters",
    "cronbach_alpha",
    "fit_rater_model",
    "icc",
    "icc_shrout_fleiss",
    "item_agreement",
    "pair_competency_means",
    "raters_needed",
    "rwg_j",
    "score_ratings",
    "self_item_sd",
    "self_other_agreement",
    "spearman_brown",
]
