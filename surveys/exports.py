"""HR's CSV exports: response rates and anonymized scores, never raw responses.

Both are built from counts and aggregates only: no rater name, pseudonym, answer,
comment or submission day is read, so neither file can say who rated whom or what
anyone answered. Every cell goes through :mod:`surveys.csv_safety` (names come from the
org chart, which anyone with an HRIS account may have typed).

The scores are the participants' reports' own figures (:func:`score_rows`, also behind
the REST API's scores): a competency's raw mean pools its items' answers exactly as the
report does, never a mean of rater means, because publishing both kinds of figure for
the same cells can single out a rater (:mod:`surveys.anonymity`, rule 6).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from scoring import RELATIONSHIPS
from surveys.anonymity import OTHERS, SELF, plan_export
from surveys.csv_safety import csv_text
from surveys.errors import DomainError
from surveys.models import Cycle, CycleState, Employee, Participant, Relationship, Response
from surveys.releases import IDS_PER_QUERY, latest_versions
from surveys.reports import (
    CycleScores,
    ReportData,
    build_report,
    cut_interval,
    report_scores_from_json,
    score_cycle,
)
from surveys.scores_csv import SCORES_COLUMNS, ScoresTable, write_scores_table
from surveys.status import GroupProgress, cycle_status

__all__ = [
    "RESPONSE_RATE_COLUMNS",
    "SCORES_COLUMNS",
    "CycleScoreRows",
    "ScoreRow",
    "count_participants",
    "require_scores",
    "response_rates_csv",
    "score_rows",
    "scores_csv",
    "scores_csv_chunks",
    "scores_min_group_size",
]

RESPONSE_RATE_COLUMNS = (
    "employee_id",
    "participant",
    "relationship",
    "invited",
    "responded",
    "rate",
)

#: Scores a closed cycle (:func:`surveys.reports.score_cycle` or a cache of it).
Scorer = Callable[[Session, Cycle], CycleScores]

#: Cycles whose scores may be exported: nobody can answer any more.
SCORABLE = (CycleState.CLOSED, CycleState.RELEASED)


def _row(employee_id: str, name: str, relationship: str, group: GroupProgress) -> list[object]:
    rate = f"{group.rate:.4f}" if group.invited else ""
    return [employee_id, name, relationship, group.invited, group.submitted, rate]


def response_rates_csv(session: Session, cycle: Cycle) -> str:
    """One row per participant × relationship, plus an ``all`` row each: counts only.

    The rows come from :func:`surveys.status.cycle_status`, i.e. assignment statuses;
    responses are not read at all.
    """
    if cycle.state not in (CycleState.OPEN, *SCORABLE):
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; response rates exist once it opens"
        )
    status = cycle_status(session, cycle)
    order = [r.value for r in Relationship]
    rows: list[list[object]] = []
    for person in status.participants:
        for key in sorted(person.by_relationship, key=order.index):
            rows.append(_row(person.employee_id, person.name, key, person.by_relationship[key]))
        rows.append(_row(person.employee_id, person.name, "all", person.total))
    return csv_text(RESPONSE_RATE_COLUMNS, rows)


def scores_min_group_size(cycle: Cycle) -> int:
    """The one group size the score export withholds below: the strictest anonymous one.

    Every separate group (self excepted) and "others" in the export has at least this many
    raters, on top of the report's own thresholds: the manager's named group is withheld
    too, as an export travels further than a report.
    """
    return max(cycle.threshold(g) for g in ("peer", "direct_report", "other", "others"))


# -- scores ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreRow:
    """One row of scores.csv: a participant × competency (``ALL``) × group's figures.

    Figures are None when not published; ``suppressed`` rows publish none at all.
    """

    participant_id: int
    employee_id: str
    name: str
    competency: str
    relationship: str
    n_raters: int | None
    raw_mean: float | None
    adjusted: float | None
    se: float | None
    ci_low: float | None
    ci_high: float | None
    suppressed: bool


@dataclass(frozen=True)
class CycleScoreRows:
    """A cycle's score rows and what they were made with."""

    #: ``"adjusted"`` or ``"raw"`` (the others' headline score), None without ratings.
    method: str | None
    min_group_size: int
    rows: tuple[ScoreRow, ...]


def score_rows(
    session: Session,
    cycle: Cycle,
    *,
    employee_id: str | None = None,
    participants: slice | None = None,
    score: Scorer = score_cycle,
) -> CycleScoreRows:
    """The figures of every participant's report (or only ``employee_id``'s), as rows.

    A closed cycle's reports are built as the release will freeze them
    (:func:`surveys.reports.build_report`, the cycle scored once); a released cycle's
    are each participant's latest released version, exactly what they read. A figure is
    in a row only where the report shows it, with the report's value, and groups with
    fewer raters than :func:`scores_min_group_size` are withheld besides
    (:func:`surveys.anonymity.plan_export`). Participants nobody responded for have no rows.

    ``participants`` takes a slice of the cycle's participants in id order (a page of
    the API), counted by :func:`count_participants`. ``score`` scores a closed cycle
    (the web app keeps a closed cycle's scores between requests).
    """
    require_scores(cycle)
    chosen = _participants(session, cycle, employee_id, participants)
    if not chosen:
        return CycleScoreRows(None, scores_min_group_size(cycle), ())
    scored = None if cycle.state == CycleState.RELEASED else score(session, cycle)
    rows: list[ScoreRow] = []
    methods: set[str] = set()
    for report_method, some in _participant_rows_each(session, cycle, chosen, scored):
        methods.add(report_method)
        rows += some
    if scored is not None:
        method = scored.scores.method if scored.scores is not None else None
    else:
        # A re-released version is scored after the release cut the rater links, so it
        # may be plain means where the first versions were adjusted.
        methods.discard("none")
        method = methods.pop() if len(methods) == 1 else "mixed" if methods else None
    return CycleScoreRows(method, scores_min_group_size(cycle), tuple(rows))


def count_participants(session: Session, cycle: Cycle, employee_id: str | None = None) -> int:
    """How many participants :func:`score_rows` pages through (``employee_id``: 1 or 0)."""
    query = select(func.count()).select_from(Participant).where(Participant.cycle_id == cycle.id)
    if employee_id is not None:
        query = query.join(Employee, Participant.employee_id == Employee.id).where(
            Employee.external_id == employee_id
        )
    return session.scalar(query) or 0


def require_scores(cycle: Cycle) -> None:
    """DomainError unless ``cycle`` has scores to export (closed or released)."""
    if cycle.state not in SCORABLE:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; scores are exported once it is closed"
        )


def _participants(
    session: Session, cycle: Cycle, employee_id: str | None, part: slice | None
) -> Sequence[Participant]:
    query = (
        select(Participant)
        .join(Employee, Participant.employee_id == Employee.id)
        .where(Participant.cycle_id == cycle.id)
        .options(contains_eager(Participant.employee))
        .order_by(Participant.id)
    )
    if employee_id is not None:
        query = query.where(Employee.external_id == employee_id)
    if part is not None:
        query = query.offset(part.start).limit(part.stop - part.start)
    return session.scalars(query).all()


def _participant_rows_each(
    session: Session, cycle: Cycle, participants: Sequence[Participant], scored: CycleScores | None
) -> Iterator[tuple[str, list[ScoreRow]]]:
    """Each participant's report method and rows, one report at a time (a large cycle's
    reports together took gigabytes)."""
    size = scores_min_group_size(cycle)
    for participant, report, counts in _reports(session, cycle, participants, scored):
        rows = _participant_rows(participant, report, counts, size) if any(counts.values()) else []
        yield report.reliability.method, rows


def _reports(
    session: Session,
    cycle: Cycle,
    participants: Sequence[Participant],
    scored: CycleScores | None,
) -> Iterator[tuple[Participant, ReportData, dict[str, int]]]:
    """Each participant's report with its response counts: the released version's scores,
    or (``scored`` given) the report as the release will freeze it."""
    if scored is None:
        for start in range(0, len(participants), IDS_PER_QUERY):
            some = participants[start : start + IDS_PER_QUERY]
            versions = latest_versions(session, some)
            for p in some:
                if (v := versions.get(p.id)) is not None:
                    yield p, report_scores_from_json(v.data), dict(v.response_counts)
        return
    counts: dict[int, dict[str, int]] = {}
    for pid, rel, n in session.execute(
        select(Response.participant_id, Response.relationship, func.count())
        .where(Response.cycle_id == cycle.id)
        .group_by(Response.participant_id, Response.relationship)
    ):
        counts.setdefault(pid, {})[Relationship(rel).value] = int(n)
    for p in participants:
        yield p, build_report(session, p, cycle_scores=scored), counts.get(p.id, {})


def _participant_rows(
    participant: Participant,
    report: ReportData,
    counts: dict[str, int],
    size: int,
) -> list[ScoreRow]:
    """Self (when answered), each group that responded, and "others", per competency.

    A group that responded but is not published in a cell gets a blank row: which groups
    responded is in the report too (its response counts and notes).
    """
    cells = [c for c in (*report.competencies, report.overall) if c is not None]
    cut, no_others = plan_export(
        [({g.group: g.n for g in c.groups}, c.others.n if c.others else None) for c in cells],
        size,
    )
    z = NormalDist().inv_cdf(0.5 + report.confidence / 2)
    responded = [g for g in RELATIONSHIPS if g != SELF and counts.get(g, 0) > 0]
    rows = []
    for cell in cells:
        if cell.self_score is not None:
            rows.append(_score_row(participant, cell.id, SELF, 1, cell.self_score))
        shown = {g.group: g for g in cell.groups if g.group not in cut}
        for group in responded:
            figures = shown.get(group)
            n_mean = (figures.n, figures.mean) if figures else (None, None)
            rows.append(_score_row(participant, cell.id, group, *n_mean))
        others = None if no_others else cell.others
        if others is None:
            rows.append(_score_row(participant, cell.id, OTHERS))
            continue
        low, high = cell.ci_low, cell.ci_high
        se = None
        if low is not None and high is not None:
            # The report's interval is the headline score ± z·se, shown cut at the ends
            # of the scale (the report does the same).
            se = (high - low) / (2 * z)
            low, high = cut_interval(low, high, (report.scale_min, report.scale_max))
        # A partial cell's headline is the pooled mean (the model's score would carry
        # answers the report hides), so it has no adjusted score to export.
        adjusted = (
            cell.adjusted if report.reliability.method == "adjusted" and not cell.partial else None
        )
        rows.append(
            _score_row(participant, cell.id, OTHERS, others.n, others.mean, adjusted, se, low, high)
        )
    return rows


def _score_row(
    participant: Participant,
    competency: str,
    group: str,
    n: int | None = None,
    mean: float | None = None,
    adjusted: float | None = None,
    se: float | None = None,
    low: float | None = None,
    high: float | None = None,
) -> ScoreRow:
    """A row with the given figures; without a mean it is a suppressed (blank) row."""
    employee = participant.employee
    return ScoreRow(
        participant.id,
        employee.external_id,
        employee.name,
        competency,
        group,
        n,
        mean,
        adjusted,
        se,
        low,
        high,
        suppressed=mean is None,
    )


def scores_csv(session: Session, cycle: Cycle) -> str:
    """The cycle's scores in the ``feedback360 score`` format (DESIGN §8), by employee id.

    The rows of :func:`score_rows`: the reports' figures per participant × competency ×
    relationship group; a withheld group's row is blank with ``suppressed=1``. Raters
    appear in no column.
    """
    return "".join(scores_csv_chunks(session, cycle))


#: Participants whose rows :func:`scores_csv_chunks` writes at a time.
CSV_CHUNK_PARTICIPANTS = 200


def scores_csv_chunks(
    session: Session, cycle: Cycle, *, score: Scorer = score_cycle
) -> Iterator[str]:
    """:func:`scores_csv` a piece at a time, so a large cycle's file is sent while it is
    made: the header at once, then the rows of ``CSV_CHUNK_PARTICIPANTS`` participants
    each. Refuses (DomainError) before anything is read when the cycle has no scores yet;
    the rest is read as the pieces are asked for."""
    require_scores(cycle)
    return _csv_chunks(session, cycle, score)


def _csv_chunks(session: Session, cycle: Cycle, score: Scorer) -> Iterator[str]:
    yield ",".join(SCORES_COLUMNS) + "\n"
    participants = _participants(session, cycle, None, None)
    scored = None if cycle.state == CycleState.RELEASED else score(session, cycle)
    each = _participant_rows_each(session, cycle, participants, scored)
    while chunk := list(itertools.islice(each, CSV_CHUNK_PARTICIPANTS)):
        rows = [row for _, some in chunk for row in some]
        if not rows:
            continue  # nobody responded for any of these participants
        buffer = io.StringIO()
        write_scores_table(_table(rows), buffer, header=False)
        yield buffer.getvalue()


def _table(rows: Sequence[ScoreRow]) -> ScoresTable:
    def numbers(name: str) -> np.ndarray:
        values = [getattr(r, name) for r in rows]
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    return ScoresTable(
        ratee_id=np.array([r.employee_id for r in rows], dtype=object),
        competency=np.array([r.competency for r in rows], dtype=object),
        relationship=np.array([r.relationship for r in rows], dtype=object),
        n_raters=np.array([r.n_raters or 0 for r in rows], dtype=np.int64),
        raw_mean=numbers("raw_mean"),
        adjusted=numbers("adjusted"),
        se=numbers("se"),
        ci_low=numbers("ci_low"),
        ci_high=numbers("ci_high"),
        suppressed=np.array([r.suppressed for r in rows], dtype=bool),
    )
