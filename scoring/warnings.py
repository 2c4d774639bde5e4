"""Warning classes for degenerate input and weak designs.

Every warning the scoring library emits is also recorded, as text, in the ``warnings``
field of the result it concerns, so that a caller who silences Python warnings still sees
why a number is what it is (scipy.stats habit: ``ConstantInputWarning``).
"""

from __future__ import annotations

import warnings as _warnings

__all__ = [
    "DegenerateRatingsWarning",
    "DesignWarning",
    "FallbackWarning",
    "ScoringWarning",
]


class ScoringWarning(UserWarning):
    """Base class of every warning emitted by :mod:`scoring`."""


class DegenerateRatingsWarning(ScoringWarning):
    """Input with no spread where a statistic needs some (constant rater, constant item).

    The affected statistic is returned as NaN (never a division by zero) or, for a rater
    who gives the same score everywhere, the rater is kept and flagged.
    """


class DesignWarning(ScoringWarning):
    """The rater–ratee design only weakly supports separating rater and ratee effects.

    Examples: the rater–ratee graph falls apart into several connected components
    (closed teams), or most ratings come from raters who rated a single person.
    """


class FallbackWarning(ScoringWarning):
    """The rater-effect adjustment could not be fitted; raw means are reported instead."""


def emit(messages: list[str], message: str, category: type[ScoringWarning]) -> None:
    """Record ``message`` in ``messages`` and emit it as a Python warning."""
    messages.append(f"{category.__name__}: {message}")
    _warnings.warn(message, category, stacklevel=3)
