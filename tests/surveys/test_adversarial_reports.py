"""The adversary of DESIGN §4: published numbers of many reports, every combination tried.

Many random reports are built through :func:`surveys.reports.build_report` (random teams,
group sizes around the thresholds, random answers with random "not able to judge"
gaps, random thresholds and manager settings). From each report only what it publishes
is taken: every shown group's mean and count and every answer distribution, for every
item, competency and the overall row, and self. The attacker is given more than a
reader has — the exact answer cells behind every figure (who answered which item) and
unrounded figures — and may combine the figures with *any* real coefficients, which
covers every sum and difference of count-weighted means across items, competencies and
the overall row. Unknowns are the answers as one-hot indicators (item, rater, value),
so a mean is a weighted sum of them and a distribution a set of plain sums; that each
answer has exactly one value is given to the attacker too.

A target is anything the anonymity rules protect in a cell: one rater's answers (any
rater but self and a manager shown by name), and any pool of hidden groups smaller than
its threshold. A target is recovered when it lies in the span of the published figures.

The adjusted scores (the rater-effect model) are left out: they are fitted on the whole
cycle, not a linear function of one participant's answers.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pytest
import scipy.linalg

from surveys.errors import DomainError
from surveys.models import DEFAULT_THRESHOLDS, Relationship, Response, ResponseItem
from surveys.releases import Frozen, next_version
from surveys.reports import ReportData, build_report, score_cycle
from surveys.responses import cycle_bank
from tests import factories as f

NON_SELF = ("manager", "peer", "direct_report", "other")
VALUES = (1, 2, 3, 4, 5)
PARTICIPANTS = 8
#: The arithmetic is the same on every database: the full sample runs on SQLite, and a
#: smaller one on PostgreSQL checks that reports read from it publish the same way.
CYCLES = {"sqlite": 5, "postgresql": 2}


@dataclass
class Truth:
    """Who answered what for one participant: rater -> group, (item, rater) -> value."""

    group: dict[str, str]
    answers: dict[tuple[str, str], int]


def random_cycle(session, rng: np.random.Generator, name: str):
    """A cycle of PARTICIPANTS people with random settings and random responses."""
    _, team = f.team(session, PARTICIPANTS, prefix=name)
    cycle = f.cycle(session, team)
    cycle.show_manager = bool(rng.integers(2))
    thresholds = dict(DEFAULT_THRESHOLDS)
    for g in ("peer", "direct_report", "other", "others"):
        thresholds[g] = int(rng.integers(2, 5))
    cycle.thresholds = thresholds
    truths = {}
    for participant in cycle.participants:
        truth = Truth({}, {})
        sizes = {
            "self": int(rng.integers(0, 2)),
            "manager": int(rng.integers(0, 2)),
            "peer": int(rng.integers(0, 7)),
            "direct_report": int(rng.integers(0, 6)),
            "other": int(rng.integers(0, 5)),
        }
        # Some raters skip a lot.
        add_responses(session, rng, participant, truth, sizes, lambda: rng.random() * 0.4)
        truths[participant.id] = truth
    session.flush()
    return cycle, truths


def add_responses(session, rng, participant, truth: Truth, sizes, skip) -> set[str]:
    """Responses of new raters (``sizes``: group -> how many) to every item, each rater
    skipping an item with probability ``skip()``; recorded in ``truth``. Their ids."""
    items = [i.id for i in cycle_bank(participant.cycle).items]
    added = set()
    for group, size in sizes.items():
        for _ in range(size):
            rid = uuid.uuid4().hex
            truth.group[rid] = group
            added.add(rid)
            chance = skip()
            rows = []
            for item in items:
                value = None if rng.random() < chance else int(rng.integers(1, 6))
                rows.append(ResponseItem(item_id=item, value=value))
                if value is not None:
                    truth.answers[(item, rid)] = value
            session.add(
                Response(
                    id=rid,
                    cycle_id=participant.cycle_id,
                    participant_id=participant.id,
                    relationship=Relationship(group),
                    rater_pseudonym="self" if group == "self" else uuid.uuid4().hex,
                    submitted_on=date.today(),
                    items=rows,
                )
            )
    return added


class Attack:
    """Published figures as rows over the one-hot unknowns of one report."""

    def __init__(self, truth: Truth, competencies: dict[str, list[str]]):
        self.truth = truth
        self.competencies = competencies
        self.cells = sorted(truth.answers)
        self.col = {cell: j for j, cell in enumerate(self.cells)}
        self.rows: list[np.ndarray] = []
        # Each answered cell has exactly one value: known to the attacker.
        for j in range(len(self.cells)):
            row = np.zeros(len(self.cells) * len(VALUES))
            row[j * len(VALUES) : (j + 1) * len(VALUES)] = 1
            self.rows.append(row)

    #: Raters the figures being published were made from (None: everyone); a version
    #: of a report released before late raters came saw only the early ones.
    only: set[str] | None = None

    def cells_of(self, items: list[str], groups: tuple[str, ...]) -> list[tuple[str, str]]:
        return [
            (i, r)
            for (i, r) in self.cells
            if i in items
            and self.truth.group[r] in groups
            and (self.only is None or r in self.only)
        ]

    def weights(self, cells, value: int | None = None, scale=None) -> np.ndarray:
        """Sum of answers (or count of ``value``) over ``cells``; ``scale`` per cell."""
        row = np.zeros(len(self.cells) * len(VALUES))
        for cell in cells:
            j = self.col[cell] * len(VALUES)
            w = 1.0 if scale is None else scale[cell]
            if value is None:
                row[j : j + len(VALUES)] += w * np.array(VALUES, dtype=float)
            else:
                row[j + VALUES.index(value)] += w
        return row

    def mean(self, cells, published: float, n: int, *, raters: bool = False, scale=None):
        """Record a published mean after checking it is what the report claims."""
        values = [self.truth.answers[c] for c in cells]
        assert values, "a figure was published for nobody"
        assert n == (len({r for _, r in cells}) if raters else len(values))
        if scale is None:
            assert published == pytest.approx(sum(values) / len(values))
        self.rows.append(self.weights(cells, scale=scale))

    def distribution(self, cells, published: tuple[tuple[int, int], ...]):
        values = [self.truth.answers[c] for c in cells]
        assert dict(published) == {v: values.count(v) for v in VALUES}
        for v in VALUES:
            self.rows.append(self.weights(cells, value=v))


def publish(
    report: ReportData, attack: Attack, *, rater_means: bool = False, pool_hidden: bool = False
) -> None:
    """Every figure the report shows, as rows; ``rater_means`` models the unsafe
    alternative of averaging each rater's own mean for competency figures, and
    ``pool_hidden`` competency figures that pool items hiding their group too."""
    others = NON_SELF
    published = {
        i.id: {g.group for g in i.groups} | ({"others"} if i.others else set())
        for c in report.competencies
        for i in c.items
    }
    for comp in (*report.competencies, *([report.overall] if report.overall else [])):
        items = attack.competencies[comp.id]
        for item in comp.items:
            for g in item.groups:
                cells = attack.cells_of([item.id], (g.group,))
                attack.mean(cells, g.mean, g.n)
                attack.distribution(cells, g.distribution)
            if item.others is not None:
                cells = attack.cells_of([item.id], others)
                attack.mean(cells, item.others.mean, item.others.n)
                attack.distribution(cells, item.distribution)
            if item.self_value is not None:
                (cell,) = attack.cells_of([item.id], ("self",))
                assert attack.truth.answers[cell] == item.self_value
                attack.rows.append(attack.weights([cell]))
        for group, figure in [(g.group, g) for g in comp.groups] + [("others", comp.others)]:
            if figure is None:
                continue
            # A group's competency figure pools the items that publish it (rule 6).
            where = [i for i in items if pool_hidden or group in published[i]]
            cells = attack.cells_of(where, others if group == "others" else (group,))
            scale = None
            if rater_means:
                per = {r: sum(1 for _, q in cells if q == r) for _, r in cells}
                scale = {c: 1 / per[c[1]] for c in cells}
            attack.mean(cells, figure.mean, figure.n, raters=True, scale=scale)
        if comp.self_score is not None:
            attack.rows.append(attack.weights(attack.cells_of(items, ("self",))))


def targets(report: ReportData, attack: Attack, show_manager: bool, t) -> Iterator[tuple]:
    """(description, answer cells) of everything protected in each item, competency and
    the overall row."""
    comps = [*report.competencies, *([report.overall] if report.overall else [])]
    cells_of_report = [(c.id, attack.competencies[c.id], c) for c in comps]
    cells_of_report += [(i.id, [i.id], i) for c in report.competencies for i in c.items]
    for key, items, figure in cells_of_report:
        shown = {g.group for g in figure.groups}
        visible = attack.truth.group.keys() if attack.only is None else attack.only
        present = {attack.truth.group[r] for (i, r) in attack.cells if i in items and r in visible}
        protected_raters = [
            r
            for r, g in attack.truth.group.items()
            if r in visible and g != "self" and not (g == "manager" and show_manager and g in shown)
        ]
        for r in protected_raters:
            cells = [(i, q) for (i, q) in attack.cells if q == r and i in items]
            if cells:
                yield f"{key}: rater {r[:6]} ({attack.truth.group[r]})", cells
        hidden = [g for g in NON_SELF if g in present and g not in shown]
        for k in range(1, len(hidden) + 1):
            for pool in itertools.combinations(hidden, k):
                cells = attack.cells_of(items, pool)
                raters = {r for _, r in cells}
                floor = max([t["others"], *(t[g] for g in pool)])
                if len(raters) < floor or (pool == ("manager",) and not show_manager):
                    yield f"{key}: {'+'.join(pool)} ({len(raters)} raters)", cells


def leaks(
    report, truth, competencies, show_manager, thresholds, *, rater_means=False, pool_hidden=False
):
    attack = Attack(truth, competencies)
    if not attack.cells:
        return []
    publish(report, attack, rater_means=rater_means, pool_hidden=pool_hidden)
    return recovered(attack, list(targets(report, attack, show_manager, thresholds)))


def recovered(attack: Attack, described: list[tuple]) -> list[str]:
    """The targets whose sums or value counts lie in the span of the published rows."""
    # Orthonormal basis of the published rows (QR with pivoting: a fraction of an SVD).
    q, r, _ = scipy.linalg.qr(np.array(attack.rows).T, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    span = q[:, : int((diagonal > 1e-9 * diagonal[0]).sum())].T
    found: list[str] = []
    if not described:
        return found
    # Per target: its sum of answers and its count of each value, projected all at once.
    stacked = np.array(
        [
            w
            for _, cells in described
            for w in (attack.weights(cells), *(attack.weights(cells, value=v) for v in VALUES))
        ]
    )
    residual = stacked - (stacked @ span.T) @ span
    hits = (np.abs(residual).max(axis=1) < 1e-7).reshape(len(described), -1).any(axis=1)
    found += [f"{what} recovered" for (what, _), hit in zip(described, hits, strict=True) if hit]
    return found


def competencies_of(cycle) -> dict[str, list[str]]:
    """Competency id (and ``ALL``) -> its item ids."""
    bank = cycle_bank(cycle)
    out = {c.id: [i.id for i in c.items] for c in bank.competencies}
    out["ALL"] = [i.id for i in bank.items]
    return out


def reports_and_truths(session, seed: int = 20261203, prefix: str = "A"):
    rng = np.random.default_rng(seed)
    for k in range(CYCLES[session.get_bind().dialect.name]):
        cycle, truths = random_cycle(session, rng, f"{prefix}{k}x")
        competencies = competencies_of(cycle)
        scored = score_cycle(session, cycle)
        for participant in cycle.participants:
            report = build_report(session, participant, cycle_scores=scored)
            yield (
                report,
                truths[participant.id],
                competencies,
                cycle.show_manager,
                {g: cycle.threshold(g) for g in (*DEFAULT_THRESHOLDS, "others")},
            )


def test_no_published_combination_recovers_a_protected_figure(session):
    generated = list(reports_and_truths(session))
    assert len(generated) == CYCLES[session.get_bind().dialect.name] * PARTICIPANTS
    # The sample must reach the interesting cases: groups merged, "others" hidden.
    assert sum(bool(r.merged_notes) for r, *_ in generated) > 3
    assert any(r.responded and r.overall and not r.overall.others for r, *_ in generated)
    found = [leak for args in generated for leak in leaks(*args)]
    assert found == []

    # Negative control, so this test can fail: competency figures as means of each
    # rater's own mean (weights 1/items answered) let the same attacker single out
    # raters who skipped items (surveys.anonymity, rule 6).
    assert any(leaks(*args, rater_means=True) for args in generated)


def test_the_attack_beats_pooling_hidden_items_into_competencies(session, monkeypatch):
    """Negative control: a competency figure that pools an item where its group is hidden
    gives that item away (competency minus the other items)."""
    from surveys import reports

    real = reports._pooled
    everything = reports.Disclosure(reports.RELATIONSHIPS, (), True)

    def pool_all(answers, item_ids, plans):
        return real(answers, item_ids, dict.fromkeys(item_ids, everything))

    monkeypatch.setattr(reports, "_pooled", pool_all)
    generated = reports_and_truths(session, seed=7, prefix="B")
    assert any(leaks(*args, pool_hidden=True) for args in generated)


# -- two versions of a report, read side by side (anonymity rule 7) ----------------------------


def _counts(truth: Truth) -> dict[str, int]:
    return {
        g: sum(1 for x in truth.group.values() if x == g)
        for g in DEFAULT_THRESHOLDS
        if g != "others"
    }


def version_pairs(session, seed: int = 20261207, prefix: str = "V"):
    """Per participant: version 1 from the early raters, late raters added, and version 2
    as a re-release plans it (:func:`surveys.releases.next_version`), or the refusal."""
    rng = np.random.default_rng(seed)
    for k in range(CYCLES[session.get_bind().dialect.name]):
        cycle, truths = random_cycle(session, rng, f"{prefix}{k}x")
        competencies = competencies_of(cycle)
        thresholds = {g: cycle.threshold(g) for g in (*DEFAULT_THRESHOLDS, "others")}
        scored = score_cycle(session, cycle)
        firsts = {}
        for p in cycle.participants:
            truth = truths[p.id]
            firsts[p.id] = (
                build_report(session, p, cycle_scores=scored),
                _counts(truth),
                set(truth.group),
            )
        for p in cycle.participants:
            # Mostly groups of late raters large enough, answering (nearly) everything:
            # the re-releases that can go through; the rest are refused.
            late = {
                g: int(rng.choice([0, 0, 1, 3, 4, 5])) for g in ("peer", "direct_report", "other")
            }
            late["manager"] = int(rng.integers(0, 2)) if not firsts[p.id][1]["manager"] else 0
            skip = float(rng.choice([0.0, 0.0, 0.05]))
            add_responses(session, rng, p, truths[p.id], late, lambda skip=skip: skip)
        session.flush()
        scored = score_cycle(session, cycle)
        for p in cycle.participants:
            first, counts, early = firsts[p.id]
            try:
                second = next_version(
                    session,
                    p,
                    [Frozen(1, first, counts)],
                    _counts(truths[p.id]),
                    cycle_scores=scored,
                )
            except DomainError:
                second = None
            yield first, second, truths[p.id], early, competencies, cycle.show_manager, thresholds


def late_pools(attack: Attack, early: set[str], show_manager: bool, t) -> Iterator[tuple]:
    """Raters of one side (early or late) too few to be published on their own, per item,
    competency and the overall row: what subtracting two versions could single out."""
    groups = [g for g in NON_SELF if not (g == "manager" and show_manager)]
    for key, items in [
        *attack.competencies.items(),
        *((i, [i]) for i in attack.competencies["ALL"]),
    ]:
        for side, members in (("early", early), ("late", set(attack.truth.group) - early)):
            present = [
                g
                for g in groups
                if any(
                    i in items and r in members and attack.truth.group[r] == g
                    for i, r in attack.cells
                )
            ]
            for k in range(1, len(present) + 1):
                for pool in itertools.combinations(present, k):
                    cells = [
                        (i, r)
                        for (i, r) in attack.cells
                        if i in items and r in members and attack.truth.group[r] in pool
                    ]
                    raters = {r for _, r in cells}
                    floor = t[pool[0]] if k == 1 else max([t["others"], *(t[g] for g in pool)])
                    if 0 < len(raters) < floor:
                        yield f"{key}: {side} {'+'.join(pool)} ({len(raters)} raters)", cells


def version_leaks(first, second, truth, early, competencies, show_manager, thresholds):
    attack = Attack(truth, competencies)
    attack.only = early
    publish(first, attack)
    described = list(targets(first, attack, show_manager, thresholds))
    attack.only = None
    publish(second, attack)
    described += targets(second, attack, show_manager, thresholds)
    described += late_pools(attack, early, show_manager, thresholds)
    return recovered(attack, described)


def test_no_two_versions_together_recover_a_protected_figure(session):
    pairs = list(version_pairs(session))
    released = [args for args in pairs if args[1] is not None]
    # The sample must reach both outcomes, and second versions that show more.
    assert len(released) >= 5
    assert len(pairs) - len(released) >= 5
    assert any(len(b.counts) > len(a.counts) for a, b, *_ in released)
    found = [leak for args in released for leak in version_leaks(*args)]
    assert found == []


@pytest.mark.parametrize("without", ["carried hiding", "change check"])
def test_the_attack_beats_re_releases_planned_without_either_rule(session, monkeypatch, without):
    """Negative controls, so the test above can fail: a second version planned afresh, or
    one whose cell changes are not checked, gives early or late raters away."""
    from surveys import releases
    from surveys.reports import Carried

    if without == "carried hiding":
        monkeypatch.setattr(releases, "carried_from", lambda *args: Carried())
    else:
        monkeypatch.setattr(releases, "version_change_refusal", lambda *args, **kwargs: None)
    pairs = [args for args in version_pairs(session, seed=5, prefix="N") if args[1] is not None]
    assert any(version_leaks(*args) for args in pairs)
