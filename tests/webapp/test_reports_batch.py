"""Parallel batch rendering: two worker processes, per-participant failures, re-run skips."""

from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import select

from surveys.models import Participant
from tests.surveys.test_reports import build_cycle
from webapp.extensions import db
from webapp.reports import batch

FAIL_NAME_MARK = "render-must-fail"


def failing_for_marked(job: batch.Job) -> None:
    """Job function run inside a worker: the participant named with the mark fails there.

    Monkeypatching does not cross processes; a module-level job function does (it is
    pickled by reference), so this is the test's way into the worker.
    """
    if FAIL_NAME_MARK in job.name:
        raise RuntimeError(f"forced failure in worker pid for {job.participant_id}")
    batch.render_job(job)


def _render(app, cycle, folder, **kwargs):
    return batch.render_cycle(
        db.session,
        cycle,
        folder,
        static_folder=app.static_folder,
        static_url_path=app.static_url_path,
        workers=2,
        restart_every=1,  # every report in a fresh worker: exercises the restarts
        **kwargs,
    )


def test_two_workers_render_valid_pdfs_report_a_failure_and_rerun_skips(app, session, tmp_path):
    cycle, _ = build_cycle(session, participants=3)
    participants = session.scalars(
        select(Participant).where(Participant.cycle_id == cycle.id).order_by(Participant.id)
    ).all()
    assert len(participants) == 3
    bad = participants[1]
    bad.employee.name = f"Bad {FAIL_NAME_MARK}"
    session.commit()

    ticks = []
    result = _render(app, cycle, tmp_path, progress=ticks.append, job_fn=failing_for_marked)
    assert sorted(result.rendered) == sorted(p.id for p in participants if p.id != bad.id)
    assert result.skipped == []
    [(pid, name, error)] = result.failures
    assert (pid, name) == (bad.id, bad.employee.name)
    assert error.startswith("RuntimeError: forced failure")
    assert sum(ticks) == 3
    for p in participants:
        pdf = tmp_path / f"participant-{p.id}.pdf"
        if p.id == bad.id:
            assert not pdf.exists()
            continue
        reader = PdfReader(io.BytesIO(pdf.read_bytes()))
        assert len(reader.pages) >= 1
        assert "Feedback report for" in reader.pages[0].extract_text()
    assert not list(tmp_path.glob("*.part"))

    # Re-run: the two good ones are up to date; the failed one is retried and now works.
    again = _render(app, cycle, tmp_path)
    assert sorted(again.skipped) == sorted(p.id for p in participants if p.id != bad.id)
    assert again.rendered == [bad.id]
    assert again.failures == []
    third = _render(app, cycle, tmp_path)
    assert sorted(third.skipped) == sorted(p.id for p in participants)
    assert third.rendered == third.failures == []


def test_cli_workers_and_restart_options(session, runner, tmp_path):
    cycle, _ = build_cycle(session, participants=2)
    args = ["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    first = runner.invoke(args=[*args, "--workers", "2", "--restart-every", "1"])
    assert first.exit_code == 0, first.output
    assert "2 written, 0 unchanged, 0 failed" in first.output
    again = runner.invoke(args=[*args, "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "0 written, 2 unchanged, 0 failed" in again.output


def test_a_changed_stylesheet_invalidates_the_fingerprint(app):
    from webapp.reports.render import content_hash

    with app.app_context():
        assert content_hash("<p>x</p>", "a {}") != content_hash("<p>x</p>", "b {}")
        assert content_hash("<p>x</p>") == content_hash("<p>x</p>")
