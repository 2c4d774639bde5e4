from datetime import timedelta

import pytest
from sqlalchemy import func, select

from surveys import assignments, cycles
from surveys.banks import get_bank
from surveys.db import utcnow
from surveys.errors import DomainError, IllegalTransition
from surveys.models import (
    AccessToken,
    Assignment,
    AssignmentStatus,
    Cycle,
    CycleState,
    OutboxMessage,
    Relationship,
)
from tests import factories as f


def rels(session, cycle, person):
    rows = session.scalars(select(Assignment).where(Assignment.cycle_id == cycle.id)).all()
    return {
        (a.rater.external_id, a.relationship.value)
        for a in rows
        if a.participant.employee_id == person.id
    }


def test_create_freezes_the_bank_and_validates_settings(session):
    _, team = f.team(session, 3)
    cycle = f.cycle(session, team)
    assert cycle.state == CycleState.DRAFT
    assert cycle.bank_snapshot == get_bank("pulse").to_snapshot()
    with pytest.raises(DomainError, match="peer_max must be at least peer_min"):
        f.cycle(session, team, peer_min=5, peer_max=2)
    with pytest.raises(DomainError, match="threshold below 2"):
        f.cycle(session, team, thresholds={"peer": 1})
    with pytest.raises(DomainError, match="has no 'xx' texts"):
        f.cycle(session, team, language="xx")


def test_launch_assigns_self_manager_reports_and_peers(session):
    ceo = f.employee(session, "C", "Ceo", department="Eng")
    boss, team = f.team(session, 4)
    boss.manager = ceo
    f.employee(session, "X1", "Other Dept", department="Sales")
    cycle = f.cycle(session, [boss, *team], peer_max=3)
    report = cycles.launch_cycle(session, cycle, base_url=f.BASE_URL, allow_short=True)
    assert cycle.state == CycleState.OPEN
    assert cycle.pseudonym_key is not None
    member = rels(session, cycle, team[0])
    assert ("T1", "self") in member
    assert ("T0", "manager") in member
    peers = {r for r, rel in member if rel == "peer"}
    assert peers <= {"T2", "T3", "T4"}
    assert len(peers) == 3
    boss_raters = rels(session, cycle, boss)
    assert {("T1", "direct_report"), ("T4", "direct_report"), ("C", "manager")} <= boss_raters
    # Nobody rates themself as a peer, and each rater appears once per participant.
    assert all(not (r == "T0" and rel == "peer") for r, rel in boss_raters)
    assert report.assignments == session.scalar(select(func.count(Assignment.id)))
    assert "Other Dept" not in {r for r, _ in member}


def test_launch_refuses_participants_short_of_peers(session):
    _, team = f.team(session, 2)  # each member has one sibling: below the minimum of 2
    cycle = f.cycle(session, team)
    with pytest.raises(DomainError, match=r"too few peers \(minimum 2\).*T Member 1 \(1\)"):
        cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    assert cycle.state == CycleState.DRAFT
    assert session.scalar(select(func.count(Assignment.id))) == 0
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL, allow_short=True)
    assert cycle.state == CycleState.OPEN


def test_launch_writes_one_email_per_rater_and_stores_only_token_hashes(session):
    boss, team = f.team(session, 4)
    cycle = f.launched(session, team)
    raters = session.scalar(select(func.count(func.distinct(Assignment.rater_id))))
    assert session.scalar(select(func.count(OutboxMessage.id))) == raters
    raws = f.links(session)
    assert len(raws) == session.scalar(select(func.count(Assignment.id)))
    stored = set(session.scalars(select(AccessToken.token_hash)))
    assert not stored & set(raws)  # the raw token is never stored
    assert all(len(raw) >= 43 for raw in raws)  # 32 random bytes, base64url
    boss_mail = session.scalar(select(OutboxMessage).where(OutboxMessage.to_address == boss.email))
    assert boss_mail.body.count("/s/") == 4  # one email listing all four of the boss's surveys
    assert cycle.launched_at is not None


def test_illegal_moves_raise(session):
    _, team = f.team(session, 3)
    cycle = f.cycle(session, team)
    with pytest.raises(IllegalTransition):
        cycles.close_cycle(session, cycle)
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    with pytest.raises(IllegalTransition):
        cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    with pytest.raises(DomainError, match="no nominations"):
        cycles.start_nominations(session, cycle, base_url=f.BASE_URL)


def test_reminders_go_only_to_unanswered_raters_and_respect_interval_and_cap(session):
    _, team = f.team(session, 3)
    cycle = f.launched(session, team, reminder_interval_days=2, max_reminders=2)
    done = session.scalars(select(Assignment).where(Assignment.rater_id == team[0].id)).all()
    for a in done:
        a.status = AssignmentStatus.SUBMITTED
    now = utcnow()
    assert cycles.remind(session, cycle, base_url=f.BASE_URL, now=now) == 0  # just invited
    later = now + timedelta(days=2, minutes=1)
    assert cycles.remind(session, cycle, base_url=f.BASE_URL, now=later) == 3  # boss + 2 members
    reminded = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    assert team[0].email not in {m.to_address for m in reminded}
    assert cycles.remind(session, cycle, base_url=f.BASE_URL, now=later + timedelta(hours=1)) == 0
    assert cycles.remind(session, cycle, base_url=f.BASE_URL, now=later + timedelta(days=2)) == 3
    assert cycles.remind(session, cycle, base_url=f.BASE_URL, now=later + timedelta(days=9)) == 0


def test_schedule_closes_cycles_past_their_close_date(session):
    _, team = f.team(session, 3)
    cycle = f.launched(session, team, close_date=(utcnow() + timedelta(days=1)).date().isoformat())
    result = cycles.run_schedule(session, base_url=f.BASE_URL, now=utcnow() + timedelta(days=3))
    assert result["closed"] == 1
    assert cycle.state == CycleState.CLOSED


def test_hr_adds_and_removes_raters_while_open(session):
    outsider = f.employee(session, "Z", "Zed Outsider", department="Sales")
    _, team = f.team(session, 3)
    cycle = f.launched(session, team)
    added = cycles.invite_rater(
        session, cycle, team[0], outsider, Relationship.OTHER, base_url=f.BASE_URL
    )
    assert added.relationship == Relationship.OTHER
    assert session.scalar(select(OutboxMessage).where(OutboxMessage.to_address == outsider.email))
    with pytest.raises(DomainError, match="already rates"):
        cycles.invite_rater(
            session, cycle, team[0], outsider, Relationship.PEER, base_url=f.BASE_URL
        )
    with pytest.raises(DomainError, match="never rates themself"):
        cycles.invite_rater(
            session, cycle, team[0], team[0], Relationship.PEER, base_url=f.BASE_URL
        )
    assignments.remove_rater(session, added)
    assert ("Z", "other") not in rels(session, cycle, team[0])
    submitted = cycles.find_assignment(session, cycle, team[0], team[1])
    submitted.status = AssignmentStatus.SUBMITTED
    with pytest.raises(DomainError, match="already submitted"):
        assignments.remove_rater(session, submitted)


def test_suggested_peers_prefer_same_manager_then_department(session):
    _boss, team = f.team(session, 2)
    dept_mate = f.employee(session, "D1", "Aaron Dept", department="Eng")
    f.employee(session, "S1", "Sam Sales", department="Sales")
    cycle = f.cycle(session, [team[0]], peer_max=5)
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    peers = [r for r, rel in sorted(rels(session, cycle, team[0])) if rel == "peer"]
    assert peers == ["D1", "T2"]
    assert dept_mate.external_id in peers


def test_a_closed_cycle_cannot_be_launched_again(session):
    _, team = f.team(session, 3)
    cycle = f.launched(session, team)
    cycles.close_cycle(session, cycle)
    with pytest.raises(IllegalTransition, match="only a new cycle launches"):
        cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)


def test_one_failing_cycle_does_not_stop_the_schedule(session, monkeypatch):
    _, team = f.team(session, 3)
    first = f.launched(session, team, reminder_interval_days=1)
    _, others = f.team(session, 3, prefix="U")
    second = f.launched(session, others, reminder_interval_days=1)
    real_remind = cycles.remind

    def flaky(s, cycle, **kw):
        if cycle.id == first.id:
            raise RuntimeError("broken cycle")
        return real_remind(s, cycle, **kw)

    monkeypatch.setattr(cycles, "remind", flaky)
    result = cycles.run_schedule(session, base_url=f.BASE_URL, now=utcnow() + timedelta(days=2))
    reminders = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    assert result["reminded"] > 0
    assert {m.cycle_id for m in reminders} == {second.id}
    assert len(reminders) == result["reminded"]


def test_two_launches_at_once_launch_once(session):
    """A double click or two HR tabs: the second launch waits for the first, then is refused."""
    import threading

    from sqlalchemy.orm import Session

    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers anyway")
    _boss, team = f.team(session, 4)
    cycle_id = f.cycle(session, team).id
    session.commit()
    first = Session(engine)
    cycles.launch_cycle(first, first.get(Cycle, cycle_id), base_url=f.BASE_URL, allow_short=True)
    outcome = {}

    def second_launch():
        with Session(engine) as other:
            try:
                cycles.launch_cycle(
                    other, other.get(Cycle, cycle_id), base_url=f.BASE_URL, allow_short=True
                )
                other.commit()
                outcome["second"] = "launched"
            except IllegalTransition:
                outcome["second"] = "refused"

    thread = threading.Thread(target=second_launch)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive(), "the second launch should wait for the first one's lock"
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == {"second": "refused"}
    session.expire_all()
    emails = session.scalar(select(func.count(OutboxMessage.id)))
    assert emails == len({a.rater_id for a in session.scalars(select(Assignment))})


def _mail_to(session, person) -> str:
    return session.scalar(
        select(OutboxMessage.body).where(OutboxMessage.to_address == person.email)
    )


@pytest.mark.parametrize("show_manager", [True, False])
def test_a_manager_shown_by_name_is_not_promised_anonymity(session, show_manager):
    """With ``show_manager`` the report shows the manager's answers as "Manager": their
    invitation says so, line by line when it lists several surveys; everyone else (and
    the manager of a cycle that pools them) is told their answers are anonymous."""
    boss, team = f.team(session, 4)
    f.launched(session, team, show_manager=show_manager)
    boss_mail = _mail_to(session, boss)
    assert boss_mail.count("/s/") == 4
    assert "one short survey of about 5 minutes" in boss_mail  # the pulse bank
    if show_manager:
        assert boss_mail.count("(as their manager, not anonymous)") == 4
        assert 'except where you answer as a manager (marked "not anonymous" below)' in boss_mail
    else:
        assert "not anonymous" not in boss_mail
        assert "Your answers about colleagues are anonymous" in boss_mail
    for member in team:
        mail = _mail_to(session, member)
        assert "not anonymous" not in mail
        assert "anonymous" in mail or "self-assessment" in mail


def test_a_single_invitation_to_a_named_manager_says_not_anonymous(session):
    boss, team = f.team(session, 3, prefix="S")
    f.launched(session, team[:1], show_manager=True)
    mail = _mail_to(session, boss)
    assert mail.count("/s/") == 1
    assert (
        "As their manager your answers are not anonymous: they appear in S Member 1's report"
        ' under "Manager".'
    ) in mail
    assert "Your answers are anonymous" not in mail
    assert "It takes about 5 minutes." in mail  # the 12-statement pulse bank


def test_invitations_say_how_long_the_bank_takes():
    from surveys.banks import get_bank

    minutes = {k: get_bank(k).minutes_to_answer for k in ("pulse", "leadership")}
    assert minutes["pulse"] == 5
    assert minutes["leadership"] > minutes["pulse"]


def test_a_closed_cycle_never_opens_again(session):
    """Reports of a closed cycle can be previewed; reopening it and previewing again after
    one more submission would give that rater's answers away."""
    _, team = f.team(session, 3)
    cycle = f.launched(session, team)
    cycles.close_cycle(session, cycle)
    with pytest.raises(IllegalTransition):
        cycle.move_to(CycleState.OPEN)
    assert cycle.state == CycleState.CLOSED


def test_a_cycle_whose_close_date_has_passed_does_not_launch(session):
    """The worker would close it (and cancel every invitation) within a minute."""
    _, team = f.team(session, 4)
    cycle = f.cycle(session, team, close_date="2020-01-01")
    with pytest.raises(DomainError, match="the close date 2020-01-01 has passed"):
        cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    assert cycle.state == CycleState.DRAFT
    assert session.scalar(select(func.count(OutboxMessage.id))) == 0
