"""Report content added for issue 4: version stamp, trend, per-group distributions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from surveys import cycles
from surveys.releases import release_cycle
from tests import factories as f
from tests.surveys.test_report_trend import run_cycle
from tests.surveys.test_reports import build_cycle
from tests.webapp.test_reports import get_report, pdf_text
from tests.webapp.test_reports import visible_text as _visible_text


def visible_text(html: str) -> str:
    """What a reader sees, with runs of white space as one space."""
    return " ".join(_visible_text(html).split())


def test_released_report_shows_its_version_and_date_in_html_and_pdf(session, client):
    cycle, _ = build_cycle(session)
    cycles.close_cycle(session, cycle)
    release_cycle(session, cycle, base_url=f.BASE_URL, now=datetime(2026, 12, 3, 9, tzinfo=UTC))
    session.commit()
    (token,) = f.links(session, "r")

    html = client.get(f"/r/{token}")
    assert html.status_code == 200
    assert "Version 1, released 3 December 2026" in visible_text(html.get_data(as_text=True))
    pdf = client.get(f"/r/{token}/report.pdf")
    assert pdf.status_code == 200
    assert "Version 1, released 3 December 2026" in pdf_text(pdf.data)


def test_a_preview_says_it_is_not_released(session, client):
    _, participant = build_cycle(session)
    html, pdf = get_report(client, participant)
    assert "Preview: not a released version" in html
    assert "Preview: not a released version" in pdf_text(pdf)


def test_group_distributions_are_shown_for_shown_groups(session, client):
    _, participant = build_cycle(session)  # peers answer 2, 3, 4; manager 4
    html, pdf = get_report(client, participant)
    text = visible_text(html)
    assert "Peers 0 · 1 · 1 · 1 · 0" in text
    assert "Manager 0 · 0 · 0 · 1 · 0" in text
    flat = " ".join(pdf_text(pdf).split())
    assert "0 · 1 · 1 · 1 · 0" in flat


def test_pdf_prints_the_answer_counts_under_each_bar(session, client):
    _, participant = build_cycle(session)  # peers answer 2, 3, 4; manager 4
    html, pdf = get_report(client, participant)
    # The browser's bar labels its segments (SVG text, read by the alternative too) …
    assert "Answers from all others: 1 × 2, 1 × 3, 2 × 4" in html
    assert 'class="dist-n">2</text>' in html
    # … the PDF's bar has no numbers: they are a line of text under it, with each group's.
    flat = " ".join(pdf_text(pdf).split())
    assert "All others 0 · 1 · 1 · 2 · 0 Manager 0 · 0 · 0 · 1 · 0 Peers 0 · 1 · 1 · 1 · 0" in flat
    assert "3.2 (n=4)" in flat


def test_no_distribution_of_a_suppressed_group(session, client):
    _, participant = build_cycle(session, peers_answering=2)
    html, _ = get_report(client, participant)
    assert "Peers 0" not in visible_text(html)
    assert 'class="dist-group"><span class="who">Peers' not in html


def test_trend_section_in_html_and_pdf(session, client):
    _, team = f.team(session, 4)
    first, _ = run_cycle(session, team, "Spring 2026", peers=(2, 2, 2))
    _, p2 = run_cycle(
        session,
        team,
        "Autumn 2026",
        peers=(5, 5, 5),
        release=False,
        created_at=first.created_at + timedelta(days=180),
    )
    html, pdf = get_report(client, p2)
    text = visible_text(html)
    assert "Since Spring 2026" in text
    assert "Clear rise" in text
    pdf_words = " ".join(pdf_text(pdf).split())
    assert "Since Spring 2026" in pdf_words
    assert "Clear rise" in pdf_words
    # Each change reads as the difference of the two figures shown beside it.
    import re

    rows = re.findall(
        r'<tr class="trend-[^"]*">\s*<th scope="row">[^<]*</th>\s*<td>([\d.]+)</td>\s*'
        r"<td>([\d.]+)</td>\s*<td>([+-][\d.]+) ",
        html,
    )
    assert rows
    for before, after, change in rows:
        assert f"{float(after) - float(before):+.1f}" == change


def test_first_cycle_has_no_trend_section(session, client):
    _, participant = build_cycle(session)
    html, _ = get_report(client, participant)
    assert "Since " not in visible_text(html)


NOISE = "your view and others' view are within the noise of the numbers"
NO_SELF = "You did not complete a self-assessment"
TOO_FEW = "Too few colleagues' answers can be shown together to compare"


def _answer(session, assignment, value):
    from surveys import responses

    bank = responses.cycle_bank(assignment.cycle)
    responses.save_draft(
        session, assignment, responses.Answers({i.id: value for i in bank.items}, {})
    )
    responses.submit(session, assignment)


def _everyone_answered(session, **settings):
    """The report of T Member 1 (of a team of four) after every rater answered 4."""
    from sqlalchemy import select

    from surveys.models import Assignment
    from surveys.reports import build_report

    _, team = f.team(session, 4)
    participant = f.launched(session, team[:1], **settings).participants[0]
    for a in session.scalars(select(Assignment).where(Assignment.participant_id == participant.id)):
        _answer(session, a, 4)
    return build_report(session, participant)


def test_blind_spots_say_why_nothing_could_be_compared(session, app):
    """ "Within the noise" only where the report shows self next to all others; otherwise
    it says what is missing: the self-assessment, or colleagues' figures."""
    from sqlalchemy import select

    from surveys.models import Assignment, Relationship
    from surveys.reports import build_report
    from webapp.reports.render import report_html

    _, team = f.team(session, 4)
    cycle = f.launched(session, team[:1], peer_min=2, peer_max=2, include_manager=False)
    participant = cycle.participants[0]
    mine = session.scalars(select(Assignment).where(Assignment.participant_id == participant.id))
    by_rel = {}
    for a in mine:
        by_rel.setdefault(a.relationship, []).append(a)

    def gaps_text():
        with app.test_request_context():
            html = report_html(build_report(session, participant))
        return visible_text(html.split('id="gaps"', 1)[1].split("</section>", 1)[0])

    def who_text():
        with app.test_request_context():
            html = report_html(build_report(session, participant))
        return visible_text(html.split('id="who"', 1)[1].split("</section>", 1)[0])

    assert "Too few colleagues answered" not in who_text()  # nobody answered yet
    for a in by_rel[Relationship.PEER]:  # two peers: too few to show
        _answer(session, a, 3)
    assert TOO_FEW not in gaps_text()
    assert NO_SELF in gaps_text()
    assert "so this report shows no scores from colleagues." in who_text()
    _answer(session, by_rel[Relationship.SELF][0], 5)
    text = gaps_text()
    assert TOO_FEW in text
    assert NOISE not in text
    assert NO_SELF not in text
    assert (
        "Too few colleagues answered in each group to show their answers without revealing"
        " who said what, so this report shows your own view only." in who_text()
    )


def test_blind_spots_within_the_noise_where_both_views_are_shown(session, app):
    from surveys.reports import build_report, score_cycle
    from webapp.reports.render import report_html

    cycle = f.generated_cycle(session, 2, size=10, na=0.2)
    scored = score_cycle(session, cycle)
    seen = set()
    for participant in cycle.participants:
        report = build_report(session, participant, cycle_scores=scored)
        with app.test_request_context():
            text = visible_text(report_html(report).split('id="gaps"', 1)[1].split("</section>")[0])
        if report.gaps:
            continue
        if not report.self_done:
            assert NO_SELF in text
            seen.add("no self")
        elif report.self_and_others_shown:
            assert NOISE in text
            seen.add("noise")
        assert (NOISE in text) + (NO_SELF in text) + (TOO_FEW in text) == 1
    assert "noise" in seen


def test_a_report_whose_colleagues_are_all_hidden_says_it_shows_the_managers_view(session, app):
    from webapp.reports.render import report_html

    report = _everyone_answered(session, peer_min=2, peer_max=2, show_manager=True)
    assert report.colleagues_hidden
    assert report.manager_shown
    with app.test_request_context():
        text = visible_text(report_html(report))
    assert "so this report shows your manager's view and your own." in text


def test_a_group_shown_on_its_own_is_not_called_hidden(session):
    """With a stricter "All others" threshold than the peers' one, three peers show as
    Peers while "All others" stays hidden: the report must not say nothing is shown."""
    report = _everyone_answered(
        session, peer_min=3, peer_max=3, include_manager=False, thresholds={"others": 5}
    )
    assert any(g.group == "peer" for g in report.competencies[0].groups)
    assert report.competencies[0].others is None
    assert not report.colleagues_hidden


def test_a_cycle_without_self_assessments_does_not_blame_the_participant(session, app):
    from webapp.reports.render import report_html

    report = _everyone_answered(session, peer_min=3, peer_max=3, include_self=False)
    assert not report.self_asked
    with app.test_request_context():
        text = visible_text(report_html(report))
    assert "This cycle did not include a self-assessment." in text
    assert "This cycle did not include a self-assessment, so there is no view of your own" in text
    assert "You did not complete" not in text
    assert "was not completed" not in text


def test_each_groups_label_heads_its_comments_once(session, client):
    _, participant = build_cycle(session, comments={"peer": "Peer view", "manager": "Boss view"})
    html, pdf = get_report(client, participant)
    comments = html.split('id="comments"', 1)[1]
    assert comments.count('<p class="who">Peers</p>') == 1  # above all three peers' comments
    assert comments.count('<p class="who">Manager</p>') == 1
    assert comments.index("Manager</p>") < comments.index("Boss view") < comments.index("Peers</p>")
    peers = comments.split("Peers</p>", 1)[1].split("</ul>", 1)[0]
    assert peers.count("<li>") == 3
    flat = " ".join(pdf_text(pdf).split())
    assert flat.count("PEERS") == 1
