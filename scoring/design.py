"""Design checks: can this rater–ratee design separate rater effects from ratee effects?

Rater and ratee effects are only separable through raters who rate several people and
ratees who share raters. The checks here look at the bipartite rater–ratee graph: its
connected components (within a component, effects are comparable; between components
only the prior keeps them apart) and how many raters rated too few people to reveal their
leniency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from scoring.ratings import SELF, Ratings

__all__ = ["DesignReport", "check_design"]


@dataclass(frozen=True, eq=False)
class DesignReport:
    """What the rater–ratee graph of the others' ratings supports.

    Attributes
    ----------
    n_pairs, n_raters, n_ratees : int
        Rater–ratee pairs, raters and ratees in the graph (self ratings excluded).
    n_components : int
        Connected components of the bipartite rater–ratee graph.
    component : ndarray of int, shape (n_ratees_total,)
        Component of each ratee (``-1`` if the ratee has no others' ratings).
    largest_component_share : float
        Share of pairs in the largest component.
    ratees_per_rater : ndarray of int, shape (n_raters_total,)
        Number of people each rater rated (0 for raters outside the graph).
    n_raters_few_ratees : int
        Raters who rated fewer than ``min_ratees`` people.
    share_pairs_few_ratees : float
        Share of pairs given by those raters.
    adjustable : bool
        Whether a rater-effect model can be fitted at all (at least two ratees, some
        rater who rated two or more people, and at least ``min_pairs`` pairs).
    messages : tuple of str
        Plain-language findings, empty when the design is sound.
    """

    n_pairs: int
    n_raters: int
    n_ratees: int
    n_components: int
    component: NDArray[np.int64]
    largest_component_share: float
    ratees_per_rater: NDArray[np.int64]
    n_raters_few_ratees: int
    share_pairs_few_ratees: float
    adjustable: bool
    messages: tuple[str, ...]


def design_from_pairs(
    pair_rater: NDArray[np.integer],
    pair_ratee: NDArray[np.integer],
    n_raters: int,
    n_ratees: int,
    *,
    min_ratees: int = 2,
    min_pairs: int = 10,
) -> DesignReport:
    """:func:`check_design` on explicit (rater, ratee) pairs (one entry per pair)."""
    n_pairs = int(pair_rater.size)
    ratees_per_rater = np.bincount(pair_rater, minlength=n_raters).astype(np.int64)
    raters_per_ratee = np.bincount(pair_ratee, minlength=n_ratees)
    in_rater = ratees_per_rater > 0
    in_ratee = raters_per_ratee > 0
    component = np.full(n_ratees, -1, dtype=np.int64)
    n_comp = 0
    largest = 0.0
    if n_pairs:
        graph = sparse.coo_matrix(
            (np.ones(n_pairs, dtype=np.int8), (pair_rater, n_raters + pair_ratee)),
            shape=(n_raters + n_ratees, n_raters + n_ratees),
        ).tocsr()
        _, labels = csgraph.connected_components(graph, directed=False)
        used = np.concatenate([in_rater, in_ratee])
        _, relabel = np.unique(labels[used], return_inverse=True)
        full = np.full(labels.size, -1, dtype=np.int64)
        full[used] = relabel
        n_comp = int(relabel.max()) + 1
        component = full[n_raters:]
        pairs_per_comp = np.bincount(full[n_raters + pair_ratee], minlength=n_comp)
        largest = float(pairs_per_comp.max() / n_pairs)
    few = in_rater & (ratees_per_rater < min_ratees)
    n_few = int(few.sum())
    share_few = float(ratees_per_rater[few].sum() / n_pairs) if n_pairs else 0.0
    n_raters_in, n_ratees_in = int(in_rater.sum()), int(in_ratee.sum())
    messages = []
    adjustable = True
    if n_pairs < min_pairs:
        adjustable = False
        messages.append(f"only {n_pairs} rater–ratee pairs (at least {min_pairs} needed)")
    if n_ratees_in < 2:
        adjustable = False
        messages.append("fewer than two ratees have ratings from others")
    if n_pairs and not (ratees_per_rater >= 2).any():
        adjustable = False
        messages.append("no rater rated more than one person, so rater leniency is invisible")
    if n_comp > 1:
        messages.append(
            f"the rater–ratee graph has {n_comp} separate components (largest holds "
            f"{largest:.0%} of pairs); differences between components rest on the raw means "
            "and the shrinkage prior, not on shared raters"
        )
    if n_pairs and share_few > 0.5:
        messages.append(
            f"{share_few:.0%} of pairs come from raters who rated fewer than {min_ratees} "
            "people; their leniency is barely estimable and is shrunk towards zero"
        )
    return DesignReport(
        n_pairs=n_pairs,
        n_raters=n_raters_in,
        n_ratees=n_ratees_in,
        n_components=n_comp,
        component=component,
        largest_component_share=largest,
        ratees_per_rater=ratees_per_rater,
        n_raters_few_ratees=n_few,
        share_pairs_few_ratees=share_few,
        adjustable=adjustable,
        messages=tuple(messages),
    )


def check_design(ratings: Ratings, *, min_ratees: int = 2, min_pairs: int = 10) -> DesignReport:
    """Check the rater–ratee design of the others' (non-self) ratings.

    Parameters
    ----------
    ratings : Ratings
    min_ratees : int, default 2
        Raters who rated fewer people than this are counted as weakly informative.
    min_pairs : int, default 10
        Fewer answered rater–ratee pairs than this and no model is fitted.

    Returns
    -------
    DesignReport

    Notes
    -----
    Components come from :func:`scipy.sparse.csgraph.connected_components` on the
    bipartite graph with an edge for every answered (rater, ratee) pair. Within a component
    every rater effect is linked to every ratee effect through chains of shared raters;
    across components the sum of the rater effects and the sum of the ratee effects are
    confounded (Searle, Casella & McCulloch 1992, *Variance Components*, §4.3 on
    connectedness).

    Examples
    --------
    >>> from scoring import Ratings, check_design
    >>> r = Ratings.from_arrays(["a", "b", "c", "d"], ["x", "x", "y", "y"], ["q"] * 4,
    ...                         ["peer"] * 4, [3, 4, 2, 5])
    >>> check_design(r).n_components  # two closed teams
    2
    """
    answered = np.bincount(
        ratings.pair[~np.isnan(ratings.value)], minlength=ratings.n_pairs
    ).astype(bool)
    keep = answered & (ratings.pair_relationship != SELF)
    return design_from_pairs(
        ratings.pair_rater[keep],
        ratings.pair_ratee[keep],
        ratings.n_raters,
        ratings.n_ratees,
        min_ratees=min_ratees,
        min_pairs=min_pairs,
    )
