"""Feedback reports as plain values: what one participant reads (DESIGN §7, issue 4).

:func:`score_cycle` scores a whole cycle once (the rater-effect model needs every rater's
ratings of everyone); :func:`build_report` turns it into a :class:`ReportData` for one
participant. Every published figure — a group's mean, an item's distribution, a comment's
label — goes through :mod:`surveys.anonymity` with the counts of exactly that cell, so the
templates only ever see what may be shown. No ORM object leaves this
module.

Each item is planned on its own counts; a group's raw figure of a competency (and of the
overall row) pools its answers to the items that show the group, so each is exactly a
sum of item figures the report shows and cannot be played against them (see
:func:`_pooled`). The adjusted score beside it comes from the scoring model, and only
where every item others answered shows "All others" (the model reads every answer);
otherwise the headline is the pooled mean with a plain interval. From the
second cycle on, :func:`build_report` adds the change since the participant's earlier
released report from the same bank (:class:`Trend`), read from that frozen version.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import numbers
import types
import typing
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import numpy as np
from scipy import stats
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from scoring import (
    ALL,
    GROUPS,
    RELATIONSHIPS,
    Ratings,
    Scores,
    ScoringWarning,
    score_ratings,
    self_other_agreement,
)
from surveys.anonymity import (
    NON_SELF,
    Disclosure,
    Published,
    carried_hiding,
    plan_cells,
    plan_disclosure,
    published_in,
    shuffled_comments,
)
from surveys.banks import Bank
from surveys.models import (
    Assignment,
    Cycle,
    CycleState,
    Participant,
    Relationship,
    ReportVersion,
    Response,
    ResponseComment,
    ResponseItem,
)
from surveys.responses import cycle_bank

__all__ = [
    "GROUP_LABELS",
    "UNMATCHED_COMMENTS",
    "Carried",
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
    "Trend",
    "TrendRow",
    "build_report",
    "carried_from",
    "cut_interval",
    "earlier_report",
    "published_cells",
    "report_from_json",
    "report_scores_from_json",
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
_TOP_ITEMS = 5


# -- report values -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupScore:
    """One group's raw mean for one cell and the number of raters behind it."""

    group: str
    label: str
    mean: float
    n: int
    #: (scale value, number of this group's answers) per scale point; items only.
    distribution: tuple[tuple[int, int], ...] = ()
    #: Competency rows only: the figure leaves out statements this group answered but
    #: too few of them to show (it pools the statements that show the group).
    partial: bool = False


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
    #: "All others" is hidden on some of its items: their figures cover the others, and
    #: the headline is their plain mean, not the model's adjusted score.
    partial: bool = False

    @property
    def leaves_out_items(self) -> bool:
        """Some group's figure here leaves out statements it answered (``partial``)."""
        return any(g.partial for g in (*self.groups, *([self.others] if self.others else [])))


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
    #: The bank's question id ("" in reports frozen before it was kept).
    question_id: str = ""

    @property
    def by_label(self) -> list[tuple[str, list[str]]]:
        """The comments as runs of one label each, in their order (grouped by rater group)."""
        return [
            (label, [text for _, text in run])
            for label, run in itertools.groupby(self.comments, key=lambda c: c[0])
        ]


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
class TrendRow:
    """One competency's change since the earlier cycle, with its uncertainty."""

    id: str
    title: str
    before: float
    after: float
    change: float
    #: Half-width of the change's interval: both scores' half-widths combined.
    margin: float
    #: "up", "down" (the change is larger than its margin) or "same" (within noise).
    direction: str
    #: "Clear rise", "Clear drop" or "Within noise".
    label: str

    @property
    def shown_change(self) -> float:
        """The change of the figures as shown (3.44 → 4.76 reads 3.4 → 4.8: +1.4)."""
        return round(self.after, 1) - round(self.before, 1)


@dataclass(frozen=True)
class Trend:
    """Change since the participant's previous released report from the same bank."""

    earlier_cycle: str
    earlier_released_on: str | None
    rows: tuple[TrendRow, ...]
    #: Competencies without a score from others in one of the two reports.
    missing: tuple[str, ...]
    note: str

    @property
    def earlier_released_label(self) -> str | None:
        """The earlier release date as a reader writes it ("3 December 2026"), if known."""
        return _day_label(self.earlier_released_on)


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
    trend: Trend | None = None
    #: Set when the report is frozen at release: 1, then +1 per accepted re-release.
    version: int | None = None
    #: ISO date (``YYYY-MM-DD``) the version was released.
    released_on: str | None = None
    #: The cycle asked the participant for a self-assessment (``Cycle.include_self``).
    self_asked: bool = True

    @property
    def released_label(self) -> str | None:
        """E.g. "Version 2, released 3 December 2026"; None for an unreleased preview."""
        if self.version is None:
            return None
        day = _day_label(self.released_on)
        return f"Version {self.version}" + (f", released {day}" if day else "")

    @property
    def colleagues_hidden(self) -> bool:
        """Colleagues answered but no figure of theirs shows anywhere, neither "All others"
        nor a group (a manager shown by name aside)."""

        def shown(groups: Sequence[GroupScore], others: GroupScore | None) -> bool:
            return others is not None or any(g.group != "manager" for g in groups)

        return self.responded > 0 and not any(
            shown(c.groups, c.others) or any(shown(i.groups, i.others) for i in c.items)
            for c in self.competencies
        )

    def shown_interval(self, row: CompetencyReport) -> tuple[float, float] | None:
        """``row``'s interval as shown (:func:`cut_interval`), None without one."""
        if row.ci_low is None or row.ci_high is None:
            return None
        return cut_interval(row.ci_low, row.ci_high, (self.scale_min, self.scale_max))

    @property
    def manager_shown(self) -> bool:
        return any(g.group == "manager" for c in self.competencies for g in c.groups)

    @property
    def self_and_others_shown(self) -> bool:
        """Whether the report shows the participant's own view next to "All others'"
        anywhere (what hidden strengths and blind spots compare)."""
        return any(
            (c.self_score is not None and c.adjusted is not None)
            or any(i.self_value is not None and i.others is not None for i in c.items)
            for c in self.competencies
        )


def cut_interval(low: float, high: float, scale: tuple[int, int]) -> tuple[float, float]:
    """An interval as reports and exports show it: cut at the ends of the scale."""
    return max(low, scale[0]), min(high, scale[1])


def _day_label(iso: str | None) -> str | None:
    """An ISO date as a reader writes it: "3 December 2026"."""
    if not iso:
        return None
    day = date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


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


#: Answers read at a time by :func:`score_cycle`.
SCORING_SLICE = 100_000


def score_cycle(session: Session, cycle: Cycle) -> CycleScores:
    """Score every submitted response of ``cycle`` (self included, reported raw).

    Scoring warnings (too few overlapping raters, constant raters, …) are kept as text in
    ``Scores.warnings`` rather than raised; the reliability note turns them into words.
    """
    bank = cycle_bank(cycle)
    known = bank.item_competency
    # Core statements on the tables: a large cycle has millions of answers, and ORM rows
    # (with the relationship enum converted for each) took most of the time.
    responses, items = Response.__table__, ResponseItem.__table__
    connection = session.connection()
    by_response = connection.execute(
        select(
            responses.c.id,
            responses.c.rater_pseudonym,
            responses.c.participant_id,
            type_coerce(responses.c.relationship, String),
        ).where(responses.c.cycle_id == cycle.id)
    ).all()
    position = {row[0]: i for i, row in enumerate(by_response)}
    item_code = {item: k for k, item in enumerate(known)}
    # Answers are read in slices and kept as codes only: a large cycle's answers as rows
    # of Python objects took gigabytes.
    answers = connection.execute(
        select(items.c.response_id, items.c.item_id, items.c.value)
        .join(responses, responses.c.id == items.c.response_id)
        .where(responses.c.cycle_id == cycle.id, items.c.item_id.in_(list(known)))
        .execution_options(yield_per=SCORING_SLICE)
    )
    at_parts, item_parts, value_parts = [], [], []
    for part in answers.partitions():
        response_ids, item_ids, values = zip(*part, strict=True)
        n = len(part)
        at_parts.append(np.fromiter(map(position.__getitem__, response_ids), np.int64, n))
        item_parts.append(np.fromiter(map(item_code.__getitem__, item_ids), np.int64, n))
        value_parts.append(
            np.fromiter((math.nan if v is None else v for v in values), np.float64, n)
        )
    if not at_parts:
        return CycleScores(cycle.id, bank, None, {}, {})
    at, item_at = np.concatenate(at_parts), np.concatenate(item_parts)
    _, pseudonyms, participants, relationships = zip(*by_response, strict=True)
    rater, rater_ids = _compact(*_first_seen(pseudonyms), at)
    ratee, ratee_ids = _compact(*_first_seen(participants), at)
    rel_code = {name: k for k, name in enumerate(RELATIONSHIPS)}
    rel = np.array([rel_code[r] for r in relationships], dtype=np.int8)[at]
    item, item_labels = _compact(np.arange(len(known)), np.array(list(known)), item_at)
    competencies = [known[i] for i in item_labels.tolist()]
    competency_ids = tuple(dict.fromkeys(competencies))
    ratings = Ratings.from_codes(
        rater,
        ratee,
        item,
        rel,
        np.concatenate(value_parts),
        rater_ids=rater_ids,
        ratee_ids=ratee_ids,
        item_ids=item_labels,
        item_competency=[competency_ids.index(c) for c in competencies],
        competency_ids=competency_ids,
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


def _first_seen(keys: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``keys`` (labels in order of first appearance) and the labels."""
    table: dict[Any, int] = {}
    codes = np.fromiter(
        (table.setdefault(k, len(table)) for k in keys), dtype=np.int64, count=len(keys)
    )
    return codes, np.array(list(table))


def _compact(
    codes: np.ndarray, labels: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``codes[at]`` renumbered over the labels it uses, and those labels."""
    picked = codes[at]
    used = np.zeros(labels.size, dtype=bool)
    used[picked] = True
    renumber = np.cumsum(used) - 1
    return renumber[picked], labels[used]


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


@dataclass(frozen=True)
class Carried:
    """What a new version of a report keeps hidden of the version before it
    (:func:`surveys.anonymity.carried_hiding`): groups in the response counts, per item,
    and per comment question the groups whose comments stay under "All others"."""

    counts: frozenset[str] = frozenset()
    items: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    comments: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    #: Comment groups of the earlier version that could not be matched to a question
    #: (frozen before question ids were kept, participant renamed since): every group's
    #: comments then stay under "All others".
    comments_unmatched: bool = False

    def comment_hide(self, question_id: str) -> frozenset[str]:
        if self.comments_unmatched:
            return frozenset(NON_SELF)
        return self.comments.get(question_id, frozenset())


def carried_from(
    earlier: ReportData, response_counts: Mapping[str, int], participant: Participant
) -> Carried:
    """:class:`Carried` of an earlier version (``response_counts``: its raters per group,
    an upper bound of its raters in each item)."""
    items = {
        item.id: carried_hiding(_shown(item.groups, item.others), response_counts)
        for competency in earlier.competencies
        for item in competency.items
    }
    by_text = _question_ids_by_text(participant)
    comments: dict[str, frozenset[str]] = {}
    unmatched = False
    for group in earlier.comments:
        question_id = group.question_id or by_text.get(group.question)
        if question_id is None:
            unmatched = True
            continue
        labels = {label for label, _ in group.comments}
        if GROUP_LABELS["others"] in labels:  # some groups were merged: keep them merged
            comments[question_id] = frozenset(g for g in NON_SELF if GROUP_LABELS[g] not in labels)
    counts = carried_hiding({c.group for c in earlier.counts}, response_counts)
    return Carried(counts, items, comments, unmatched)


def _question_ids_by_text(participant: Participant) -> dict[str, str]:
    """Open question id by its text as the participant's reports show it (reports frozen
    before question ids were kept name their comment groups by text only)."""
    bank = cycle_bank(participant.cycle)
    first_name = (participant.employee.name.split() or [""])[0]
    return {q.text("others", first_name): q.id for q in bank.open_questions}


#: The cell of comment groups that could not be matched to a question (see
#: :func:`published_cells`): nothing can be compared for them.
UNMATCHED_COMMENTS = "comments:?"


def _shown(groups: Sequence[GroupScore], others: GroupScore | None) -> set[str]:
    return {g.group for g in groups} | ({"others"} if others is not None else set())


def published_cells(
    report: ReportData, participant: Participant
) -> tuple[dict[str, Published], dict[str, str]]:
    """What each cell of ``report`` publishes (for comparing versions), and its label.

    The response counts, every item and every comment question (its commenters per
    label, counted by reading the comments; "All others" holds only the merged groups'
    comments, so its count is the remainder). Competency and overall figures are left
    out: each is a sum of published item figures (anonymity rule 6), so comparing them
    says nothing the items don't, and their rater counts (over different items per
    group) would only refuse safe re-releases.
    """
    cells: dict[str, Published] = {}
    labels: dict[str, str] = {}
    others = {c.group: c.n for c in report.counts}
    cells["responses"] = Published(
        {g: n for g, n in others.items() if g != "others"}, others.get("others")
    )
    labels["responses"] = "the response counts"
    for competency in report.competencies:
        for item in competency.items:
            key = f"item:{item.id}"
            cells[key] = _published(item.groups, item.others)
            labels[key] = f"item “{item.text}”"
    group_of = {label: g for g, label in GROUP_LABELS.items()}
    by_text = _question_ids_by_text(participant)
    for question in report.comments:
        # Keyed by question id, read from the text in versions frozen before ids were
        # kept; a group matching no question (participant renamed since) gets
        # UNMATCHED_COMMENTS, which the caller must treat as not comparable.
        question_id = question.question_id or by_text.get(question.question)
        key = f"comments:{question_id}" if question_id else UNMATCHED_COMMENTS
        per_label = Counter(group_of[label] for label, _ in question.comments)
        merged = per_label.pop("others", None)
        per_label.pop("self", None)
        total = None if merged is None else merged + sum(per_label.values())
        cells[key] = Published(dict(per_label), total)
        labels[key] = f"comments on “{question.question}”"
    return cells, labels


def _published(groups: Sequence[GroupScore], others: GroupScore | None) -> Published:
    return Published({g.group: g.n for g in groups}, others.n if others is not None else None)


def build_report(
    session: Session,
    participant: Participant,
    *,
    cycle_scores: CycleScores | None = None,
    carry: Carried | None = None,
) -> ReportData:
    """The report of one participant; pass ``cycle_scores`` when rendering many.

    Every item is planned on the counts of raters who answered it
    (:func:`surveys.anonymity.plan_cells`), and a competency's (or the overall row's)
    figure of a group pools its items where that group is published, so it adds nothing
    to the item figures (anonymity rule 6). The response counts are planned on their
    own, comments per question from the counts of raters who commented. ``carry`` keeps
    hidden what the previous version of the report hid (a re-release).
    """
    carry = carry or Carried()
    cycle = participant.cycle
    if cycle_scores is None or cycle_scores.cycle_id != cycle.id:
        cycle_scores = score_cycle(session, cycle)
    bank = cycle_scores.bank
    name = participant.employee.name
    first_name = name.split()[0] if name.split() else name
    thresholds = {g: cycle.threshold(g) for g in GROUPS}
    scores = cycle_scores.scores
    row = cycle_scores.rows.get(participant.id)
    confidence = scores.confidence if scores is not None else 0.90

    by_group = dict(
        session.execute(
            select(Response.relationship, func.count())
            .where(Response.participant_id == participant.id)
            .group_by(Response.relationship)
        ).all()
    )
    response_counts = {g: int(by_group.get(Relationship(g), 0)) for g in RELATIONSHIPS}
    answers = _item_answers(session, participant.id)
    item_counts = {
        item.id: {g: len(answers.values.get(item.id, {}).get(g, ())) for g in RELATIONSHIPS}
        for item in bank.items
    }
    overall_plan = plan_disclosure(
        response_counts, thresholds, show_manager=cycle.show_manager, hide=carry.counts
    )
    # A group the response counts fold into "All others" stays folded in every item and
    # comment: shown on an item where it skipped (nothing left to single out there), the
    # group beside it would tell that it skipped — which statements the manager found
    # they could not judge, or that the one "other" colleague wrote nothing.
    folded = frozenset(overall_plan.merged)
    item_plans = plan_cells(
        item_counts,
        thresholds,
        show_manager=cycle.show_manager,
        carried={i.id: folded | carry.items.get(i.id, frozenset()) for i in bank.items},
    )
    pooled = {
        c.id: _pooled(answers, [i.id for i in c.items], item_plans) for c in bank.competencies
    }
    pooled[ALL] = _pooled(answers, [i.id for i in bank.items], item_plans)

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
                answers.values.get(item.id, {}),
                bank,
                item_plans[item.id],
            )
            items.append(detail)
            if detail.others is not None:
                ranks.append(
                    ItemRank(detail.text, competency.title, detail.others.mean, detail.others.n)
                )
        whole = _others_whole(competency.items, item_counts, item_plans)
        report = _competency(
            competency.id,
            competency.title,
            competency.description,
            pooled[competency.id],
            scores if whole else None,
            row,
            tuple(items),
            confidence,
        )
        report = dataclasses.replace(report, partial=not whole)
        competencies.append(report)
        if whole:  # the model's verdict covers answers this report may not show
            gaps += _competency_gap(report, scores, row)
        gaps += _item_gaps(report, cycle_scores.item_columns, scores, row)
    whole = _others_whole(bank.items, item_counts, item_plans)
    overall = (
        dataclasses.replace(
            _competency(
                ALL, "All items", "", pooled[ALL], scores if whole else None, row, (), confidence
            ),
            partial=not whole,
        )
        if scores is not None and row is not None
        else None
    )

    ranks.sort(key=lambda r: -r.mean)
    k_top = min(_TOP_ITEMS, len(ranks) // 2)
    top = tuple(ranks[:k_top])
    bottom = tuple(sorted(ranks[len(ranks) - k_top :], key=lambda r: r.mean)) if k_top else ()

    # Notes for every group that responded but is not counted on its own: counted in
    # "All others" (folded there in every item and comment too), or shown nowhere.
    others_somewhere = any(plan.others_shown for plan in item_plans.values())
    where = "counted in “All others” only" if others_somewhere else "not shown"
    merged_notes = tuple(
        f"{GROUP_LABELS[g]}: {where} ({overall_plan.reasons[g]})"
        for g in RELATIONSHIPS
        if g in overall_plan.reasons and response_counts[g] > 0
    )
    if responded and not overall_plan.others_shown and not others_somewhere:
        merged_notes += (f"All others: {overall_plan.reasons['others']}",)
    trend = _trend(session, participant, (*competencies, *([overall] if overall else [])))
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
        comments=_comments(session, participant, bank, thresholds, carry, folded),
        reliability=_reliability(scores, row, overall, responded, (bank.scale.min, bank.scale.max)),
        how_to_read=_how_to_read(bank, thresholds, confidence),
        confidence=confidence,
        trend=trend,
        self_asked=cycle.include_self,
    )


# -- trend ------------------------------------------------------------------------------------


def earlier_report(session: Session, participant: Participant) -> tuple[Cycle, ReportData] | None:
    """The same person's latest released report from an earlier cycle with the same bank.

    "Earlier" means a cycle created before this one and already released; the report is
    that cycle's frozen latest version, exactly what the participant read then (never
    recomputed: its responses have since been unlinked and may have changed).
    """
    cycle = participant.cycle
    found = session.execute(
        select(Cycle, ReportVersion)
        .join(Participant, Participant.cycle_id == Cycle.id)
        .join(ReportVersion, ReportVersion.participant_id == Participant.id)
        .where(
            Participant.employee_id == participant.employee_id,
            Cycle.id != cycle.id,
            Cycle.bank_key == cycle.bank_key,
            Cycle.state == CycleState.RELEASED,
            Cycle.created_at < cycle.created_at,
        )
        .order_by(Cycle.created_at.desc(), Cycle.id.desc(), ReportVersion.version.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    earlier, version = found
    return earlier, report_from_json(version.data)


def _trend(
    session: Session, participant: Participant, rows: Sequence[CompetencyReport]
) -> Trend | None:
    """Change per competency since the earlier report, or None when there is none."""
    found = earlier_report(session, participant)
    if found is None:
        return None
    earlier_cycle, earlier = found
    before = {
        c.id: c for c in (*earlier.competencies, *([earlier.overall] if earlier.overall else []))
    }
    changes: list[TrendRow] = []
    missing: list[str] = []
    for now in rows:
        then = before.get(now.id)
        row = _trend_row(then, now) if then is not None else None
        if row is None:
            missing.append(now.title)
        else:
            changes.append(row)
    note = (
        "Each change is this cycle's adjusted score from others minus the earlier one. Its "
        "margin combines both scores' intervals (the square root of the sum of their squared "
        "half-widths): a change larger than its margin is a clear change; a smaller one is "
        "within the noise of the numbers. Different colleagues may have rated you each time."
    )
    return Trend(
        earlier_cycle.name,
        earlier.released_on
        or (earlier_cycle.released_at.date().isoformat() if earlier_cycle.released_at else None),
        tuple(changes),
        tuple(missing),
        note,
    )


def _trend_row(then: CompetencyReport | None, now: CompetencyReport) -> TrendRow | None:
    if then is None:
        return None
    figures = (then.adjusted, then.ci_low, then.ci_high, now.adjusted, now.ci_low, now.ci_high)
    if any(x is None for x in figures):
        return None
    b, b_low, b_high, a, a_low, a_high = (float(x) for x in figures)  # type: ignore[arg-type]
    change = a - b
    margin = math.hypot((b_high - b_low) / 2, (a_high - a_low) / 2)
    if change > margin:
        direction, label = "up", "Clear rise"
    elif change < -margin:
        direction, label = "down", "Clear drop"
    else:
        direction, label = "same", "Within noise"
    return TrendRow(now.id, now.title, b, a, change, margin, direction, label)


def _ordered_gaps(gaps: list[Gap], per_kind: int = 3) -> tuple[Gap, ...]:
    """Competency gaps first, then the largest item gaps (a few per kind, not a list)."""
    out = [g for g in gaps if g.level == "competency"]
    for kind in ("hidden_strength", "blind_spot"):
        items = [g for g in gaps if g.level == "item" and g.kind == kind]
        out += sorted(items, key=lambda g: -abs(g.gap))[:per_kind]
    return tuple(sorted(out, key=lambda g: (g.kind, g.level != "competency", -abs(g.gap))))


@dataclass(frozen=True)
class _Answers:
    #: item id -> group -> answered values (N/A left out)
    values: Mapping[str, Mapping[str, list[int]]]
    #: item id -> group -> ids of the responses that answered it
    raters: Mapping[str, Mapping[str, set[str]]]


def _item_answers(session: Session, participant_id: int) -> _Answers:
    values: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    raters: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for response_id, rel, item_id, value in session.execute(
        select(Response.id, Response.relationship, ResponseItem.item_id, ResponseItem.value)
        .join(ResponseItem, ResponseItem.response_id == Response.id)
        .where(Response.participant_id == participant_id, ResponseItem.value.is_not(None))
    ):
        if value is not None:
            group = Relationship(rel).value
            values[item_id][group].append(int(value))
            raters[item_id][group].add(str(response_id))
    return _Answers(values, raters)


class _Pool(NamedTuple):
    values: list[int]
    raters: int
    #: The group answered an item that does not publish it (its answers are left out).
    partial: bool


def _pooled(
    answers: _Answers, item_ids: Sequence[str], plans: Mapping[str, Disclosure]
) -> dict[str, _Pool]:
    """group (and ``"others"``) -> its answers to these items and the raters who gave
    any, over the items where the group is published only.

    A competency's figures pool its items' answers rather than averaging each rater's
    own mean (as ``scoring.aggregation`` does), and only where the item shows the group.
    Its sum is then exactly the sum of published item figures, so it adds nothing a
    reader could subtract; pooling an item that hides the group would give that item
    away, and a mean of rater means weights each rater by 1/items answered, which with
    uneven N/A answers can single out one rater (surveys.anonymity, rule 6).
    """
    out: dict[str, _Pool] = {}
    for group in (*RELATIONSHIPS, "others"):
        members = [g for g in RELATIONSHIPS if g != "self"] if group == "others" else [group]
        shown = published_in({i: plans[i] for i in item_ids}, group)  # in item order
        cells = [(i, g) for i in shown for g in members]
        values = [v for i, g in cells for v in answers.values.get(i, {}).get(g, ())]
        raters = {r for i, g in cells for r in answers.raters.get(i, {}).get(g, ())}
        left_out = any(
            answers.values.get(i, {}).get(g) for i in item_ids if i not in shown for g in members
        )
        out[group] = _Pool(values, len(raters), left_out)
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
        GroupScore(
            g, GROUP_LABELS[g], _mean(values[g]), len(values[g]), _distribution(values[g], bank)
        )
        for g in RELATIONSHIPS
        if g != "self" and counts[g] and cell.is_shown(g)
    )
    others_values = [v for g in RELATIONSHIPS if g != "self" for v in values.get(g, ())]
    others = None
    distribution: tuple[tuple[int, int], ...] = ()
    if others_values and cell.others_shown:
        distribution = _distribution(others_values, bank)
        others = GroupScore(
            "others", GROUP_LABELS["others"], _mean(others_values), len(others_values), distribution
        )
    return ItemDetail(item_id, text, competency_title, self_value, groups, others, distribution)


def _distribution(values: Sequence[int], bank: Bank) -> tuple[tuple[int, int], ...]:
    """(scale value, answers) for every scale point, in scale order.

    Only ever called for a group the cell's plan shows: a distribution is as revealing as
    the group's mean (surveys.anonymity, rule 5), so it follows the same plan; the
    merged groups appear only inside "All others".
    """
    return tuple((v, values.count(v)) for v in bank.scale.values)


def _competency(
    cid: str,
    title: str,
    description: str,
    pooled: Mapping[str, _Pool],
    scores: Scores | None,
    row: int | None,
    items: tuple[ItemDetail, ...],
    confidence: float = 0.90,
) -> CompetencyReport:
    """A competency (or ``ALL``): raw means of every group published in any of its items
    (``pooled`` holds only those answers), and the headline score from others: the
    model's, or without ``scores`` (no model, or "All others" hidden in one of its items,
    whose answers the model's score would carry) the pooled mean with a plain interval."""
    self_values = pooled["self"].values
    self_score = _mean(self_values) if self_values else None
    groups = tuple(
        GroupScore(
            g, GROUP_LABELS[g], _mean(pooled[g].values), pooled[g].raters, partial=pooled[g].partial
        )
        for g in RELATIONSHIPS
        if g != "self" and pooled[g].raters
    )
    others = adjusted = low = high = None
    values, n_others, left_out = pooled["others"]
    if n_others:
        others = GroupScore(
            "others", GROUP_LABELS["others"], _mean(values), n_others, partial=left_out
        )
        if scores is not None and row is not None and cid in scores.competency_ids:
            k = scores.competency_ids.index(cid)
            adjusted = _num(scores.score[row, k])
            low, high = _num(scores.ci_low[row, k]), _num(scores.ci_high[row, k])
            if scores.method != "adjusted" and adjusted is not None:
                # The plain score is a mean of each rater's mean, and its margin the
                # spread of those means: beside the pooled item figures either could
                # single out a rater (a margin of 0 says every colleague's average was
                # the same; a wide one, that the low answers were one person's; anonymity
                # rule 6). Headline the pooled mean with the plain interval instead.
                adjusted = others.mean
                low, high = _plain_interval(values, n_others, confidence)
        elif row is not None:
            adjusted = others.mean
            low, high = _plain_interval(values, n_others, confidence)
    return CompetencyReport(
        cid, title, description, self_score, groups, others, adjusted, low, high, items
    )


def _others_whole(
    items: Sequence[Any], counts: Mapping[str, Mapping[str, int]], plans: Mapping[str, Disclosure]
) -> bool:
    """Whether every item others answered shows "All others" (so a figure made from all
    their answers, the model's, reveals nothing the items don't)."""
    return all(plans[i.id].others_shown for i in items if any(counts[i.id][g] for g in NON_SELF))


def _plain_interval(
    values: Sequence[int], raters: int, confidence: float
) -> tuple[float | None, float | None]:
    """A plain interval around the mean of ``values`` (answers of ``raters`` people):
    Student's t with the raters as the sample size, as a mean of rater means would have.
    None without spread to measure."""
    n = len(values)
    if raters < 2 or n < 2:
        return None, None
    # From integer sums: the same answers in any order give the very same figure (a
    # float sum's last bits follow the order, which follows rows in the database).
    total, squares = sum(values), sum(v * v for v in values)
    sd = math.sqrt((n * squares - total * total) / (n * (n - 1)))
    half = float(stats.t.ppf(0.5 + confidence / 2, raters - 1)) * sd / math.sqrt(raters)
    mean = _mean(values)
    return mean - half, mean + half


def _competency_gap(report: CompetencyReport, scores: Scores | None, row: int | None) -> list[Gap]:
    if scores is None or row is None or report.self_score is None or report.adjusted is None:
        return []
    k = scores.competency_ids.index(report.id)
    if scores.method == "adjusted":
        blind = bool(scores.agreement.blind_spot[row, k])
        hidden = bool(scores.agreement.hidden_strength[row, k])
    else:
        blind, hidden = _plain_gap(report, scores, row, k)
    return _gap(
        blind,
        hidden,
        report.title,
        "competency",
        report.self_score,
        report.adjusted,
        # The table beside it shows the raw means too: say which figure this is.
        "adjusted for lenient and strict raters" if scores.method == "adjusted" else "",
    )


def _plain_gap(report: CompetencyReport, scores: Scores, row: int, k: int) -> tuple[bool, bool]:
    """(blind spot, hidden strength) of a plain (unadjusted) competency score, judged
    against the plain interval the report shows: the scoring module's verdict rests on
    the spread of each rater's mean, which the report must not give away (rule 6). The
    self score keeps its own noise (the agreement's gap SE less the others' SE)."""
    assert report.self_score is not None  # both checked by the caller
    assert report.adjusted is not None
    if report.ci_low is None or report.ci_high is None:
        return False, False  # no spread to judge a gap against
    z = float(stats.norm.ppf(0.5 + scores.confidence / 2))
    others_se = (report.ci_high - report.ci_low) / (2 * z)
    gap_se, model_se = scores.agreement.gap_se[row, k], scores.se[row, k]
    self_se = math.sqrt(max(float(gap_se) ** 2 - float(model_se) ** 2, 0.0))
    if math.isnan(self_se):
        self_se = 0.0
    verdict = self_other_agreement(
        [[report.self_score]],
        [[report.adjusted]],
        [[others_se]],
        [[self_se]],
        confidence=scores.confidence,
    )
    return bool(verdict.blind_spot[0, 0]), bool(verdict.hidden_strength[0, 0])


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
    blind: bool,
    hidden: bool,
    title: str,
    level: str,
    self_score: float,
    others: float,
    others_note: str = "",
) -> list[Gap]:
    if not (blind or hidden):
        return []
    gap = self_score - others
    figure = f"{others:.1f}, {others_note}" if others_note else f"{others:.1f}"
    if blind:
        text = (
            f"You rated yourself higher ({self_score:.1f}) than others rated you "
            f"({figure}). The difference is larger than the uncertainty in the "
            "numbers, so it is probably real: ask for examples of what others see."
        )
        return [Gap("blind_spot", title, level, self_score, others, gap, text)]
    text = (
        f"Others rated you higher ({figure}) than you rated yourself "
        f"({self_score:.1f}). The difference is larger than the uncertainty in the "
        "numbers: this may be a strength you can rely on more."
    )
    return [Gap("hidden_strength", title, level, self_score, others, gap, text)]


def _comments(
    session: Session,
    participant: Participant,
    bank: Bank,
    thresholds: Mapping[str, int],
    carry: Carried,
    folded: frozenset[str],
) -> tuple[CommentGroup, ...]:
    """Each question's comments, planned on who commented, with the groups the response
    counts fold into "All others" (``folded``) folded there too."""
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
        plan = plan_disclosure(
            counts,
            thresholds,
            show_manager=participant.cycle.show_manager,
            hide=folded | carry.comment_hide(question.id),
        )
        shown = shuffled_comments(found, plan, seed=f"{participant.id}:{question.id}")
        if shown:
            groups.append(
                CommentGroup(
                    question.text("others", first_name),
                    tuple((GROUP_LABELS[g], text) for g, text in shown),
                    question.id,
                )
            )
    return tuple(groups)


def _reliability(
    scores: Scores | None,
    row: int | None,
    overall: CompetencyReport | None,
    responded: int,
    scale: tuple[int, int],
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
    if scores.method != "adjusted":  # its own SE is the spread of rater means (rule 6)
        z = float(stats.norm.ppf(0.5 + scores.confidence / 2))
        shown = (overall.ci_low, overall.ci_high)
        se = None if None in shown else (shown[1] - shown[0]) / (2 * z)  # type: ignore[operator]
    rel = None
    if scores.model is not None and scores.method == "adjusted":
        rel = _num(scores.model.reliability[row])
    n = overall.others.n if overall.others else responded
    lines = []
    low, high = overall.ci_low, overall.ci_high
    if low is not None and high is not None:
        # Shown cut at the ends of the scale, as the overview table shows it.
        shown = cut_interval(low, high, scale)
        precision = (
            f"; the {round(scores.confidence * 100)}% interval runs from"
            f" {shown[0]:.1f} to {shown[1]:.1f}"
            + (f" (±{(high - low) / 2:.1f})." if shown == (low, high) else ".")
        )
    else:
        precision = "; there are too few ratings to say how precise it is."
    lines.append(
        f"{n} colleague{'s' if n != 1 else ''} rated you. Your overall score from others is "
        f"{overall.adjusted:.1f}{precision}"
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
        "A group's score for a competency averages its answers to the items where that "
        "group is shown; where “All others” is hidden on one of its items, the score from "
        "others is their plain average over the items shown, without the adjustment for "
        "lenient and harsh raters.",
        "Under “Answers (low → high)” the bar counts the answers from all others at each "
        "point of the scale, lowest first; the rows beneath give the same counts for each "
        "group shown on its own.",
        "Comments are shown word for word, without names, grouped by rater group and in"
        " random order within each group.",
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
    return _reader(ReportData)(data)


def report_scores_from_json(data: Mapping[str, Any]) -> ReportData:
    """A frozen report's scores only: :func:`report_from_json` without the item detail,
    ranked items, gaps, comments and trend (left empty), for exports of every report of a
    cycle (the detail is most of a report)."""
    slim = dict(data, top_items=[], bottom_items=[], gaps=[], comments=[], trend=None)
    slim["competencies"] = [dict(c, items=[]) for c in data["competencies"]]
    if data["overall"] is not None:
        slim["overall"] = dict(data["overall"], items=[])
    return _reader(ReportData)(slim)


def _to_json(value: Any) -> Any:
    # Exact types first: a report has thousands of values, and the ABC checks below are
    # slow (they are for numpy's scalars and other subclasses).
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"report value {value} has no JSON form")
        return value
    if value is None or kind in _PLAIN:
        return value
    if kind is tuple or kind is list:
        return [_to_json(v) for v in value]
    if dataclasses.is_dataclass(kind):
        return {name: _to_json(getattr(value, name)) for name in _field_names(kind)}
    if isinstance(value, str | bool):  # subclasses: str enums, Markup
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"report value {number} has no JSON form")
        return number
    raise TypeError(f"cannot freeze {kind.__name__} into a report")


_PLAIN = frozenset({str, bool, int})


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _reader(tp: Any) -> Callable[[Any], Any]:
    """A function reading a value of type ``tp`` from its JSON form, made once per type
    (a report holds thousands of values; inspecting the type for each was most of the
    time it took to read one)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        read = _reader(inner)
        return lambda value: None if value is None else read(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [(f.name, _reader(hints[f.name]), _has_default(f)) for f in dataclasses.fields(tp)]

        def read_dataclass(value: Mapping[str, Any]) -> Any:
            # Fields added later (with a default) are missing from reports frozen before.
            return tp(
                **{
                    name: read(value[name])
                    for name, read, optional in fields
                    if not optional or name in value
                }
            )

        return read_dataclass
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            read = _reader(args[0])
            return lambda value: tuple(map(read, value))
        readers = [_reader(a) for a in args]
        return lambda value: tuple(r(v) for r, v in zip(readers, value, strict=True))
    if tp in (int, float, str, bool):
        return tp
    raise TypeError(f"cannot read {tp!r} from a frozen report")


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
