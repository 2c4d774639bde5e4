"""Which figures of a report may be published without exposing a rater (DESIGN §4).

Every published cell — a competency, an item, a comment question — is planned from the
number of raters per relationship group who contributed to *that* cell:

1. **Thresholds.** A group is shown separately only with at least its threshold of
   raters (defaults: self 1, manager 1, peer 3, direct report 3, other 3). The manager
   is shown separately only when the cycle says so (``show_manager``).
2. **Merging.** A group that is not shown is not dropped: its raters count inside
   "others" (every non-self rater), which is shown when it pools enough raters.
3. **Complementary suppression.** "Others" minus the shown groups is the merged
   remainder, and with the published counts (sum = n · mean) its sum, count and
   distribution can be worked out exactly. So the remainder must pool either no rater
   or at least the "others" threshold (and at least the threshold of every group with a
   rater in it), and must not be the manager alone when the cycle hides the manager.
   When it is short, further groups are hidden into the remainder — the fewest groups,
   then the fewest raters — or, when no choice is enough, "others" is not published.
4. **The manager is never used as cover.** With ``show_manager`` the manager's answers
   are published under "Manager" in every cell that has them, and the manager was told
   so (they may well discuss them with the participant). Hiding the manager in one cell
   to pad a short remainder would protect nobody: a reader who knows the manager's
   answers — from the next cell, or from the manager — subtracts them and is back at the
   short remainder. So complementary suppression only ever hides peer, direct-report or
   other groups; if those are not enough, "others" is hidden. Without ``show_manager``
   the manager was promised to be pooled and counts like any other rater.
5. **Same rules for everything derived from the same raters.** Counts, means, standard
   deviations, min/max and answer distributions of a group all follow the group's
   visibility (a remainder's distribution is exactly as derivable as its sum), and so do
   comment labels: a comment carries its group's label only if the group is shown,
   otherwise "others" and only when "others" is shown.
6. **Figures pooled from other cells add nothing.** A competency (or overall) figure
   of a group pools the answers to its items *where that group (or "others") is
   published* (:func:`published_in`), so its sum is exactly the sum of published item
   figures and a reader can recompute no hidden item figure from it. Items are planned
   one by one (:func:`plan_cells`): one item few colleagues could judge hides their
   figures on that item only, not across the whole report. Pooling an item where a group
   is hidden into the group's competency figure would give that item away (competency
   minus the other items). A mean of each rater's own item mean is *not* safe either when
   raters skipped different items: raters then carry different weights (1/items
   answered), and a competency figure next to its items' figures can single out the
   raters who answered a different number of items. So never publish rater-mean figures
   beside item figures; the adversarial tests (``tests/surveys/test_adversarial_reports.py``
   and this module's tests) show both attacks succeeding and failing on what reports do.
7. **Versions.** A re-released report (late responses HR accepted) is read next to the
   earlier versions, and subtracting a cell's figures across versions gives the late
   raters' answers; comparing what a group was merged into before with what it is shown
   as now gives the early raters'. So a new version hides, cell by cell, every group an
   earlier version had raters of but did not show there (:func:`carried_hiding`; per
   question for comments), and in every cell published in both (response counts, items,
   comment questions: comments can be counted), each shown group's change and the
   change of the merged remainder must be no rater or enough raters
   (:func:`version_change_refusal`).

Self is the participant's own answer: it is shown whenever there is one and is never part
of "others".
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from scoring.ratings import RELATIONSHIPS

__all__ = [
    "GROUPS",
    "MANAGER",
    "NON_SELF",
    "OTHERS",
    "SELF",
    "Cell",
    "Disclosure",
    "Published",
    "carried_hiding",
    "comment_groups",
    "plan_cells",
    "plan_disclosure",
    "plan_export",
    "pool_cells",
    "published_in",
    "shuffled_comments",
    "suppress_cells",
    "version_change_refusal",
]

SELF, OTHERS = "self", "others"
MANAGER = "manager"
#: Relationship groups in display order.
GROUPS: tuple[str, ...] = RELATIONSHIPS
#: The groups pooled into "others".
NON_SELF: tuple[str, ...] = tuple(g for g in GROUPS if g != SELF)
#: Groups whose threshold must be at least 2 (a threshold of 1 would publish one rater).
_POOLED = (*(g for g in NON_SELF if g != MANAGER), OTHERS)

NO_RESPONSES = "no responses"
NOT_SHOWN_SEPARATELY = "included in others, as this cycle's settings ask"
COMPLEMENTARY = "hidden too, so a smaller group's answers can't be worked out by subtraction"
HIDDEN_EARLIER = "hidden as in the earlier version of this report"

K = TypeVar("K", bound=Hashable)


def _fewer_than(threshold: int) -> str:
    return f"fewer than {threshold} response{'s' if threshold != 1 else ''}"


@dataclass(frozen=True)
class Disclosure:
    """What one cell may publish.

    Attributes
    ----------
    shown : tuple of str
        Groups published separately, in display order; never ``"others"``.
    merged : tuple of str
        Groups with raters that count only inside "others" (below threshold, manager not
        shown by the cycle's settings, or hidden by complementary suppression). When
        ``others_shown`` is false their raters are published nowhere in this cell.
    others_shown : bool
        Whether "others" (all non-self raters) is published.
    reasons : dict
        Group (or ``"others"``) → plain-language reason it is not shown separately.
    counts : dict
        The counts the plan was made from, for every group (0 when absent).
    """

    shown: tuple[str, ...]
    merged: tuple[str, ...]
    others_shown: bool
    reasons: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def is_shown(self, group: str) -> bool:
        """Whether ``group`` is published; ``"others"`` asks about "others"."""
        if group == OTHERS:
            return self.others_shown
        return group in self.shown

    @property
    def others_n(self) -> int:
        """Number of non-self raters ("others" count)."""
        return sum(self.counts.get(g, 0) for g in NON_SELF)


def _checked_thresholds(thresholds: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for group in (*GROUPS, OTHERS):
        if group not in thresholds:
            raise ValueError(f"no threshold for {group!r}")
        value = thresholds[group]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"threshold for {group!r} must be a positive integer, got {value!r}")
        if group in _POOLED and value < 2:
            raise ValueError(f"threshold for {group!r} below 2 would publish single raters")
        out[group] = value
    return out


def _checked_counts(counts: Mapping[str, int]) -> dict[str, int]:
    unknown = set(counts) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups in counts: {sorted(map(str, unknown))}")
    out = {}
    for group in GROUPS:
        value = counts.get(group, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"count for {group!r} must be a non-negative integer, got {value!r}")
        out[group] = value
    return out


def _pool_floor(groups: Collection[str], n: Mapping[str, int], t: Mapping[str, int]) -> int:
    """Fewest raters a pool of ``groups`` needs: the others threshold, and no rater pooled
    with fewer colleagues than their own group's threshold promises."""
    return max([t[OTHERS], *(t[g] for g in groups if n[g] > 0)])


def _pool_ok(
    groups: Collection[str], n: Mapping[str, int], t: Mapping[str, int], show_manager: bool
) -> bool:
    """Whether a derivable pool of ``groups`` may be published.

    Besides its size, a pool made only of managers would show, under another name, the
    manager group the cycle's settings hide.
    """
    present = [g for g in groups if n[g] > 0]
    if not show_manager and present == [MANAGER]:
        return False
    return sum(n[g] for g in present) >= _pool_floor(present, n, t)


def plan_disclosure(
    counts: Mapping[str, int],
    thresholds: Mapping[str, int],
    *,
    show_manager: bool,
    hide: Collection[str] = (),
) -> Disclosure:
    """Plan which groups of one cell are published, applying the rules of the module.

    Parameters
    ----------
    counts : mapping
        Raters per relationship group (``self``, ``manager``, ``peer``,
        ``direct_report``, ``other``) who contributed to the cell; missing groups are 0.
    thresholds : mapping
        Minimum raters per group and for ``"others"`` (a cycle's ``thresholds``).
        Peer, direct-report, other and others thresholds must be at least 2.
    show_manager : bool
        Whether the cycle shows the manager's answers as a group of their own.
    hide : collection of str, optional
        Groups to hide in any case (what an earlier version of the report hid, or what
        a wider plan folds away).

    Returns
    -------
    Disclosure

    Notes
    -----
    Let :math:`M` be the nonempty non-self groups not shown. Publishing "others" and the
    shown groups reveals :math:`\\sum_M x = \\sum_{\\text{others}} x - \\sum_{\\text{shown}} x`
    and :math:`n_M` (and :math:`M`'s answer distribution), so "others" is published only
    when :math:`n_M = 0` or :math:`n_M \\ge \\max(T_\\text{others}, \\max_{g \\in M} T_g)`.
    "Others" itself needs as many raters (a lone group in it would otherwise be shown
    below its own threshold under another name). A short remainder is grown by hiding the
    fewest (then smallest) peer, direct-report or other groups; the manager is never
    hidden for this (see the module docstring); if nothing helps, "others" is hidden.

    Examples
    --------
    >>> t = {"self": 1, "manager": 1, "peer": 3, "direct_report": 3, "other": 3, "others": 3}
    >>> p = plan_disclosure({"self": 1, "manager": 1, "peer": 2, "direct_report": 4},
    ...                     t, show_manager=True)
    >>> p.shown, p.merged, p.others_shown
    (('self', 'manager'), ('peer', 'direct_report'), True)
    """
    n = _checked_counts(counts)
    t = _checked_thresholds(thresholds)
    unknown = set(hide) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups to hide: {sorted(unknown)}")
    reasons: dict[str, str] = {}

    self_shown = n[SELF] >= t[SELF] and SELF not in hide
    if not self_shown:
        reasons[SELF] = (
            NO_RESPONSES
            if n[SELF] == 0
            else HIDDEN_EARLIER
            if SELF in hide
            else _fewer_than(t[SELF])
        )

    candidates: list[str] = []
    for g in NON_SELF:
        if n[g] == 0:
            reasons[g] = NO_RESPONSES
        elif g in hide:
            reasons[g] = HIDDEN_EARLIER
        elif g == MANAGER and not show_manager:
            reasons[g] = NOT_SHOWN_SEPARATELY
        elif n[g] < t[g]:
            reasons[g] = _fewer_than(t[g])
        else:
            candidates.append(g)
    merged = [g for g in NON_SELF if n[g] > 0 and g not in candidates]

    total = sum(n[g] for g in NON_SELF)
    others_floor = _pool_floor(NON_SELF, n, t)
    others_shown = _pool_ok(NON_SELF, n, t, show_manager)
    if total == 0:
        reasons[OTHERS] = NO_RESPONSES
    elif total < others_floor:
        reasons[OTHERS] = _fewer_than(others_floor)
    elif not others_shown:
        reasons[OTHERS] = "hidden because it would show only the manager's answers"

    if others_shown and merged and not _pool_ok(merged, n, t, show_manager):
        movable = [g for g in candidates if g != MANAGER]
        extra = _complement(merged, movable, n, t, show_manager)
        if extra is None:
            others_shown = False
            reasons[OTHERS] = COMPLEMENTARY
        else:
            for g in extra:
                candidates.remove(g)
                reasons[g] = COMPLEMENTARY
            merged = [g for g in NON_SELF if n[g] > 0 and g not in candidates]

    shown = ((SELF,) if self_shown else ()) + tuple(candidates)
    return Disclosure(shown, tuple(merged), others_shown, reasons, n)


def _complement(
    merged: Sequence[str],
    movable: Sequence[str],
    n: Mapping[str, int],
    t: Mapping[str, int],
    show_manager: bool,
) -> tuple[str, ...] | None:
    """Fewest, then smallest, groups to hide so the remainder pools enough raters."""
    best: tuple[tuple[int, int, tuple[int, ...]], tuple[str, ...]] | None = None
    for k in range(1, len(movable) + 1):
        for extra in itertools.combinations(movable, k):
            if not _pool_ok([*merged, *extra], n, t, show_manager):
                continue
            # Ties go to hiding the later groups in display order.
            key = (k, sum(n[g] for g in extra), tuple(-GROUPS.index(g) for g in extra))
            if best is None or key < best[0]:
                best = (key, extra)
        if best is not None:
            return best[1]
    return None


def plan_cells(
    cells: Mapping[K, Mapping[str, int]],
    thresholds: Mapping[str, int],
    *,
    show_manager: bool,
    carried: Mapping[K, Collection[str]] | None = None,
) -> dict[K, Disclosure]:
    """Plan cells whose answers are separate (a report's items), each on its own counts.

    ``carried`` maps a cell to the groups to hide there in any case (what an earlier
    version of the report hid, :func:`carried_hiding`, and what the report's response
    counts fold into "others": shown in a cell where it skipped, the group beside it would
    tell that it skipped). Figures pooled from several of
    these cells must then pool only where a group is published (:func:`published_in`).
    """
    carried = carried or {}
    return {
        key: plan_disclosure(
            counts, thresholds, show_manager=show_manager, hide=carried.get(key, ())
        )
        for key, counts in cells.items()
    }


def published_in(plans: Mapping[K, Disclosure], group: str) -> list[K]:
    """The cells whose figures of ``group`` (``"others"`` for "others") are published:
    all that a figure pooled from these cells (a competency) may pool (rule 6).

    >>> t = {"self": 1, "manager": 1, "peer": 3, "direct_report": 3, "other": 3, "others": 3}
    >>> plans = plan_cells({"a": {"peer": 3}, "b": {"peer": 2}}, t, show_manager=False)
    >>> published_in(plans, "peer"), published_in(plans, "others")
    (['a'], ['a'])
    """
    return [key for key, plan in plans.items() if plan.is_shown(group)]


def plan_export(
    cells: Sequence[tuple[Mapping[str, int], int | None]], size: int
) -> tuple[frozenset[str], bool]:
    """What an export of a report's figures withholds beyond the report's own plan.

    An export travels further than a report, so every separate group in it — the named
    manager included — and "others" must pool at least ``size`` raters. ``cells`` are a
    report's published cells (every competency and the overall score), each given as its
    shown groups' rater counts (self left out) and its "others" count, None when the
    report hides "others" there.

    Returns the groups to withhold in every cell and whether "others" is withheld; a
    group withheld in one cell is withheld in all.
    Withholding a shown group grows the remainder ("others" minus the groups shown);
    while a remainder pools fewer than ``size`` raters the smallest shown group other than
    the manager is withheld too (the manager is no cover, rule 4), and when none is left
    "others" is. What stays is a subset of the report's figures, so an export never tells
    more than the report (whose competency figures are sums of its item figures, rule 6:
    the remainders here are a further size rule, not what keeps the figures safe).

    Examples
    --------
    >>> cut, no_others = plan_export([({"manager": 1, "peer": 5, "direct_report": 4}, 10)], 3)
    >>> sorted(cut), no_others
    (['direct_report', 'manager'], False)
    """
    if size < 2:
        raise ValueError(f"an export's group size below 2 would publish single raters: {size}")
    cut: set[str] = set()
    no_others = False
    while True:
        before = (len(cut), no_others)
        for shown, others in cells:
            cut.update(g for g, n in shown.items() if n < size)
            no_others = no_others or (others is not None and others < size)
        for shown, others in cells if not no_others else ():
            if others is None:
                continue
            kept = {g: n for g, n in shown.items() if g not in cut}
            rest = others - sum(kept.values())
            if 0 < rest < size:
                cover = [g for g in kept if g != MANAGER]
                if cover:
                    cut.add(min(cover, key=lambda g: (kept[g], -GROUPS.index(g))))
                else:
                    no_others = True
                break
        if (len(cut), no_others) == before:
            return frozenset(cut), no_others


# -- versions -------------------------------------------------------------------------------


def carried_hiding(shown: Collection[str], counts: Mapping[str, int]) -> frozenset[str]:
    """The groups a new version must keep hidden in a cell an earlier version published
    ``shown`` groups of (rule 7): every non-self group it had raters of (``counts``: its
    raters per group, of the cell or, as an upper bound, of the whole report) but did not
    show there. Showing one now would give its early raters' figures by subtraction: the
    earlier "others" minus this version's groups.

    >>> sorted(carried_hiding({"peer", "others"}, {"peer": 3, "other": 2}))
    ['other']
    """
    return frozenset(g for g in NON_SELF if counts.get(g, 0) > 0 and g not in shown)


@dataclass(frozen=True)
class Published:
    """The rater counts one cell of a report publishes: each shown group's (self left
    out) and the "others" count, None when "others" is hidden there."""

    groups: Mapping[str, int]
    others: int | None


def _raters(n: int) -> str:
    return f"{n} rater{'s' if n != 1 else ''}"


def version_change_refusal(
    before: Mapping[str, Published],
    after: Mapping[str, Published],
    thresholds: Mapping[str, int],
    *,
    show_manager: bool,
    labels: Mapping[str, str] | None = None,
) -> str | None:
    """Why publishing ``after`` next to the earlier ``before`` would single out raters.

    Both map a cell (e.g. ``"item:…"``) to what it publishes. Subtracting the two
    versions' figures of a cell gives exactly the raters whose membership differs:

    - a group shown in both changes by the raters added to it;
    - with "others" in both, "others" minus those changes is the change of the groups
      merged now: the raters added to them, less the earlier raters of a group shown
      before and merged now;
    - with "others" only now, this version's merged remainder less the earlier figures
      of groups it merges but the earlier version showed.

    Each must be no rater or at least the threshold (the group's; for a remainder the
    "others" threshold and that of every group merged in it). The manager, shown by name
    when the cycle says so, is not anonymous and may change by one. What counts is the
    raters who answered the cell, not responses: a late rater who skips an item moves it
    by fewer. ``after`` must have been planned with :func:`carried_hiding` of ``before``.
    Returns None when every difference is safe.
    """
    t = _checked_thresholds(thresholds)
    named = {MANAGER} if show_manager else set()
    for cell, now in after.items():
        then = before.get(cell)
        if then is None:
            continue
        name = (labels or {}).get(cell, cell)
        for g, n in now.groups.items():
            change = n - then.groups.get(g, 0)
            if g != SELF and g not in named and 0 < abs(change) < t[g]:
                group = g.replace("_", " ")
                return (
                    f"{name}: {group} raters changed by {_raters(abs(change))}"
                    f" (at least {t[g]} needed)"
                )
        if now.others is None:
            continue
        merged = [g for g in NON_SELF if g not in now.groups]
        shown_before_only = sum(n for g, n in then.groups.items() if g in merged)
        rest_now = now.others - sum(n for g, n in now.groups.items() if g != SELF)
        if then.others is not None:
            rest_then = then.others - sum(n for g, n in then.groups.items() if g != SELF)
            rest = rest_now - rest_then - shown_before_only
        else:
            rest = rest_now - shown_before_only
        needed = max([t[OTHERS], *(t[g] for g in merged)])
        if 0 < abs(rest) < needed:
            return (
                f"{name}: the raters counted only in “All others” changed by"
                f" {_raters(abs(rest))} (at least {needed} needed)"
            )
    return None


# -- applying a plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One group's figures in one cell.

    Attributes
    ----------
    n : int
        Raters who contributed.
    mean : float or None
        None when ``n`` is 0.
    sd : float or None
        Sample standard deviation (``ddof=1``); None when unknown or ``n < 2``.
    distribution : mapping
        Answer value → number of raters who gave it (item cells; empty otherwise).
    """

    n: int
    mean: float | None
    sd: float | None = None
    distribution: Mapping[int, int] = field(default_factory=dict)

    @property
    def minimum(self) -> int | None:
        """Lowest answer given, from the distribution."""
        given = [v for v, c in self.distribution.items() if c > 0]
        return min(given) if given else None

    @property
    def maximum(self) -> int | None:
        """Highest answer given, from the distribution."""
        given = [v for v, c in self.distribution.items() if c > 0]
        return max(given) if given else None


def pool_cells(cells: Sequence[Cell]) -> Cell:
    """Pool groups' figures into one (how "others" is made from the non-self groups).

    The pooled sample variance comes from each group's sum of squares,
    :math:`\\sum x^2 = (n-1)s^2 + n\\bar x^2`; it is None when any group with two or
    more raters has no ``sd``.
    """
    parts = [c for c in cells if c.n > 0]
    n = sum(c.n for c in parts)
    if n == 0:
        return Cell(0, None)
    means = [c.mean for c in parts]
    if any(m is None for m in means):
        raise ValueError("a cell with raters has no mean")
    sums = [c.n * float(m) for c, m in zip(parts, means, strict=True) if m is not None]
    mean = sum(sums) / n
    sd: float | None = None
    if n >= 2 and all(c.sd is not None or c.n == 1 for c in parts):
        squares = sum(
            (c.n - 1) * (c.sd or 0.0) ** 2 + s * s / c.n for c, s in zip(parts, sums, strict=True)
        )
        sd = math.sqrt(max(squares - n * mean**2, 0.0) / (n - 1))
    distribution: dict[int, int] = {}
    for c in parts:
        for value, count in c.distribution.items():
            distribution[value] = distribution.get(value, 0) + count
    return Cell(n, mean, sd, dict(sorted(distribution.items())))


def suppress_cells(
    cells: Mapping[str, Cell],
    thresholds: Mapping[str, int],
    *,
    show_manager: bool,
    plan: Disclosure | None = None,
) -> dict[str, Cell | None]:
    """What of one cell may be published: group (and ``"others"``) → figures, or None.

    ``cells`` maps relationship groups (and optionally ``"others"``) to their figures;
    "others" is pooled from the non-self groups when missing, and must agree with them in
    ``n`` when given. The plan is made from the cells' ``n`` unless ``plan`` (e.g. from
    :func:`plan_cells`) is passed. Everything of a hidden group — n, mean, sd,
    distribution, min/max — is withheld together.
    """
    unknown = set(cells) - {*GROUPS, OTHERS}
    if unknown:
        raise ValueError(f"unknown groups in cells: {sorted(map(str, unknown))}")
    counts = {g: cells[g].n for g in GROUPS if g in cells}
    others = cells.get(OTHERS)
    if others is None:
        others = pool_cells([cells[g] for g in NON_SELF if g in cells])
    elif others.n != sum(counts.get(g, 0) for g in NON_SELF):
        raise ValueError(
            f"others has n={others.n} but the non-self groups add up to "
            f"{sum(counts.get(g, 0) for g in NON_SELF)}"
        )
    if plan is None:
        plan = plan_disclosure(counts, thresholds, show_manager=show_manager)
    elif any(plan.counts.get(g, 0) != counts.get(g, 0) for g in GROUPS):
        raise ValueError("the plan was made for different counts")
    out: dict[str, Cell | None] = {g: cells[g] if plan.is_shown(g) else None for g in GROUPS}
    out[OTHERS] = others if plan.others_shown else None
    return out


# -- comments ---------------------------------------------------------------------------------


def comment_groups(plan: Disclosure) -> dict[str, str | None]:
    """Label under which each group's comments are shown, or None when they are not shown.

    A comment keeps its group's label only when the group is shown; a merged group's
    comments are labelled "others", and only when "others" is shown (the "others"
    comments are then exactly the merged remainder, which the plan keeps large enough).
    Self comments are the participant's own and are always labelled self.
    """
    labels: dict[str, str | None] = {SELF: SELF}
    for g in NON_SELF:
        if plan.is_shown(g):
            labels[g] = g
        elif plan.others_shown:
            labels[g] = OTHERS
        else:
            labels[g] = None
    return labels


def shuffled_comments(
    comments: Sequence[tuple[str, str]], plan: Disclosure, *, seed: int | str
) -> list[tuple[str, str]]:
    """(label, text) pairs that may be shown, relabelled, grouped by label (in the
    report's group order, "All others" last) and in a seeded random order within each.

    ``comments`` are (group, text) pairs of one question; ``plan`` is the disclosure of
    that question (made from the counts of raters who commented). The pairs are first
    sorted by content, so the output depends only on which comments there are and on
    ``seed`` — never on submission order — and re-rendering the same report gives the
    same order. (Merely avoiding the submission order would itself leak it: with two
    comments it would always be reversed.) Grouping tells nothing the labels don't.
    """
    labels = comment_groups(plan)
    kept = []
    for group, text in comments:
        if group not in labels:
            raise ValueError(f"unknown group {group!r}")
        label = labels[group]
        if label is not None:
            kept.append((label, text))
    kept.sort(key=lambda c: (c[1], c[0]))
    # Reproducible on purpose (same report, same order); secrecy comes from the sort above.
    random.Random(seed).shuffle(kept)  # noqa: S311
    order = {label: k for k, label in enumerate((*GROUPS, OTHERS))}
    kept.sort(key=lambda c: order[c[0]])  # stable: still shuffled within a label
    return kept
