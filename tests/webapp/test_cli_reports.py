"""``feedback360 reports accept-late`` and ``reports rerelease``."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from surveys import cycles
from surveys.models import AssignmentStatus, AuditEvent, OutboxMessage, Response
from surveys.releases import latest_version, release_cycle
from surveys.responses import cycle_bank
from tests import factories as f
from tests.surveys.test_releases import late_team
from tests.surveys.test_reports import build_cycle


def released_with_late(session, *, peers=6, answering=3):
    cycle, participant, late = late_team(session, peers=peers, answering=answering)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    return cycle, participant, late


def answers_file(tmp_path, participant, value, **extra):
    bank = cycle_bank(participant.cycle)
    data = {"ratings": {item.id: value for item in bank.items}, **extra}
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def accept(runner, cycle, participant, assignment, path):
    return runner.invoke(
        args=[
            "reports",
            "accept-late",
            "--cycle",
            str(cycle.id),
            "--participant",
            participant.employee.external_id,
            "--rater",
            assignment.rater.external_id,
            path,
        ]
    )


def test_accept_late_then_rerelease_prints_the_new_version(session, runner, tmp_path):
    cycle, participant, late = released_with_late(session)
    for a in late:
        result = accept(runner, cycle, participant, a, answers_file(tmp_path, participant, 2))
        assert result.exit_code == 0, result.output
        assert "Accepted a late peer response" in result.output
        assert f"reports rerelease --cycle {cycle.id}" in result.output
    session.expire_all()
    assert {a.status for a in late} == {AssignmentStatus.SUBMITTED}

    result = runner.invoke(args=["reports", "rerelease", "--cycle", str(cycle.id)])
    assert result.exit_code == 0, result.output
    who = participant.employee.external_id
    assert f"{who} ({participant.employee.name}): new version 2" in result.output
    assert "1 new versions, 0 not re-released" in result.output
    session.expire_all()
    assert latest_version(session, participant.id).version == 2

    again = runner.invoke(args=["reports", "rerelease", "--cycle", str(cycle.id)])
    assert again.exit_code == 0
    assert "not re-released" in again.output
    assert "no responses were added" in again.output
    logged = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert logged == ["response.accept_late"] * len(late) + ["cycle.rerelease"] * 2


def test_rerelease_prints_the_refusal_for_a_single_late_rater(session, runner, tmp_path):
    cycle, participant, late = released_with_late(session, peers=4, answering=3)
    result = accept(runner, cycle, participant, late[0], answers_file(tmp_path, participant, 1))
    assert result.exit_code == 0, result.output
    who = participant.employee.external_id
    result = runner.invoke(
        args=["reports", "rerelease", "--cycle", str(cycle.id), "--participant", who]
    )
    assert result.exit_code == 0, result.output
    assert f"{who} ({participant.employee.name}): not re-released:" in result.output
    assert "Peers changed by 1 rater" in result.output
    session.expire_all()
    assert latest_version(session, participant.id).version == 1


def test_accept_late_refuses_bad_answers_and_stores_nothing(session, runner, tmp_path):
    cycle, participant, late = released_with_late(session, peers=4, answering=3)
    before = session.scalar(select(func.count(Response.id)))

    bad_value = accept(runner, cycle, participant, late[0], answers_file(tmp_path, participant, 9))
    assert bad_value.exit_code != 0
    assert "nothing stored" in bad_value.output
    assert "Choose a value from 1 to 5" in bad_value.output

    not_json = tmp_path / "bad.json"
    not_json.write_text("{nope", encoding="utf-8")
    result = accept(runner, cycle, participant, late[0], str(not_json))
    assert result.exit_code != 0
    assert "not valid JSON" in result.output

    submitted = accept(runner, cycle, participant, late[0], answers_file(tmp_path, participant, 3))
    assert submitted.exit_code == 0, submitted.output
    twice = accept(runner, cycle, participant, late[0], answers_file(tmp_path, participant, 3))
    assert twice.exit_code != 0
    assert "already submitted" in twice.output
    assert session.scalar(select(func.count(Response.id))) == before + 1


def test_rerelease_errors(session, runner):
    result = runner.invoke(args=["reports", "rerelease", "--cycle", "424242"])
    assert result.exit_code != 0
    assert "no cycle" in result.output

    cycle, _participant, _ = late_team(session, peers=4, answering=3)
    result = runner.invoke(args=["reports", "rerelease", "--cycle", str(cycle.id)])
    assert result.exit_code != 0
    assert "only released reports can be re-released" in result.output

    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    result = runner.invoke(
        args=["reports", "rerelease", "--cycle", str(cycle.id), "--participant", "NOPE"]
    )
    assert result.exit_code != 0
    assert "not participants of cycle" in result.output


def test_hold_then_release_then_share_from_the_command_line(session, runner):
    cycle, participant = build_cycle(session, participants=2)
    cycles.close_cycle(session, cycle)
    session.commit()
    me = participant.employee.external_id
    other = next(p for p in cycle.participants if p.id != participant.id)

    result = runner.invoke(args=["reports", "hold", "--cycle", str(cycle.id), me])
    assert result.exit_code == 0, result.output
    assert f"1 report held back at release; 1 of cycle {cycle.id} held in all." in result.output
    unknown = runner.invoke(args=["reports", "hold", "--cycle", str(cycle.id), me, "NOPE"])
    assert unknown.exit_code == 1
    assert f"not participants of cycle {cycle.id}: NOPE" in unknown.output
    early = runner.invoke(args=["reports", "share", "--cycle", str(cycle.id), me])
    assert early.exit_code == 1
    assert "a report is shared after the release" in early.output

    released = runner.invoke(args=["cycles", "release", str(cycle.id)])
    assert released.exit_code == 0, released.output
    assert "2 reports frozen, 1 email with report links queued. 1 held back" in released.output
    session.expire_all()
    assert report_addresses(session) == [other.employee.email]

    shared = runner.invoke(args=["reports", "share", "--cycle", str(cycle.id), me])
    assert shared.exit_code == 0, shared.output
    assert "1 report link queued." in shared.output
    session.expire_all()
    assert sorted(report_addresses(session)) == sorted(p.employee.email for p in cycle.participants)
    again = runner.invoke(args=["reports", "share", "--cycle", str(cycle.id), me])
    assert again.exit_code == 1
    assert "already been sent" in again.output
    late = runner.invoke(args=["reports", "hold", "--cycle", str(cycle.id), "--undo", me])
    assert late.exit_code == 1
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.startswith("report."))
    ).all()
    assert sorted(actions) == ["report.hold", "report.share"]


def report_addresses(session) -> list[str]:
    return list(
        session.scalars(select(OutboxMessage.to_address).where(OutboxMessage.kind == "report"))
    )
