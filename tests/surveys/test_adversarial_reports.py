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

from surveys.anonymity import plan_disclosure
from surveys.models import DEFAULT_THRESHOLDS, Relationship, Response, ResponseItem
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
    items = [i.id for i in cycle_bank(cycle).items]
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
        for group, size in sizes.items():
            for _ in range(size):
                rid = uuid.uuid4().hex
                truth.group[rid] = group
                skip = rng.random() * 0.4  # some raters skip a lot
                rows = []
                for item in items:
                    value = None if rng.random() < skip else int(rng.integers(1, 6))
                    rows.append(ResponseItem(item_id=item, value=value))
                    if value is not None:
                        truth.answers[(item, rid)] = value
                session.add(
                    Response(
                        id=rid,
                        cycle_id=cycle.id,
                        participant_id=participant.id,
                        relationship=Relationship(group),
                        rater_pseudonym="self" if group == "self" else uuid.uuid4().hex,
                        submitted_on=date.today(),
                        items=rows,
                    )
                )
        truths[participant.id] = truth
    session.flush()
    return cycle, truths


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

    def cells_of(self, items: list[str], groups: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(i, r) for (i, r) in self.cells if i in items and self.truth.group[r] in groups]

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


def publish(report: ReportData, attack: Attack, *, rater_means: bool = False) -> None:
    """Every figure the report shows, as rows; ``rater_means`` models the unsafe
    alternative of averaging each rater's own mean for competency figures."""
    others = NON_SELF
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
            cells = attack.cells_of(items, others if group == "others" else (group,))
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
        present = {attack.truth.group[r] for (i, r) in attack.cells if i in items}
        protected_raters = [
            r
            for r, g in attack.truth.group.items()
            if g != "self" and not (g == "manager" and show_manager and g in shown)
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


def leaks(report, truth, competencies, show_manager, thresholds, *, rater_means=False):
    attack = Attack(truth, competencies)
    if not attack.cells:
        return []
    publish(report, attack, rater_means=rater_means)
    # Orthonormal basis of the published rows (QR with pivoting: a fraction of an SVD).
    q, r, _ = scipy.linalg.qr(np.array(attack.rows).T, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    span = q[:, : int((diagonal > 1e-9 * diagonal[0]).sum())].T
    found = []
    described = list(targets(report, attack, show_manager, thresholds))
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
    recovered = (np.abs(residual).max(axis=1) < 1e-7).reshape(len(described), -1).any(axis=1)
    found += [
        f"{what} recovered" for (what, _), hit in zip(described, recovered, strict=True) if hit
    ]
    return found


def reports_and_truths(session, seed: int = 20261203, prefix: str = "A"):
    rng = np.random.default_rng(seed)
    for k in range(CYCLES[session.get_bind().dialect.name]):
        cycle, truths = random_cycle(session, rng, f"{prefix}{k}x")
        bank = cycle_bank(cycle)
        competencies = {c.id: [i.id for i in c.items] for c in bank.competencies}
        competencies["ALL"] = [i.id for i in bank.items]
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


def test_the_attack_beats_planning_each_cell_on_its_own(session, monkeypatch):
    """Negative control: without plan_report's family rule (a group hidden in one item is
    hidden everywhere) the competency figures give hidden item figures away."""
    from surveys import reports

    def per_cell(cells, thresholds, *, show_manager, hide=(), hide_others=False):
        return {
            key: plan_disclosure(
                counts, thresholds, show_manager=show_manager, hide=hide, hide_others=hide_others
            )
            for key, counts in cells.items()
        }

    monkeypatch.setattr(reports, "plan_report", per_cell)
    assert any(leaks(*args) for args in reports_and_truths(session, seed=7, prefix="B"))
