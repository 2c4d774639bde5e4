"""Feedback reports as plain values: what one participant reads (DESIGN §7, issue 4).

:func:`score_cycle` scores a whole cycle once (the rater-effect model needs every rater's
ratings of everyone); :func:`build_report` turns it into a :class:`ReportData` for one
participant. Every published figure — a group's mean, an item's distribution, a comment's
label — goes through :mod:`surveys.anonymity` with the counts of exactly that cell, so the
templates only ever see what may be shown. No ORM object leaves this
module.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring import ALL, GROUPS, RELATIONSHIPS, Ratings, Scores, ScoringWarning, score_ratings
from surveys.anonymity import Disclosure, plan_disclosure, plan_report, shuffled_comments
from surveys.banks import Bank
from surveys.models import (
    Assignment,
    Cycle,
    Participant,
    Relationship,
    Response,
    ResponseComment,
    ResponseItem,
)
from surveys.responses import cycle_bank

__all__ = [
    "GROUP_LABELS",
    "CommentGroup",
    "CompetencyReport",
    "CycleScores",
    "Gap",
    "GroupScore",
    "ItemDetail",
    "ItemRank",
    "ReliabilityNote",
    "ReportData",
    "ResponseCount",
    "build_report",
    "report_from_json",
    "report_to_json",
    "score_cycle",
]

#: How each group is named in a report (``others`` = everyone but self).
GROUP_LABELS: dict[str, str] = {
    "self": "Self",
    "manager": "Manager",
    "peer": "Peers",
    "direct_report": "Direct reports",
    "other": "Other colleagues",
    "others": "All others",
}
_OTHERS = GROUPS.index("others")
_SELF = GROUPS.index("self")
_TOP_ITEMS = 5


# -- report values -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupScore:
    """One group's raw mean for one cell and the number of raters behind it."""

    group: str
    label: str
    mean: float
    n: int


@dataclass(frozen=True)
class ResponseCount:
    group: str
    label: str
    n: int


@dataclass(frozen=True)
class ItemDetail:
    """One item: self answer, shown groups, all others and their answer distribution."""

    id: str
    text: str
    competency_title: str
    self_value: int | None
    groups: tuple[GroupScore, ...]
    others: GroupScore | None
    #: (scale value, number of others' answers) per scale point; empty when not shown.
    distribution: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CompetencyReport:
    id: str
    title: str
    description: str
    self_score: float | None
    #: Shown relationship groups except self, in report order.
    groups: tuple[GroupScore, ...]
    others: GroupScore | None
    #: The others' headline score (adjusted for rater leniency unless the model fell back).
    adjusted: float | None
    ci_low: float | None
    ci_high: float | None
    items: tuple[ItemDetail, ...]


@dataclass(frozen=True)
class ItemRank:
    text: str
    competency_title: str
    mean: float
    n: int


@dataclass(frozen=True)
class Gap:
    """A hidden strength or blind spot that passed the scoring module's noise test."""

    kind: str  # "blind_spot" or "hidden_strength"
    title: str  # competency title or item text
    level: str  # "competency" or "item"
    self_score: float
    others_score: float
    gap: float
    explanation: str


@dataclass(frozen=True)
class CommentGroup:
    question: str
    #: (label, text), already filtered, relabelled and shuffled by the anonymity plan.
    comments: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ReliabilityNote:
    n_raters: int
    se: float | None
    ci_low: float | None
    ci_high: float | None
    reliability: float | None
    method: str
    text: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything a report template shows, as plain values."""

    participant_id: int
    participant_name: str
    cycle_name: str
    bank_title: str
    scale_min: int
    scale_max: int
    scale_labels: tuple[tuple[int, str], ...]
    counts: tuple[ResponseCount, ...]
    invited: int
    responded: int
    response_rate: float | None
    self_done: bool
    #: Plain-language notes on groups folded into "All others".
    merged_notes: tuple[str, ...]
    has_feedback: bool
    overall: CompetencyReport | None
    competencies: tuple[CompetencyReport, ...]
    top_items: tuple[ItemRank, ...]
    bottom_items: tuple[ItemRank, ...]
    gaps: tuple[Gap, ...]
    comments: tuple[CommentGroup, ...]
    reliability: ReliabilityNote
    how_to_read: tuple[str, ...]
    confidence: float


# -- scoring the cycle once --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CycleScores:
    """A cycle's bank and its :class:`~scoring.Scores` (``None`` without any ratings)."""

    cycle_id: int
    bank: Bank
    scores: Scores | None
    #: participant id -> row in ``scores``
    rows: Mapping[int, int]
    #: item id -> column in ``scores.item_agreement`` (the ratings' item order)
    item_columns: Mapping[str, int]


def score_cycle(session: Session, cycle: Cycle) -> CycleScores:
    """Score every submitted response of ``cycle`` (self included, reported raw).

    Scoring warnings (too few overlapping raters, constant raters, …) are kept as text in
    ``Scores.warnings`` rather than raised; the reliability note turns them into words.
    """
    bank = cycle_bank(cycle)
    known = bank.item_competency
    result = session.execute(
        select(
            Response.rater_pseudonym,
            Response.participant_id,
            ResponseItem.item_id,
            Response.relationship,
            ResponseItem.value,
        )
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Response.cycle_id == cycle.id)
    ).all()
    rows = [r for r in result if r[2] in known]
    if not rows:
        return CycleScores(cycle.id, bank, None, {}, {})
    raters, ratees, items, rels, values = zip(*rows, strict=True)
    ratings = Ratings.from_arrays(
        np.array(raters),
        np.array(ratees, dtype=np.int64),
        np.array(items),
        np.array([str(r.value if isinstance(r, Relationship) else r) for r in rels]),
        np.array([math.nan if v is None else float(v) for v in values]),
        item_competency=known,
        scale=(float(bank.scale.min), float(bank.scale.max)),
    )
    scores = _score(ratings)
    return CycleScores(
        cycle.id,
        bank,
        scores,
        {int(pid): i for i, pid in enumerate(ratings.ratee_ids.tolist())},
        {str(item): j for j, item in enumerate(ratings.item_ids.tolist())},
    )


def _score(ratings: Ratings) -> Scores:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScoringWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return score_ratings(ratings)
        except ValueError:
            # e.g. only self ratings in the cycle: nothing to fit, plain means still work.
            return score_ratings(ratings, method="raw")


# -- one participant's report ------------------------------------------------------------------


def build_report(
    session: Session, participant: Participant, *, cycle_scores: CycleScores | None = None
) -> ReportData:
    """The report of one participant; pass ``cycle_scores`` when rendering many.

    The response counts, every competency, the overall score and every item are derived
    from the same answers, so they are planned as one family
    (:func:`surveys.anonymity.plan_report`): a group hidden in one of them is hidden in
    all. Comments are planned per question from the counts of raters who commented.
    """
    cycle = participant.cycle
    if cycle_scores is None or cycle_scores.cycle_id != cycle.id:
        cycle_scores = score_cycle(session, cycle)
    bank = cycle_scores.bank
    name = participant.employee.name
    first_name = name.split()[0] if name.split() else name
    thresholds = {g: cycle.threshold(g) for g in GROUPS}
    scores = cycle_scores.scores
    row = cycle_scores.rows.get(participant.id)

    by_group = dict(
        session.execute(
            select(Response.relationship, func.count())
            .where(Response.participant_id == participant.id)
            .group_by(Response.relationship)
        ).all()
    )
    response_counts = {g: int(by_group.get(Relationship(g), 0)) for g in RELATIONSHIPS}
    answers = _item_answers(session, participant.id)

    cells: dict[tuple[str, str], dict[str, int]] = {("responses", ""): response_counts}
    if scores is not None and row is not None:
        n = scores.aggregates.n_raters[row]
        for k, cid in enumerate(scores.aggregates.competency_ids):
            cells[("competency", cid)] = {g: int(n[k, i]) for i, g in enumerate(RELATIONSHIPS)}
    for item in bank.items:
        values = answers.get(item.id, {})
        cells[("item", item.id)] = {g: len(values.get(g, ())) for g in RELATIONSHIPS}
    plans = plan_report(cells, thresholds, show_manager=cycle.show_manager)
    overall_plan = plans[("responses", "")]

    invited = int(
        session.scalar(
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.participant_id == participant.id,
                Assignment.relationship != Relationship.SELF,
            )
        )
        or 0
    )
    responded = sum(n for g, n in response_counts.items() if g != "self")
    counts = [
        ResponseCount(g, GROUP_LABELS[g], response_counts[g])
        for g in RELATIONSHIPS
        if g != "self" and response_counts[g] and overall_plan.is_shown(g)
    ]
    if responded and overall_plan.others_shown:
        counts.append(ResponseCount("others", GROUP_LABELS["others"], responded))

    competencies = []
    ranks: list[ItemRank] = []
    gaps: list[Gap] = []
    for competency in bank.competencies:
        items = []
        for item in competency.items:
            detail = _item_detail(
                item.id,
                item.text("others", first_name),
                competency.title,
                answers.get(item.id, {}),
                bank,
                plans[("item", item.id)],
            )
            items.append(detail)
            if detail.others is not None:
                ranks.append(
                    ItemRank(detail.text, competency.title, detail.others.mean, detail.others.n)
                )
        report = _competency(
            competency.id,
            competency.title,
            competency.description,
            scores,
            row,
            plans.get(("competency", competency.id)),
            tuple(items),
        )
        competencies.append(report)
        gaps += _competency_gap(report, scores, row)
        gaps += _item_gaps(report, cycle_scores.item_columns, scores, row)
    overall = (
        _competency("ALL", "All items", "", scores, row, plans.get(("competency", ALL)), ())
        if scores is not None and row is not None
        else None
    )

    ranks.sort(key=lambda r: -r.mean)
    k_top = min(_TOP_ITEMS, len(ranks) // 2)
    top = tuple(ranks[:k_top])
    bottom = tuple(sorted(ranks[len(ranks) - k_top :], key=lambda r: r.mean)) if k_top else ()

    merged_notes = tuple(
        f"{GROUP_LABELS[g]}: counted in “All others” only ({overall_plan.reasons[g]})"
        for g in RELATIONSHIPS
        if g in overall_plan.reasons and response_counts[g] > 0
    )
    if responded and not overall_plan.others_shown and "others" in overall_plan.reasons:
        merged_notes += (f"All others: {overall_plan.reasons['others']}",)
    confidence = scores.confidence if scores is not None else 0.90
    return ReportData(
        participant_id=participant.id,
        participant_name=name,
        cycle_name=cycle.name,
        bank_title=bank.title,
        scale_min=bank.scale.min,
        scale_max=bank.scale.max,
        scale_labels=tuple(sorted((int(k), str(v)) for k, v in bank.scale.labels.items())),
        counts=tuple(counts),
        invited=invited,
        responded=responded,
        response_rate=(responded / invited) if invited else None,
        self_done=response_counts["self"] > 0,
        merged_notes=merged_notes,
        has_feedback=responded > 0 or response_counts["self"] > 0,
        overall=overall,
        competencies=tuple(competencies),
        top_items=top,
        bottom_items=bottom,
        gaps=_ordered_gaps(gaps),
        comments=_comments(session, participant, bank, thresholds),
        reliability=_reliability(scores, row, overall, responded),
        how_to_read=_how_to_read(bank, thresholds, confidence),
        confidence=confidence,
    )


def _ordered_gaps(gaps: list[Gap], per_kind: int = 3) -> tuple[Gap, ...]:
    """Competency gaps first, then the largest item gaps (a few per kind, not a list)."""
    out = [g for g in gaps if g.level == "competency"]
    for kind in ("hidden_strength", "blind_spot"):
        items = [g for g in gaps if g.level == "item" and g.kind == kind]
        out += sorted(items, key=lambda g: -abs(g.gap))[:per_kind]
    return tuple(sorted(out, key=lambda g: (g.kind, g.level != "competency", -abs(g.gap))))


def _item_answers(session: Session, participant_id: int) -> dict[str, dict[str, list[int]]]:
    """item id -> group -> answered values (N/A left out)."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for rel, item_id, value in session.execute(
        select(Response.relationship, ResponseItem.item_id, ResponseItem.value)
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Response.participant_id == participant_id, ResponseItem.value.is_not(None))
    ):
        if value is not None:
            out[item_id][Relationship(rel).value].append(int(value))
    return out


def _item_detail(
    item_id: str,
    text: str,
    competency_title: str,
    values: Mapping[str, list[int]],
    bank: Bank,
    cell: Disclosure,
) -> ItemDetail:
    counts = {g: len(values.get(g, ())) for g in RELATIONSHIPS}
    self_values = values.get("self", [])
    self_value = self_values[0] if self_values and cell.is_shown("self") else None
    groups = tuple(
        GroupScore(g, GROUP_LABELS[g], _mean(values[g]), len(values[g]))
        for g in RELATIONSHIPS
        if g != "self" and counts[g] and cell.is_shown(g)
    )
    others_values = [v for g in RELATIONSHIPS if g != "self" for v in values.get(g, ())]
    others = None
    distribution: tuple[tuple[int, int], ...] = ()
    if others_values and cell.others_shown:
        others = GroupScore(
            "others", GROUP_LABELS["others"], _mean(others_values), len(others_values)
        )
        distribution = tuple((v, others_values.count(v)) for v in bank.scale.values)
    return ItemDetail(item_id, text, competency_title, self_value, groups, others, distribution)


def _competency(
    cid: str,
    title: str,
    description: str,
    scores: Scores | None,
    row: int | None,
    cell: Disclosure | None,
    items: tuple[ItemDetail, ...],
) -> CompetencyReport:
    if scores is None or row is None or cell is None:
        return CompetencyReport(cid, title, description, None, (), None, None, None, None, items)
    agg = scores.aggregates
    k = agg.competency_ids.index(cid)
    n = agg.n_raters[row, k]
    mean = agg.mean[row, k]
    self_score = _num(mean[_SELF]) if n[_SELF] and cell.is_shown("self") else None
    groups = tuple(
        GroupScore(g, GROUP_LABELS[g], float(mean[i]), int(n[i]))
        for i, g in enumerate(RELATIONSHIPS)
        if g != "self" and n[i] and cell.is_shown(g)
    )
    others = adjusted = low = high = None
    if n[_OTHERS] and cell.others_shown:
        others = GroupScore("others", GROUP_LABELS["others"], float(mean[_OTHERS]), int(n[_OTHERS]))
        adjusted = _num(scores.score[row, k])
        low, high = _num(scores.ci_low[row, k]), _num(scores.ci_high[row, k])
    return CompetencyReport(
        cid, title, description, self_score, groups, others, adjusted, low, high, items
    )


def _competency_gap(report: CompetencyReport, scores: Scores | None, row: int | None) -> list[Gap]:
    if scores is None or row is None or report.self_score is None or report.adjusted is None:
        return []
    k = scores.competency_ids.index(report.id)
    agreement = scores.agreement
    return _gap(
        bool(agreement.blind_spot[row, k]),
        bool(agreement.hidden_strength[row, k]),
        report.title,
        "competency",
        report.self_score,
        report.adjusted,
    )


def _item_gaps(
    report: CompetencyReport,
    columns: Mapping[str, int],
    scores: Scores | None,
    row: int | None,
) -> list[Gap]:
    if scores is None or row is None:
        return []
    out = []
    agreement = scores.item_agreement
    for item in report.items:
        if item.self_value is None or item.others is None or item.id not in columns:
            continue
        j = columns[item.id]
        out += _gap(
            bool(agreement.blind_spot[row, j]),
            bool(agreement.hidden_strength[row, j]),
            item.text,
            "item",
            float(item.self_value),
            item.others.mean,
        )
    return out


def _gap(
    blind: bool, hidden: bool, title: str, level: str, self_score: float, others: float
) -> list[Gap]:
    if not (blind or hidden):
        return []
    gap = self_score - others
    if blind:
        text = (
            f"You rated yourself higher ({self_score:.1f}) than others rated you "
            f"({others:.1f}). The difference is larger than the uncertainty in the "
            "numbers, so it is probably real: ask for examples of what others see."
        )
        return [Gap("blind_spot", title, level, self_score, others, gap, text)]
    text = (
        f"Others rated you higher ({others:.1f}) than you rated yourself "
        f"({self_score:.1f}). The difference is larger than the uncertainty in the "
        "numbers: this may be a strength you can rely on more."
    )
    return [Gap("hidden_strength", title, level, self_score, others, gap, text)]


def _comments(
    session: Session, participant: Participant, bank: Bank, thresholds: Mapping[str, int]
) -> tuple[CommentGroup, ...]:
    by_question: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rel, question_id, text in session.execute(
        select(Response.relationship, ResponseComment.question_id, ResponseComment.text)
        .join(ResponseComment, ResponseComment.response_id == Response.id)
        .where(Response.participant_id == participant.id)
    ):
        by_question[question_id].append((Relationship(rel).value, text))
    first_name = (participant.employee.name.split() or [""])[0]
    groups = []
    for question in bank.open_questions:
        found = by_question.get(question.id)
        if not found:
            continue
        counts = {g: sum(1 for rel, _ in found if rel == g) for g in RELATIONSHIPS}
        plan = plan_disclosure(counts, thresholds, show_manager=participant.cycle.show_manager)
        shown = shuffled_comments(found, plan, seed=f"{participant.id}:{question.id}")
        if shown:
            groups.append(
                CommentGroup(
                    question.text("others", first_name),
                    tuple((GROUP_LABELS[g], text) for g, text in shown),
                )
            )
    return tuple(groups)


def _reliability(
    scores: Scores | None,
    row: int | None,
    overall: CompetencyReport | None,
    responded: int,
) -> ReliabilityNote:
    if scores is None or row is None or overall is None or overall.adjusted is None:
        text = (
            "Too few colleagues responded to show an overall score from others, so there "
            "is nothing to judge the reliability of yet."
            if responded
            else "No colleague has responded yet."
        )
        return ReliabilityNote(responded, None, None, None, None, "none", (text,))
    se = _num(scores.se[row, -1])
    rel = None
    if scores.model is not None and scores.method == "adjusted":
        rel = _num(scores.model.reliability[row])
    n = overall.others.n if overall.others else responded
    lines = []
    low, high = overall.ci_low, overall.ci_high
    lines.append(
        f"{n} colleague{'s' if n != 1 else ''} rated you. Your overall score from others is "
        f"{overall.adjusted:.1f}"
        + (
            f"; the {round(scores.confidence * 100)}% interval runs from {low:.1f} to "
            f"{high:.1f} (±{(high - low) / 2:.1f})."
            if low is not None and high is not None
            else "; there are too few ratings to say how precise it is."
        )
    )
    if rel is not None:
        word = "high" if rel >= 0.8 else "moderate" if rel >= 0.6 else "low"
        lines.append(
            f"Reliability of the overall score: {rel:.2f} ({word}). "
            + (
                "Differences between competencies smaller than the intervals are best "
                "read as similar."
                if word != "high"
                else "The overall picture is stable; small differences still deserve care."
            )
        )
    if scores.method == "adjusted":
        lines.append(
            "Scores from others are adjusted for how leniently or strictly each rater "
            "rated everyone they rated in this cycle, so one generous or harsh rater "
            "moves them less than a plain average."
        )
    else:
        lines.append(
            "Scores from others are plain averages: too few raters in this cycle rated "
            "several people to correct for lenient or strict raters."
        )
    return ReliabilityNote(n, se, overall.ci_low, overall.ci_high, rel, scores.method, tuple(lines))


def _how_to_read(bank: Bank, thresholds: Mapping[str, int], confidence: float) -> tuple[str, ...]:
    lo, hi = bank.scale.min, bank.scale.max
    return (
        f"Ratings run from {lo} ({bank.scale.labels[lo]}) to {hi} ({bank.scale.labels[hi]}). "
        "Answers of “not able to judge” are left out of every average.",
        "“Self” is your own rating. Each group of colleagues is shown separately only when "
        f"enough of them answered (for example at least {thresholds.get('peer', 3)} peers); "
        "smaller groups are counted in “All others” only, so nobody's answers can be singled "
        "out.",
        f"The bar with whiskers is the score from others with its {round(confidence * 100)}% "
        "interval: the range in which the score would most likely fall with a different "
        "set of raters. Two scores whose intervals overlap are best read as similar.",
        "A blind spot is where you rate yourself clearly higher than others do; a hidden "
        "strength is where others rate you clearly higher than you do. Both are flagged only "
        "when the gap is larger than the noise in the numbers.",
        "Comments are shown word for word, in random order, without names.",
    )


def _mean(values: Sequence[int]) -> float:
    return float(sum(values)) / len(values)


def _num(x: Any) -> float | None:
    value = float(x)
    return None if math.isnan(value) else value


# -- frozen reports: ReportData <-> JSON ------------------------------------------------------


def report_to_json(report: ReportData) -> dict[str, Any]:
    """The report as plain JSON values (objects, lists, numbers, strings, null).

    Released reports are stored like this (:class:`surveys.models.ReportVersion`) so
    that what a participant reads never changes; :func:`report_from_json` inverts it
    exactly (floats survive JSON unchanged).
    """
    return _to_json(report)


def report_from_json(data: Mapping[str, Any]) -> ReportData:
    """Rebuild a :class:`ReportData` from :func:`report_to_json`'s output."""
    return _from_json(ReportData, data)


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"report value {number} has no JSON form")
        return number
    raise TypeError(f"cannot freeze {type(value).__name__} into a report")


def _from_json(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from_json(inner, value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _type_hints(tp)
        return tp(
            **{f.name: _from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(tp)}
        )
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    if tp in (int, float, str, bool):
        return tp(value)
    raise TypeError(f"cannot read {tp!r} from a frozen report")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)
