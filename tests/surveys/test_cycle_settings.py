"""Cycle settings after creation: the schema, editing a draft, HR's email message,
and the set-up checks the console's wizard runs before launch."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from surveys import cycle_setup, cycles
from surveys.banks import get_bank
from surveys.cycles import EMAIL_MESSAGE_MAX, CycleSettingsSchema, SettingsError
from surveys.emails import render_email
from surveys.errors import DomainError
from surveys.models import CycleState, NominationMode, OutboxMessage
from tests import factories as f

TODAY = date(2027, 3, 1)

# -- the schema -------------------------------------------------------------------------


def test_email_message_is_trimmed_blank_is_none_and_length_is_limited():
    schema = CycleSettingsSchema()
    assert schema.load({})["email_message"] is None
    assert schema.load({"email_message": "  \n "})["email_message"] is None
    assert schema.load({"email_message": "  Hi all\n"})["email_message"] == "Hi all"
    assert schema.load({"email_message": "x" * EMAIL_MESSAGE_MAX})["email_message"]
    with pytest.raises(Exception, match="Longer than maximum length 2000"):
        schema.load({"email_message": "x" * (EMAIL_MESSAGE_MAX + 1)})
    assert schema.load({"email_message": "a\r\nb\tc"})["email_message"] == "a\nb\tc"
    with pytest.raises(Exception, match="no control characters"):
        schema.load({"email_message": "nul\x00byte"})


def test_the_close_date_must_come_after_the_nomination_deadline():
    schema = CycleSettingsSchema()
    with pytest.raises(Exception, match="close date must be after the nomination deadline"):
        schema.load({"nomination_deadline": "2027-03-10", "close_date": "2027-03-10"})
    loaded = schema.load({"nomination_deadline": "2027-03-10", "close_date": "2027-03-11"})
    assert loaded["close_date"] == date(2027, 3, 11)


# -- update_cycle_settings --------------------------------------------------------------


def test_update_changes_a_draft_and_reports_what_changed(session):
    _, members = f.team(session, size=3)
    cycle = f.cycle(session, members)
    changed = cycles.update_cycle_settings(
        session,
        cycle,
        {"name": " Renamed ", "peer_min": 1, "thresholds": {"peer": 4}, "email_message": "Hi"},
    )
    assert sorted(changed) == ["email_message", "name", "peer_min", "thresholds"]
    assert cycle.name == "Renamed"
    assert cycle.threshold("peer") == 4
    assert cycle.threshold("others") == 3
    assert cycle.peer_max == 4  # kept from before
    assert cycles.update_cycle_settings(session, cycle, {"peer_min": 1}) == []


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"peer_min": 5}, "peer_max", "peer_max must be at least peer_min"),
        ({"thresholds": {"direct_report": 1}}, "thresholds", "direct_report threshold below 2"),
        ({"language": "fr"}, "language", "no 'fr' texts"),
        ({"name": "  "}, "name", "a cycle needs a name"),
        ({"close_date": "9999-12-31"}, "close_date", "9999-12-31 is more than a year away"),
        (
            {"nomination_deadline": (date.today() + timedelta(days=400)).isoformat()},
            "nomination_deadline",
            "more than a year away; check the year",
        ),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
        ({"max_reminders": 99}, "max_reminders", "less than or equal to 20"),
    ],
)
def test_update_refuses_bad_settings_field_by_field(session, values, field, message):
    _, members = f.team(session, size=3)
    cycle = f.cycle(session, members)
    with pytest.raises(SettingsError) as raised:
        cycles.update_cycle_settings(session, cycle, values)
    assert message in " ".join(raised.value.messages[field])
    assert (cycle.peer_min, cycle.language, cycle.name) == (2, "en", "Test cycle")


def test_only_a_draft_can_be_edited(session):
    _, members = f.team(session, size=4)
    cycle = f.launched(session, members)
    with pytest.raises(DomainError, match="only drafts can be edited"):
        cycles.update_cycle_settings(session, cycle, {"peer_min": 0})
    with pytest.raises(DomainError, match="only draft cycles can be edited"):
        cycle_setup.set_participants(session, cycle, [])
    assert cycle.peer_min == 2


# -- HR's message in the emails ---------------------------------------------------------


def test_without_a_message_the_emails_read_as_before():
    _, body = render_email(
        "invite",
        {"name": "Ann", "participant": "Bo", "role": "peer", "cycle": "Q1", "link": "L"},
    )
    assert body.startswith("Hello Ann,\n\nYou have been asked to give feedback to Bo")


def test_the_message_is_its_own_paragraph_and_never_expanded():
    _, body = render_email(
        "reminder",
        {"name": "Ann", "participant": "Bo", "cycle": "Q1", "message": " Cost $link? \n"},
    )
    assert body.startswith("Hello Ann,\n\nCost $link?\n\nA friendly reminder")


def test_launch_and_reminders_carry_the_message(session):
    _, members = f.team(session, size=4)
    cycle = f.cycle(session, members, email_message="Please be candid.\nThanks, HR")
    cycles.launch_cycle(session, cycle, base_url=f.BASE_URL)
    invites = session.scalars(select(OutboxMessage)).all()
    assert invites
    assert all("Please be candid.\nThanks, HR\n\n" in m.body for m in invites)
    cycles.remind(session, cycle, base_url=f.BASE_URL, now=cycle.launched_at + timedelta(days=9))
    reminders = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    assert reminders
    assert all("Please be candid." in m.body for m in reminders)


def test_nomination_requests_carry_the_message(session):
    _, members = f.team(session, size=3)
    cycle = f.cycle(
        session, members, nomination_mode="participant", email_message="Pick people you trust."
    )
    cycles.start_nominations(session, cycle, base_url=f.BASE_URL)
    bodies = session.scalars(select(OutboxMessage.body)).all()
    assert len(bodies) == 3
    assert all("Pick people you trust." in b for b in bodies)


def test_the_preview_uses_sample_names_and_unsaved_text(session):
    _, members = f.team(session, size=3)
    cycle = f.cycle(session, members, email_message="Saved text", close_date="2027-04-02")
    titles = [p.title for p in cycle_setup.preview_emails(cycle)]
    assert titles == ["Invitation", "Reminder"]
    invitation = cycle_setup.preview_emails(cycle, "Typed <text>")[0]
    assert "Hello Alex Sample,\n\nTyped <text>\n\n" in invitation.body
    assert cycle_setup.SAMPLE_LINK in invitation.body
    assert "Please respond by 2 April 2027." in invitation.body
    cycle.nomination_mode = NominationMode.PARTICIPANT
    assert cycle_setup.preview_emails(cycle)[0].title == "Nomination request"


# -- participants -----------------------------------------------------------------------


def test_set_participants_replaces_the_list_and_skips_inactive_people(session):
    _, eng = f.team(session, size=3, department="Eng", prefix="E")
    _boss, sales = f.team(session, size=2, department="Sales", prefix="S")
    cycle = f.cycle(session, eng)
    sales[1].active = False
    assert cycle_setup.set_participants(session, cycle, [eng[0], *sales]) == 2
    assert {p.employee_id for p in cycle.participants} == {eng[0].id, sales[0].id}
    assert cycle_setup.departments(session) == ["Eng", "Sales"]


def test_participant_scope_is_recognised_when_the_step_reopens(session):
    _, eng = f.team(session, size=3, department="Eng", prefix="E")
    sales_boss, sales = f.team(session, size=2, department="Sales", prefix="S")
    cycle = f.cycle(session, [])
    assert cycle_setup.participant_scope(session, cycle) == ("all", None)
    cycle_setup.set_participants(session, cycle, [sales_boss, *sales])
    assert cycle_setup.participant_scope(session, cycle) == ("department", "Sales")
    cycle_setup.set_participants(session, cycle, eng[:2])
    assert cycle_setup.participant_scope(session, cycle) == ("list", None)
    cycle_setup.set_participants(session, cycle, cycle_setup.active_employees(session))
    assert cycle_setup.participant_scope(session, cycle) == ("all", None)


def test_change_bank_refreezes_the_snapshot_and_checks_the_language(session):
    cycle = f.cycle(session, [])
    assert cycle_setup.change_bank(session, cycle, get_bank("leadership"), "de") == [
        "bank",
        "language",
    ]
    assert cycle.bank_snapshot["key"] == "leadership"
    assert cycle.language == "de"
    with pytest.raises(SettingsError, match="no 'xx' texts"):
        cycle_setup.change_bank(session, cycle, get_bank("pulse"), "xx")


# -- the review before launch -----------------------------------------------------------


def test_a_ready_draft_has_no_problems(session):
    _, members = f.team(session, size=4)
    cycle = f.cycle(session, members, close_date="2027-03-20")
    review = cycle_setup.review_cycle(session, cycle, today=TODAY)
    assert review.ok
    assert review.problems == []
    assert review.short == []
    # each member: self + manager + 3 peers (capped at peer_max 4)
    assert review.surveys == 4 * 5


def test_the_review_lists_every_problem(session):
    cycle = f.cycle(
        session,
        [],
        nomination_mode="participant",
        nomination_deadline="2027-02-27",
        close_date="2027-03-01",
    )
    review = cycle_setup.review_cycle(session, cycle, today=TODAY)
    assert review.problems == [
        "Choose at least one participant.",
        "The close date must be in the future.",
        "The nomination deadline must be in the future.",
    ]
    cycle.close_date = cycle.nomination_deadline = None
    problems = cycle_setup.review_cycle(session, cycle, today=TODAY).problems
    assert "Set a close date (the date in every invitation)." in problems
    assert "Set a nomination deadline (participants nominate before it)." in problems


def test_the_review_warns_about_short_peers_inactive_people_and_hidden_peer_groups(session):
    boss, members = f.team(session, size=3)
    cycle = f.cycle(session, [boss, *members], peer_min=2, peer_max=2, close_date="2027-04-01")
    members[2].active = False
    review = cycle_setup.review_cycle(session, cycle, today=TODAY)
    assert review.ok
    assert review.short == [("T Boss", 0), ("T Member 1", 1), ("T Member 2", 1)]
    assert "T Member 3 is no longer active and will be skipped." in review.warnings
    assert any("peer feedback will always be folded" in w for w in review.warnings)


def test_in_nomination_mode_anyone_outside_the_own_line_can_be_a_peer(session):
    boss, _members = f.team(session, size=2)
    f.employee(session, "X1", "Outsider", department="Other")
    cycle = f.cycle(
        session,
        [boss],
        nomination_mode="participant",
        peer_min=2,
        nomination_deadline="2027-03-05",
        close_date="2027-03-20",
    )
    review = cycle_setup.review_cycle(session, cycle, today=TODAY)
    assert review.short == [("T Boss", 1)]  # only the outsider: the others report to them


def test_a_launched_cycle_is_not_reviewable_for_launch(session):
    _, members = f.team(session, size=4)
    cycle = f.launched(session, members, close_date="2027-03-20")
    assert cycle.state == CycleState.OPEN
    review = cycle_setup.review_cycle(session, cycle, today=TODAY)
    assert "only a draft can be launched" in review.problems[0]


@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"peer_min": 3, "peer_max": 4}, set()),
        ({"peer_min": 2, "peer_max": 4}, {"as few as 2 peers"}),
        ({"peer_min": 3, "peer_max": 4, "thresholds": {"peer": 2}}, {"threshold of 2"}),
        ({"peer_min": 2, "peer_max": 2}, {"always be folded"}),
    ],
)
def test_the_review_warns_where_the_peer_minimum_or_a_threshold_is_low(session, settings, warned):
    _, members = f.team(session, size=6)
    cycle = f.cycle(session, members, close_date="2027-04-01", **settings)
    warnings = " ".join(cycle_setup.review_cycle(session, cycle, today=TODAY).warnings)
    checks = {"as few as 2 peers", "threshold of 2", "always be folded"}
    assert {c for c in checks if c in warnings} == warned
