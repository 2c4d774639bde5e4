"""Scores export and API publish the reports' own figures (surveys.anonymity, rule 6).

A competency figure that averages each rater's own mean, next to the report's item
figures that pool answers, can single out a rater who skipped items. So scores.csv and
``/api/v1/cycles/<id>/scores`` publish exactly what each participant's report shows:
the same pooled raw means and rater counts, the same headline score and interval, and
nothing the report hides.
"""

from __future__ import annotations

import csv
import io
import json
from statistics import NormalDist

import pytest
from sqlalchemy import select

from surveys import cycles, exports, responses
from surveys.models import Assignment, Participant
from surveys.releases import latest_version, release_cycle
from surveys.reports import (
    ReportData,
    build_report,
    report_from_json,
    score_cycle,
)
from surveys.scores_csv import SCORES_COLUMNS
from tests import factories as f
from tests.webapp.test_api import api, token  # noqa: F401 (fixtures)

FIGURES = ("n_raters", "raw_mean", "adjusted", "se", "ci_low", "ci_high")


def shown_figures(report: ReportData) -> dict[tuple[str, str], dict[str, float | None]]:
    """(competency, group) -> the figures the report shows, for every shown group."""
    out = {}
    for cell in (*report.competencies, *([report.overall] if report.overall else [])):
        if cell.self_score is not None:
            out[(cell.id, "self")] = {"n_raters": 1, "raw_mean": cell.self_score}
        for g in cell.groups:
            out[(cell.id, g.group)] = {"n_raters": g.n, "raw_mean": g.mean}
        if cell.others is not None:
            out[(cell.id, "others")] = {
                "n_raters": cell.others.n,
                "raw_mean": cell.others.mean,
                # A partial cell's headline is the plain pooled mean, not adjusted.
                "adjusted": None if cell.partial else cell.adjusted,
                # Shown cut at the ends of the scale; the se is the interval's own.
                "ci_low": None if cell.ci_low is None else max(cell.ci_low, report.scale_min),
                "ci_high": None if cell.ci_high is None else min(cell.ci_high, report.scale_max),
                "interval": (cell.ci_low, cell.ci_high),
            }
    return out


def reports_of(session, cycle) -> dict[str, ReportData]:
    """Employee id -> the report the participant reads (or will read once released)."""
    participants = session.scalars(
        select(Participant).where(Participant.cycle_id == cycle.id).order_by(Participant.id)
    ).all()
    if cycle.state.value == "released":
        return {
            p.employee.external_id: report_from_json(latest_version(session, p).data)
            for p in participants
        }
    scored = score_cycle(session, cycle)
    return {
        p.employee.external_id: build_report(session, p, cycle_scores=scored) for p in participants
    }


def published(rows) -> dict[tuple[str, str, str], dict[str, float | None]]:
    """(employee id, competency, group) -> figures of every row that publishes any."""
    out = {}
    for row in rows:
        figures = {k: row[k] for k in FIGURES}
        if all(v is None for v in figures.values()):
            continue
        out[(row["employee_id"], row["competency"], row["relationship"])] = figures
    return out


def assert_the_reports_figures(export, reports, *, places: int | None):
    """Every exported figure is one the report shows, with the report's value."""

    def same(a, b):
        if a is None or b is None:
            return a is None and b is None
        return round(b, places) == pytest.approx(a, abs=1e-9) if places else a == b

    assert export, "the export published nothing"
    n_compared = n_adjusted = 0
    for (employee_id, competency, group), figures in export.items():
        shown = shown_figures(reports[employee_id])
        assert (competency, group) in shown, f"{employee_id} {competency} {group} is hidden"
        want = shown[(competency, group)]
        for name in ("n_raters", "raw_mean", "ci_low", "ci_high"):
            assert same(figures[name], want.get(name)), (employee_id, competency, group, name)
            n_compared += want.get(name) is not None
        report = reports[employee_id]
        if group != "others":
            assert figures["adjusted"] is None
            assert figures["se"] is None
            continue
        if report.reliability.method == "adjusted":
            assert same(figures["adjusted"], want["adjusted"])
            n_adjusted += want["adjusted"] is not None
        else:  # plain means: the report's headline is the pooled mean itself
            assert figures["adjusted"] is None
        if figures["ci_low"] is not None:
            assert report.scale_min <= figures["ci_low"] <= figures["ci_high"] <= report.scale_max
            z = NormalDist().inv_cdf(0.5 + report.confidence / 2)
            low, high = want["interval"]
            se = (high - low) / (2 * z)
            assert figures["se"] == pytest.approx(se, abs=10.0 ** -(places or 9))
    assert n_compared > 20
    if any(r.reliability.method == "adjusted" for r in reports.values()):
        assert n_adjusted, "no adjusted score was exported"


def csv_export(session, cycle):
    table = list(csv.DictReader(io.StringIO(exports.scores_csv(session, cycle))))
    assert table
    assert tuple(table[0]) == SCORES_COLUMNS

    def num(text):
        return float(text) if text else None

    rows = []
    for r in table:
        rows.append(
            {
                "employee_id": r["ratee_id"],
                "competency": r["competency"],
                "relationship": r["relationship"],
                "n_raters": int(r["n_raters"]) if r["n_raters"] else None,
                **{k: num(r[k]) for k in FIGURES[1:]},
            }
        )
        if r["suppressed"] == "1":
            assert all(r[k] == "" for k in FIGURES)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_csv_export_publishes_the_reports_figures(session, seed):
    cycle = f.generated_cycle(session, seed)
    reports = reports_of(session, cycle)
    export = published(csv_export(session, cycle))
    assert_the_reports_figures(export, reports, places=4)
    # The rows are the service's, and they are exact (not merely rounded) report figures.
    rows = [vars(r) for r in exports.score_rows(session, cycle).rows]
    assert_the_reports_figures(published(rows), reports, places=None)


def test_the_export_of_a_released_cycle_publishes_the_released_reports(session):
    cycle = f.generated_cycle(session, 4)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    reports = reports_of(session, cycle)
    rows = [vars(r) for r in exports.score_rows(session, cycle).rows]
    assert_the_reports_figures(published(rows), reports, places=None)
    assert_the_reports_figures(published(csv_export(session, cycle)), reports, places=4)


@pytest.mark.parametrize("seed", [5, 6])
def test_the_api_publishes_the_reports_figures(session, api, seed):  # noqa: F811
    cycle = f.generated_cycle(session, seed)
    reports = reports_of(session, cycle)
    body = api.get(f"/cycles/{cycle.id}/scores").get_json()
    assert body["min_group_size"] == exports.scores_min_group_size(cycle)
    assert_the_reports_figures(published(body["scores"]), reports, places=4)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    reports = reports_of(session, cycle)
    released = api.get(f"/cycles/{cycle.id}/scores").get_json()["scores"]
    assert_the_reports_figures(published(released), reports, places=4)


def test_a_skipped_item_moves_the_pooled_figure_not_a_rater_mean(session):
    """Known answers: the peers answer two items (5, 5), one item (1) and two (3, 3), the
    manager two (4, 4). The others' figure pools the answers, 25/7, where a mean of the
    rater means would be (5 + 1 + 3 + 4)/4 = 3.25."""
    _, team = f.team(session, 4)
    cycle = f.launched(session, team[:1], peer_min=3, peer_max=3, show_manager=False)
    bank = responses.cycle_bank(cycle)
    first, second = bank.competencies[0].items[:2]
    rest = {i.id: responses.NA for i in bank.items}
    answers = {"peer": [(5, 5), (1, None), (3, 3)], "self": [(4, 4)], "manager": [(4, 4)]}
    peers = 0
    for a in session.scalars(
        select(Assignment).where(Assignment.cycle_id == cycle.id).order_by(Assignment.id)
    ):
        group = a.relationship.value
        x, y = answers[group][peers if group == "peer" else 0]
        peers += group == "peer"
        ratings = {**rest, first.id: x, second.id: responses.NA if y is None else y}
        responses.save_draft(session, a, responses.Answers(ratings, {}))
        responses.submit(session, a)
    cycles.close_cycle(session, cycle)
    session.commit()
    rows = {
        (r.competency, r.relationship): r
        for r in exports.score_rows(session, cycle).rows
        if not r.suppressed
    }
    competency = bank.competencies[0].id
    others = rows[(competency, "others")]
    assert others.n_raters == 4  # the manager and three peers, pooled as the report does
    assert others.raw_mean == pytest.approx((5 + 5 + 1 + 3 + 3 + 4 + 4) / 7)
    assert rows[("ALL", "others")].raw_mean == others.raw_mean
    assert (competency, "peer") not in rows  # with the manager hidden, peers would show them


@pytest.mark.parametrize(("seed", "thresholds"), [(7, {}), (8, {"others": 4}), (9, {"peer": 4})])
def test_the_export_alone_pools_its_group_size_everywhere(session, seed, thresholds):
    """On top of the report's plan, every separate group and "others" pools at least the
    export's group size, and so does every remainder ("others" minus the groups shown)."""
    cycle = f.generated_cycle(session, seed, size=9, na=0.1, peer_max=6, thresholds=thresholds)
    size = exports.scores_min_group_size(cycle)
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for row in exports.score_rows(session, cycle).rows:
        if not row.suppressed and row.relationship != "self":
            cells.setdefault((row.employee_id, row.competency), {})[row.relationship] = row.n_raters
    assert cells
    shown_somewhere: dict[str, set[str]] = {}
    for (employee_id, _), groups in cells.items():
        assert all(n >= size for n in groups.values()), groups
        if "others" in groups:
            rest = groups["others"] - sum(n for g, n in groups.items() if g != "others")
            assert rest == 0 or rest >= size, groups
        shown_somewhere.setdefault(employee_id, set()).update(groups)
    # A group withheld in one cell is withheld in all of the participant's cells.
    reports = reports_of(session, cycle)
    for employee_id, groups in shown_somewhere.items():
        shown = shown_figures(reports[employee_id])
        for competency, group in shown:
            if group in groups and group != "self":
                assert group in cells.get((employee_id, competency), {}), (competency, group)


def test_each_released_report_keeps_its_own_scoring_method(session):
    """A re-released version is scored after release cut the rater links, so it may be
    plain means beside first versions that were adjusted: each participant's rows follow
    their own report, and the cycle says "mixed"."""
    cycle = f.generated_cycle(session, 1, size=10, na=0.1, peer_min=4, peer_max=6)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    assert exports.score_rows(session, cycle).method == "adjusted"
    first = session.scalars(
        select(Participant).where(Participant.cycle_id == cycle.id).order_by(Participant.id)
    ).first()
    version = latest_version(session, first)
    data = json.loads(json.dumps(version.data))
    data["reliability"]["method"] = "raw"  # as a re-release scored without rater links
    version.data = data
    session.commit()

    rows = exports.score_rows(session, cycle)
    assert rows.method == "mixed"
    others = [r for r in rows.rows if r.relationship == "others" and r.raw_mean is not None]
    plain = [r for r in others if r.employee_id == first.employee.external_id]
    rest = [r for r in others if r.employee_id != first.employee.external_id]
    assert plain
    assert rest
    assert all(r.adjusted is None for r in plain)
    assert all(r.adjusted is not None for r in rest)


def test_a_plain_headline_is_not_exported_as_adjusted(session):
    """Where "All others" is hidden on one of a competency's statements the report's
    headline is the pooled mean, not the model's score: the export's ``adjusted`` is
    blank there, and the model's elsewhere."""
    cycle = f.generated_cycle(session, 0, size=10, na=0.4)
    reports = reports_of(session, cycle)
    partial = whole = 0
    for row in exports.score_rows(session, cycle).rows:
        if row.relationship != "others" or row.raw_mean is None:
            continue
        report = reports[row.employee_id]
        cells = (*report.competencies, report.overall)
        cell = next(c for c in cells if c and c.id == row.competency)
        if cell.partial:
            partial += 1
            assert row.adjusted is None, (row.employee_id, row.competency)
        else:
            whole += 1
            assert row.adjusted == cell.adjusted
    assert partial
    assert whole
