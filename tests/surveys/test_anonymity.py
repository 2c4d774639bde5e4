"""Anonymity rules (DESIGN §4): unit examples, then an attacker that must never win."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from surveys.anonymity import (
    COMPLEMENTARY,
    GROUPS,
    NON_SELF,
    OTHERS,
    Cell,
    Disclosure,
    Published,
    carried_hiding,
    comment_groups,
    plan_cells,
    plan_disclosure,
    plan_export,
    pool_cells,
    published_in,
    shuffled_comments,
    suppress_cells,
    version_change_refusal,
)
from surveys.models.enums import Relationship

T = {"self": 1, "manager": 1, "peer": 3, "direct_report": 3, "other": 3, "others": 3}


def plan(show_manager: bool = True, thresholds: Mapping[str, int] = T, **counts: int):
    return plan_disclosure(counts, thresholds, show_manager=show_manager)


# -- thresholds and merging ---------------------------------------------------------------------


def test_everyone_above_threshold_is_shown():
    p = plan(self=1, manager=1, peer=3, direct_report=4, other=3)
    assert p.shown == ("self", "manager", "peer", "direct_report", "other")
    assert p.merged == ()
    assert p.others_shown
    assert p.reasons == {}


def test_group_below_threshold_is_merged_into_others_not_dropped():
    p = plan(self=1, peer=4, direct_report=1, other=2)
    assert p.shown == ("self", "peer")
    assert p.merged == ("direct_report", "other")  # 3 together: enough to pool
    assert p.others_shown
    assert p.reasons["direct_report"] == "fewer than 3 responses"
    assert p.reasons["manager"] == "no responses"


def test_reasons_are_plain_language():
    p = plan(self=0, manager=0, peer=2, direct_report=5)
    assert p.reasons["self"] == "no responses"
    assert p.reasons["peer"] == "fewer than 3 responses"
    assert p.reasons["direct_report"] == COMPLEMENTARY
    assert p.reasons["other"] == "no responses"


def test_self_is_shown_alone_and_never_counts_in_others():
    p = plan(self=1, peer=2)
    assert p.shown == ("self",)
    assert not p.others_shown  # two peers are not enough, whatever self did
    assert p.reasons[OTHERS] == "fewer than 3 responses"
    assert "self" not in p.merged


def test_is_shown_answers_for_others_too():
    p = plan(peer=3)
    assert p.is_shown(OTHERS)
    assert p.is_shown("peer")
    assert not p.is_shown("manager")


def test_enum_keys_work_like_strings():
    p = plan_disclosure({Relationship.PEER: 3, Relationship.SELF: 1}, T, show_manager=True)
    assert p.shown == ("self", "peer")


# -- complementary suppression --------------------------------------------------------------------


def test_short_remainder_hides_another_group():
    # others (7) - manager (1) - direct reports (4) would give the two peers' sum.
    p = plan(self=1, manager=1, peer=2, direct_report=4)
    assert p.shown == ("self", "manager")
    assert p.merged == ("peer", "direct_report")
    assert p.others_shown
    assert p.reasons["direct_report"] == COMPLEMENTARY


def test_fewest_groups_then_smallest_then_later_in_display_order():
    assert plan(peer=1, direct_report=5, other=3).merged == ("peer", "other")
    assert plan(peer=1, direct_report=3, other=5).merged == ("peer", "direct_report")
    # A tie in size hides the later group.
    assert plan(peer=1, direct_report=3, other=3).merged == ("peer", "other")
    # One big group beats two small ones.
    assert plan(manager=0, peer=1, direct_report=3, other=3, self=1).shown == (
        "self",
        "direct_report",
    )


def test_manager_is_never_used_as_cover():
    # Hiding the (by design identifiable) manager would leave others - manager = 2 peers.
    p = plan(self=1, manager=1, peer=2)
    assert p.shown == ("self", "manager")
    assert not p.others_shown
    assert p.reasons[OTHERS] == COMPLEMENTARY
    assert p.merged == ("peer",)


def test_manager_not_shown_by_the_cycle_is_pooled_like_anyone():
    p = plan(show_manager=False, self=1, manager=1, peer=2)
    assert p.shown == ("self",)
    assert p.merged == ("manager", "peer")
    assert p.others_shown
    assert p.reasons["manager"] == "included in others, as this cycle's settings ask"
    # Nor may a remainder (or "others") consist of managers only.
    p = plan(show_manager=False, manager=3, peer=3)
    assert p.merged == ("manager", "peer")
    assert not plan(show_manager=False, manager=3).others_shown
    # Alone, the pooled manager needs company: the peers are hidden to give it some.
    p = plan(show_manager=False, manager=1, peer=3, direct_report=4)
    assert p.merged == ("manager", "peer")
    assert p.shown == ("direct_report",)


def test_stricter_group_threshold_governs_the_remainder():
    t = {**T, "peer": 5}
    p = plan(thresholds=t, manager=1, peer=4, direct_report=3)
    assert p.merged == ("peer", "direct_report")  # a lone remainder of 4 peers is < 5
    # "others" made of peers only would show them below their threshold under another name.
    assert not plan(thresholds=t, peer=4).others_shown
    assert plan(thresholds=t, peer=5).others_shown


def test_others_threshold_applies_to_the_remainder():
    t = {**T, "others": 5}
    p = plan(thresholds=t, manager=1, peer=3, direct_report=2, other=4)
    assert p.merged == ("peer", "direct_report")
    assert sum(p.counts[g] for g in p.merged) >= 5


@pytest.mark.parametrize(
    ("thresholds", "counts", "message"),
    [
        ({**T, "peer": 1}, {}, "below 2"),
        ({k: v for k, v in T.items() if k != "others"}, {}, "no threshold"),
        (T, {"peer": -1}, "non-negative"),
        (T, {"others": 3}, "unknown groups"),
        ({**T, "other": 2.5}, {}, "positive integer"),
    ],
)
def test_bad_input_is_refused(thresholds, counts, message):
    with pytest.raises(ValueError, match=message):
        plan_disclosure(counts, thresholds, show_manager=True)


# -- families of cells ---------------------------------------------------------------------------


def test_items_are_planned_one_by_one_and_competencies_pool_what_they_publish():
    """One item a peer skipped hides peers on that item only (anonymity rule 6)."""
    cells = {
        "item 1": {"self": 1, "manager": 1, "peer": 3, "direct_report": 4},
        "item 2": {"self": 1, "manager": 1, "peer": 2, "direct_report": 4},  # a peer skipped
    }
    plans = plan_cells(cells, T, show_manager=True)
    assert plans["item 1"].shown == ("self", "manager", "peer", "direct_report")
    assert plans["item 2"].shown == ("self", "manager")  # direct reports cover the 2 peers
    assert published_in(plans, "peer") == ["item 1"]
    assert published_in(plans, "others") == ["item 1", "item 2"]
    carried = plan_cells(cells, T, show_manager=True, carried={"item 1": {"peer"}})
    assert carried["item 1"].shown == ("self", "manager", "direct_report")
    assert carried["item 1"].reasons["peer"] == "hidden as in the earlier version of this report"


# -- applying a plan to figures -------------------------------------------------------------------


def cell(values: list[int]) -> Cell:
    return Cell(
        len(values),
        statistics.fmean(values) if values else None,
        statistics.stdev(values) if len(values) > 1 else None,
        {v: values.count(v) for v in sorted(set(values))},
    )


def test_pooled_cell_matches_the_pooled_answers():
    a, b, c = [1, 2, 5], [4, 4], [3]
    pooled = pool_cells([cell(a), cell(b), cell(c), cell([])])
    everyone = a + b + c
    assert pooled.n == 6
    assert pooled.mean == pytest.approx(statistics.fmean(everyone))
    assert pooled.sd == pytest.approx(statistics.stdev(everyone))
    assert pooled.distribution == {1: 1, 2: 1, 3: 1, 4: 2, 5: 1}
    assert (pooled.minimum, pooled.maximum) == (1, 5)
    assert pool_cells([]) == Cell(0, None)


def test_suppress_cells_withholds_everything_of_a_hidden_group():
    cells = {
        "self": cell([4]),
        "manager": cell([3]),
        "peer": cell([5, 5]),
        "direct_report": cell([2, 3, 4, 4]),
    }
    out = suppress_cells(cells, T, show_manager=True)
    assert out["self"] == cells["self"]
    assert out["manager"] == cells["manager"]
    assert out["peer"] is None
    assert out["direct_report"] is None  # complementary suppression
    assert out["other"] is None
    others = out[OTHERS]
    assert others is not None
    assert others.n == 7
    assert others.mean == pytest.approx(26 / 7)


def test_suppress_cells_refuses_inconsistent_input():
    cells = {"peer": cell([1, 2, 3]), OTHERS: cell([1, 2])}
    with pytest.raises(ValueError, match="add up"):
        suppress_cells(cells, T, show_manager=True)
    other_plan = plan(peer=4)
    with pytest.raises(ValueError, match="different counts"):
        suppress_cells({"peer": cell([1, 2, 3])}, T, show_manager=True, plan=other_plan)


# -- comments --------------------------------------------------------------------------------------


def test_comment_labels_follow_the_plan():
    p = plan(self=1, manager=1, peer=3, direct_report=2, other=1)
    assert comment_groups(p) == {
        "self": "self",
        "manager": "manager",
        "peer": "peer",
        "direct_report": OTHERS,
        "other": OTHERS,
    }
    hidden = plan(self=1, manager=1, peer=2)
    labels = comment_groups(hidden)
    assert labels["peer"] is None
    assert labels["self"] == "self"


COMMENTS = [
    ("peer", "Great at planning."),
    ("manager", "Delegates well."),
    ("direct_report", "<b>Listens</b> 👂"),
    ("peer", "Could speak up more."),
    ("self", "I want to coach more."),
    ("other", "שלום"),
    ("peer", "Clear writer."),
]


def test_comments_are_filtered_relabelled_and_shuffled_stably():
    p = plan(self=1, manager=1, peer=3, direct_report=2, other=1)
    out = shuffled_comments(COMMENTS, p, seed=42)
    assert sorted(out) == sorted(
        [(g if g in ("self", "manager", "peer") else OTHERS, text) for g, text in COMMENTS]
    )
    assert out == shuffled_comments(COMMENTS, p, seed=42)
    assert out == shuffled_comments(list(reversed(COMMENTS)), p, seed=42)
    # Grouped by label in report order, "All others" last; shuffled within each label
    # (3 peers × 2 merged comments: 12 orders at most).
    assert [label for label, _ in out] == [
        "self",
        "manager",
        "peer",
        "peer",
        "peer",
        OTHERS,
        OTHERS,
    ]
    orders = {tuple(shuffled_comments(COMMENTS, p, seed=s)) for s in range(40)}
    assert len(orders) > 8


def test_comments_of_a_group_that_cannot_be_shown_are_left_out():
    p = plan(self=1, manager=1, peer=2)
    out = shuffled_comments(COMMENTS, p, seed="report-7")
    assert {g for g, _ in out} == {"self", "manager"}


def test_output_order_does_not_depend_on_submission_order():
    p = plan(peer=3)
    pairs = [("peer", "a"), ("peer", "b"), ("peer", "c")]
    results = {
        tuple(shuffled_comments(list(perm), p, seed=1)) for perm in itertools.permutations(pairs)
    }
    assert len(results) == 1


# -- the attacker ----------------------------------------------------------------------------
#
# Raters are coordinates; every published figure (a group's or "others"' sum, count, or
# count of one answer value) is a linear function of the raters' answers over that figure's
# raters. The attacker knows who is in which group and tries every combination of the
# published figures with coefficients in {-1, 0, 1} — and, to be thorough, any real
# coefficients (a projection onto the span of the published figures) — looking for a
# combination that singles out a protected set of raters:
#   * a merged group below its threshold (or the manager the cycle does not show),
#   * one rater who is not in a shown group,
#   * any set of unshown raters smaller than the pool they were promised.
# A found combination is then evaluated on the published, rounded means to check the
# attacker really recovers the hidden sum.

Planner = Callable[[Mapping[str, int], Mapping[str, int], bool], Disclosure]


def safe_planner(counts, thresholds, show_manager):
    return plan_disclosure(counts, thresholds, show_manager=show_manager)


def naive_planner(counts, thresholds, show_manager):
    """Thresholds only, no complementary suppression (what the real planner must beat)."""
    shown = tuple(
        g
        for g in GROUPS
        if counts.get(g, 0) >= thresholds[g]
        and counts.get(g, 0)
        and (g != "manager" or show_manager)
    )
    merged = tuple(g for g in NON_SELF if counts.get(g, 0) and g not in shown)
    total = sum(counts.get(g, 0) for g in NON_SELF)
    return Disclosure(shown, merged, total >= thresholds[OTHERS], {}, dict(counts))


COMBOS = {k: np.array(list(itertools.product((-1, 0, 1), repeat=k))) for k in range(7)}


def random_thresholds(rng: np.random.Generator) -> dict[str, int]:
    t = {"self": 1, "manager": int(rng.integers(1, 3))}
    for g in ("peer", "direct_report", "other", "others"):
        t[g] = int(rng.integers(2, 6))
    return t


def targets(
    group_of: np.ndarray, shown: set[str], show_manager: bool, n: Mapping[str, int], t
) -> list[np.ndarray]:
    """Indicator vectors of the sets of raters an attacker must never isolate."""
    hidden = [g for g in NON_SELF if n[g] and g not in shown]
    out = []
    for g in hidden:
        if n[g] < t[g] or (g == "manager" and not show_manager):
            out.append(group_of == g)
    for k in range(1, len(hidden) + 1):
        for pool in itertools.combinations(hidden, k):
            size = sum(n[g] for g in pool)
            if size < max([t[OTHERS], *(t[g] for g in pool)]):
                out.append(np.isin(group_of, pool))
    for r in np.flatnonzero(np.isin(group_of, hidden)):
        one = np.zeros(len(group_of), dtype=bool)
        one[r] = True
        out.append(one)
    return out


def attack_cell(rng: np.random.Generator, planner: Planner) -> list[str]:
    """One random report cell; returns the descriptions of every successful attack."""
    t = random_thresholds(rng)
    show_manager = bool(rng.integers(2))
    n = {g: int(rng.integers(0, 9)) for g in GROUPS}
    n["self"] = int(rng.integers(0, 2))
    group_of = np.array([g for g in GROUPS for _ in range(n[g])])
    answers = rng.integers(1, 6, size=len(group_of))
    p = planner(n, t, show_manager)

    figures = [group_of == g for g in p.shown]
    if p.others_shown:
        figures.append(group_of != "self")
    if not figures:
        return []
    a = np.array(figures, dtype=np.int64)
    # What the report prints: n and a mean rounded to 2 places; the attacker undoes it.
    counts = a.sum(axis=1)
    means = np.round((a @ answers) / np.maximum(counts, 1), 2)
    sums = np.round(counts * means).astype(np.int64)
    # Answer distributions are figures too: value -> count per published figure.
    dists = np.array([[(answers[f] == v).sum() for v in range(1, 6)] for f in figures])

    found = []
    combos = COMBOS[len(figures)]
    weights = combos @ a  # every {-1, 0, 1} combination, as weights on the raters
    for target in targets(group_of, set(p.shown), show_manager, n, t):
        hits = np.flatnonzero((weights == target).all(axis=1))
        for c in combos[hits[:1]]:
            assert c @ sums == answers[target].sum()  # the attacker really gets the sum
            assert (c @ dists == [(answers[target] == v).sum() for v in range(1, 6)]).all()
            found.append(f"{n} {t} show_manager={show_manager}: {np.flatnonzero(target)}")
        # Any real coefficients: is the target in the span of the published figures?
        coef, *_ = np.linalg.lstsq(a.T.astype(float), target.astype(float), rcond=None)
        if np.allclose(a.T @ coef, target) and not hits.size:
            found.append(f"(real coefficients) {n} {t}: {np.flatnonzero(target)}")
    return found


def test_attacker_never_recovers_a_protected_figure():
    rng = np.random.default_rng(20240604)
    leaks = [leak for _ in range(3000) for leak in attack_cell(rng, safe_planner)]
    assert leaks == []


def test_attacker_beats_a_planner_without_complementary_suppression():
    rng = np.random.default_rng(20240604)
    reports = [attack_cell(rng, naive_planner) for _ in range(600)]
    assert sum(bool(r) for r in reports) > 150  # about half of them


def test_attacker_wins_the_textbook_case_against_the_naive_planner():
    n = {"self": 1, "manager": 1, "peer": 2, "direct_report": 4, "other": 0}
    p = naive_planner(n, T, True)
    assert p.shown == ("self", "manager", "direct_report")
    assert p.others_shown  # others - manager - direct reports = the two peers
    assert plan_disclosure(n, T, show_manager=True).merged == ("peer", "direct_report")


# -- the attacker against a competency and its items ----------------------------------------


def competency_family(rng: np.random.Generator, rater_means: bool):
    """Random raters answering 3 items (each skipped with 20% chance).

    Returns the rater groups, who counts in each cell and, per cell and group, the
    published sum as weights over the (item, rater) answers. The competency figure pools
    the item answers, or (``rater_means``) averages each rater's item mean, counting
    raters who answered at least two items, as scoring.aggregation does.
    """
    n = {g: int(rng.integers(0, 7)) for g in GROUPS}
    n["self"] = int(rng.integers(0, 2))
    group_of = np.array([g for g in GROUPS for _ in range(n[g])])
    r = len(group_of)
    answered = rng.random((3, r)) > 0.2
    per_rater = answered.sum(axis=0)
    counted = per_rater >= (2 if rater_means else 1)
    members = {"competency": counted, **{f"item {i}": answered[i] for i in range(3)}}
    cells: dict[str, dict[str, np.ndarray]] = {key: {} for key in members}
    for g in (*GROUPS, OTHERS):
        in_group = group_of != "self" if g == OTHERS else group_of == g
        for i in range(3):
            w = np.zeros((3, r))
            w[i] = in_group & answered[i]
            cells[f"item {i}"][g] = w.ravel()
        weight = 1 / np.maximum(per_rater, 1) if rater_means else 1.0
        cells["competency"][g] = np.where(answered & in_group & counted, weight, 0.0).ravel()
    return group_of, members, cells


def _rater_means(group_of, members, where, g) -> np.ndarray:
    """A competency figure of ``g`` as the mean of each rater's mean over the items
    ``where`` (raters who answered at least two), as weights over the answers."""
    answered = np.array([members[f"item {i}"] for i in range(3)])
    in_group = group_of != "self" if g == OTHERS else group_of == g
    chosen = np.zeros_like(answered)
    chosen[[int(k.split()[1]) for k in where]] = True
    used = answered & chosen & in_group
    per_rater = used.sum(axis=0)
    return np.where(used & (per_rater >= 2), 1 / np.maximum(per_rater, 1), 0.0).ravel()


def family_leaks(
    rng: np.random.Generator, *, use_report_plan: bool, rater_means: bool = False
) -> list[str]:
    """Attack a competency and its items together with any real coefficients."""
    t = random_thresholds(rng)
    show_manager = bool(rng.integers(2))
    group_of, members, cells = competency_family(rng, rater_means)
    r = len(group_of)
    counts = {
        key: {g: int((m & (group_of == g)).sum()) for g in GROUPS} for key, m in members.items()
    }
    items = {k: c for k, c in counts.items() if k != "competency"}
    plans = plan_cells(items, t, show_manager=show_manager)
    rows = []
    for key, p in plans.items():
        rows += [cells[key][g] for g in p.shown]
        if p.others_shown:
            rows.append(cells[key][OTHERS])
    if use_report_plan:
        # As reports do: a group's competency figure pools the items that publish it.
        shown = set()
        for g in (*GROUPS, OTHERS):
            where = published_in(plans, g)
            if where:
                rows.append(
                    _rater_means(group_of, members, where, g)
                    if rater_means
                    else sum(cells[k][g] for k in where)
                )
                shown.add(g)
        plans["competency"] = Disclosure(
            tuple(g for g in GROUPS if g in shown),
            tuple(g for g in NON_SELF if g not in shown and counts["competency"][g]),
            OTHERS in shown,
            counts=counts["competency"],
        )
    else:
        # Every answer pooled into the competency, planned on its own counts.
        p = plan_disclosure(counts["competency"], t, show_manager=show_manager)
        plans["competency"] = p
        rows += [cells["competency"][g] for g in p.shown]
        if p.others_shown:
            rows.append(cells["competency"][OTHERS])
    if not rows:
        return []
    _, s, vt = np.linalg.svd(np.array(rows), full_matrices=False)
    span = vt[s > 1e-9 * s[0]]

    found = []
    for key, p in plans.items():
        n = counts[key]
        hidden = [g for g in NON_SELF if n[g] and not p.is_shown(g)]
        sets = []
        for k in range(1, len(hidden) + 1):
            for pool in itertools.combinations(hidden, k):
                size = sum(n[g] for g in pool)
                if size < max([t[OTHERS], *(t[g] for g in pool)]) or (
                    pool == ("manager",) and not show_manager
                ):
                    sets.append(np.isin(group_of, pool) & members[key])
        for j in np.flatnonzero(np.isin(group_of, hidden) & members[key]):
            one = np.zeros(r, dtype=bool)
            one[j] = True
            sets.append(one)
        # The figure "others" would give for just these raters, as weights on answers.
        others = cells[key][OTHERS].reshape(3, r)
        for raters in sets:
            target = (others * raters).ravel()
            residual = target - span.T @ (span @ target)
            if np.abs(residual).max() < 1e-7:
                found.append(f"{key} {n} {t}: raters {np.flatnonzero(raters)}")
    return found


def test_attacker_never_recovers_a_protected_figure_across_related_cells():
    rng = np.random.default_rng(7)
    leaks = [leak for _ in range(1000) for leak in family_leaks(rng, use_report_plan=True)]
    assert leaks == []


def test_pooling_items_that_hide_a_group_into_its_competency_leaks():
    rng = np.random.default_rng(7)
    leaky = sum(bool(family_leaks(rng, use_report_plan=False)) for _ in range(1000))
    assert leaky > 100


def test_rater_means_over_uneven_skipping_leak_whatever_the_plan():
    """Why reports pool answers (module docstring, rule 6): a mean of rater means weights
    raters by 1/items answered, so competency and item "others" together isolate raters
    even when each is planned on its own counts. Pooled competency figures
    (rater_means=False) are covered by
    test_attacker_never_recovers_a_protected_figure_across_related_cells."""
    rng = np.random.default_rng(7)
    leaks = [
        leak
        for _ in range(300)
        for leak in family_leaks(rng, use_report_plan=True, rater_means=True)
    ]
    assert leaks


def test_pooled_competency_figures_over_uneven_skipping_do_not_leak():
    # The same attack, the same 20% skipping, competency figures pooled as reports do.
    rng = np.random.default_rng(11)
    leaks = [leak for _ in range(500) for leak in family_leaks(rng, use_report_plan=True)]
    assert leaks == []


def test_sanity_of_the_rounding_attack():
    # Two decimals are plenty to recover integer sums for any group size we allow.
    for n in range(1, 60):
        for total in range(n, 5 * n + 1):
            assert round(n * round(total / n, 2)) == total
    assert math.isclose(round(7 * round(26 / 7, 2)), 26)


# -- exports ---------------------------------------------------------------------------------


def _cells(*cells: tuple[int | None, dict[str, int]]) -> list[tuple[dict[str, int], int | None]]:
    return [(shown, others) for others, shown in cells]


@pytest.mark.parametrize(
    ("cells", "size", "withheld"),
    [
        # The lone manager is below the export's size; the smallest other group covers them.
        (
            _cells((10, {"manager": 1, "peer": 5, "direct_report": 4})),
            3,
            {"manager", "direct_report"},
        ),
        # No group is large enough to cover the manager alone: only "others" stays.
        (_cells((4, {"manager": 1, "peer": 3})), 3, {"manager", "peer"}),
        (_cells((9, {"peer": 6, "other": 3}), (7, {"peer": 4, "other": 3})), 3, set()),
        # Peers too few in one competency are withheld in every one; then the remainder
        # there (9 - 5 = 4) is short and the other colleagues go too.
        (_cells((12, {"peer": 6, "other": 6}), (9, {"peer": 4, "other": 5})), 5, {"peer", "other"}),
        # A cell where the report already hides "others" constrains only its groups.
        (_cells((None, {"peer": 3}), (8, {"peer": 5, "other": 3})), 3, set()),
    ],
)
def test_what_an_export_withholds_beyond_the_report(cells, size, withheld):
    cut, no_others = plan_export(cells, size)
    assert set(cut) == withheld
    assert not no_others
    # Whatever stays passes the export's rule in every cell.
    for shown, others in cells:
        kept = {g: n for g, n in shown.items() if g not in cut}
        assert all(n >= size for n in kept.values())
        rest = others - sum(kept.values()) if others is not None else 0
        assert rest == 0 or rest >= size


def test_an_export_withholds_others_in_every_cell_or_none():
    # "Others" too few in one cell: withheld in all of them (groups large enough stay).
    cells = _cells((10, {"peer": 5, "other": 5}), (3, {"peer": 3}))
    assert plan_export(cells, 4) == (frozenset({"peer"}), True)
    # A short remainder only the manager could cover: "others" goes, never the manager.
    assert plan_export(_cells((7, {"manager": 5, "peer": 2})), 3) == (frozenset({"peer"}), True)


def test_an_export_never_publishes_single_raters():
    with pytest.raises(ValueError, match="below 2"):
        plan_export(_cells((5, {"peer": 5})), 1)


# -- versions (rule 7) -----------------------------------------------------------------------


def test_a_new_version_keeps_hidden_what_the_earlier_one_hid():
    assert carried_hiding({"peer", "others"}, {"peer": 3, "other": 2, "self": 1}) == {"other"}
    assert carried_hiding(set(), {"peer": 2}) == {"peer"}
    assert carried_hiding(set(), {"self": 1}) == frozenset()


def _check(before, after, *, show_manager=False):
    return version_change_refusal(
        {"cell": Published(*before)},
        {"cell": Published(*after)},
        T,
        show_manager=show_manager,
        labels={"cell": "item “x”"},
    )


def test_version_changes_of_enough_raters_are_safe():
    assert _check(({"peer": 3}, 6), ({"peer": 6}, 9)) is None  # 3 peers came
    assert _check(({"peer": 3}, 6), ({"peer": 3}, 6)) is None  # nothing here changed
    assert _check(({}, 5), ({}, 8)) is None  # 3 raters, merged
    assert _check(({}, None), ({"peer": 3}, 3)) is None  # nothing was published before


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        # One more peer answered the item (the others skipped it): that peer's answer.
        (({"peer": 3}, 3), ({"peer": 4}, 4), "item “x”: peer raters changed by 1 rater"),
        # Peers moved by 3, "others" by 4: the fourth is a merged rater, alone.
        (
            ({"peer": 3}, 5),
            ({"peer": 6}, 9),
            "item “x”: the raters counted only in “All others” changed by 1 rater",
        ),
        # Merged raters only, two of them.
        (({}, 5), ({}, 7), "changed by 2 raters (at least 3 needed)"),
    ],
)
def test_version_changes_that_single_out_raters_are_refused(before, after, reason):
    found = _check(before, after)
    assert found is not None
    assert reason in found


def test_a_manager_shown_by_name_may_change_alone():
    before = ({"manager": 1, "peer": 3}, 4)
    assert _check(({"peer": 3}, 3), ({"manager": 1, "peer": 3}, 4), show_manager=True) is None
    assert _check(before, ({"manager": 1, "peer": 3}, 4), show_manager=True) is None
    # Without show_manager the manager is pooled like anyone: a lone late manager shows.
    found = _check(({}, 3), ({}, 4))
    assert found is not None
    assert "changed by 1 rater" in found
