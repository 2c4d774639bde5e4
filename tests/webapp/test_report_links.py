"""The participant's report link: their frozen report and nobody else's; the release CLI."""

from __future__ import annotations

from sqlalchemy import select

from surveys import cycles
from surveys.models import AccessToken, Cycle, CycleState, Participant, ResponseItem, TokenPurpose
from surveys.releases import release_cycle, rerelease_participant
from surveys.reports import build_report
from surveys.tokens import hash_token, issue_token
from tests import factories as f
from tests.surveys.test_releases import late_response
from tests.surveys.test_reports import build_cycle
from tests.webapp.test_reports import pdf_text, visible_text
from webapp.reports.render import report_html


def released(session, participants=1):
    cycle, participant, _ = released_with_a_survey_link(session, participants)
    return cycle, participant


def released_with_a_survey_link(session, participants=1):
    """``released``, and one of its raters' survey links (read before the close erased the
    unsent invitations' bodies)."""
    cycle, participant = build_cycle(session, participants=participants)
    survey = f.links(session, "s")[0]
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL)
    session.commit()
    return cycle, participant, survey


def report_links(session) -> dict[int, str]:
    """participant id -> the raw report token emailed to them."""
    found = {}
    for raw in f.links(session, "r"):
        token = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_token(raw)))
        found[token.participant_id] = raw
    return found


def test_the_link_shows_the_frozen_report_even_after_the_data_changes(session, client):
    _, participant = released(session)
    token = report_links(session)[participant.id]
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"Feedback report for {participant.employee.name}" in visible_text(html)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert f"/r/{token}/report.pdf" in html

    for item in session.scalars(select(ResponseItem)):
        item.value = 1
    session.commit()

    assert client.get(f"/r/{token}").get_data(as_text=True) == html
    # A freshly computed report would have shown the change.
    with client.application.test_request_context():
        recomputed = report_html(
            build_report(session, participant), pdf_url=f"/r/{token}/report.pdf"
        )
    assert recomputed != html


def test_pdf_download(session, client):
    _, participant = released(session)
    token = report_links(session)[participant.id]
    response = client.get(f"/r/{token}/report.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert participant.employee.name in pdf_text(response.data)
    # Named by its cycle (one person keeps each year's apart), in plain ASCII.
    slug = "".join(c if c.isascii() and c.isalnum() else "_" for c in participant.cycle.name)
    expected = "feedback-report-" + "_".join(filter(None, slug.split("_"))) + ".pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="{expected}"'


def test_each_link_opens_only_its_own_report(session, client):
    cycle, _ = released(session, participants=3)
    links = report_links(session)
    assert set(links) == {p.id for p in cycle.participants}
    names = {p.id: p.employee.name for p in cycle.participants}
    for pid, token in links.items():
        text = visible_text(client.get(f"/r/{token}").get_data(as_text=True))
        assert f"Feedback report for {names[pid]}" in text
        for other, name in names.items():
            if other != pid:
                assert name not in text


def test_anything_but_a_report_link_of_a_released_cycle_is_404(session, client):
    _, participant, rating = released_with_a_survey_link(session)
    token = report_links(session)[participant.id]
    for url in (
        "/r/forged-token",
        f"/r/{token[:-1]}",
        f"/r/{token}x/report.pdf",
        f"/r/{rating}",  # a rater's survey link never opens a report
        f"/r/{rating}/report.pdf",
    ):
        assert client.get(url).status_code == 404, url


def test_a_report_link_opens_nothing_before_release(session, client):
    cycle, participant = build_cycle(session)
    cycles.close_cycle(session, cycle)
    raw = issue_token(session, TokenPurpose.REPORT, cycle_id=cycle.id, participant=participant)
    session.commit()
    assert client.get(f"/r/{raw}").status_code == 404
    assert client.get(f"/r/{raw}/report.pdf").status_code == 404


def test_links_work_without_dev_pages_and_show_the_latest_version(app, session, client):
    app.config["DEV_PAGES"] = False
    _, participant = released(session)
    token = report_links(session)[participant.id]

    before = client.get(f"/r/{token}").get_data(as_text=True)
    for value in (1, 1, 1):
        late_response(session, participant, "peer", value)
    rerelease_participant(session, participant, base_url=f.BASE_URL)
    session.commit()
    after = client.get(f"/r/{token}")
    assert after.status_code == 200
    assert after.get_data(as_text=True) != before
    new_token = report_links(session)[participant.id]
    assert new_token != token
    newest = client.get(f"/r/{new_token}").get_data(as_text=True)
    assert newest == after.get_data(as_text=True).replace(token, new_token)


def test_cycles_release_cli(runner, session):
    cycle, _ = build_cycle(session, participants=2)
    refused = runner.invoke(args=["cycles", "release", str(cycle.id)])
    assert refused.exit_code == 1
    assert "is open; it cannot move to released" in refused.output

    assert runner.invoke(args=["cycles", "close", str(cycle.id)]).exit_code == 0
    result = runner.invoke(args=["cycles", "release", str(cycle.id)])
    assert result.exit_code == 0, result.output
    assert f"Cycle {cycle.id} released: 2 reports frozen, 2 emails with report links queued." in (
        result.output
    )
    session.expire_all()
    assert session.get(Cycle, cycle.id).state == CycleState.RELEASED
    assert session.get(Cycle, cycle.id).pseudonym_key is None
    assert len(report_links(session)) == 2
    assert session.scalars(select(Participant)).all()

    help_text = " ".join(runner.invoke(args=["cycles", "release", "--help"]).output.split())
    assert "pseudonym key is destroyed" in help_text
    assert "release" in runner.invoke(args=["cycles", "--help"]).output
