"""Parallel batch rendering: two worker processes, per-participant failures, re-run skips,
and the watchdog: a report that hangs or kills its worker fails alone."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from surveys import cycles
from surveys.models import Participant
from tests.surveys.test_reports import build_cycle
from webapp.extensions import db
from webapp.reports import batch

FAIL_NAME_MARK = "render-must-fail"


def failing_for_marked(job: batch.Job) -> None:
    """Job function run inside a worker: the participant named with the mark fails there."""
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
    cycles.close_cycle(session, cycle)
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
        pdf = tmp_path / f"report-{p.employee.external_id}.pdf"
        if p.id == bad.id:
            assert not pdf.exists()
            continue
        reader = PdfReader(io.BytesIO(pdf.read_bytes()))
        assert len(reader.pages) >= 1
        assert f"Feedback report for {p.employee.name}" in reader.pages[0].extract_text()
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
    cycles.close_cycle(session, cycle)
    session.commit()
    args = ["reports", "render", "--cycle", str(cycle.id), "--out", str(tmp_path)]
    first = runner.invoke(args=[*args, "--workers", "2", "--restart-every", "1", "--timeout", "60"])
    assert first.exit_code == 0, first.output
    assert "2 written, 0 unchanged, 0 failed" in first.output
    again = runner.invoke(args=[*args, "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "0 written, 2 unchanged, 0 failed" in again.output
    refused = runner.invoke(args=[*args, "--timeout", "0"])
    assert refused.exit_code == 2
    assert "--timeout" in refused.output


def test_a_changed_stylesheet_invalidates_the_fingerprint(app):
    from webapp.reports.render import content_hash

    with app.app_context():
        assert content_hash("<p>x</p>", "a {}") != content_hash("<p>x</p>", "b {}")
        assert content_hash("<p>x</p>") == content_hash("<p>x</p>")


# -- the watchdog ----------------------------------------------------------------------------
# Workers are forked, so what a test patches in this process before the batch starts is
# what the workers run; job functions need not even be importable.

#: init_worker's arguments without an app: no static files, an empty stylesheet.
BARE_INIT = ("/nonexistent-static", "/static", "")


def _jobs(folder: Path, count: int) -> list[batch.Job]:
    return [
        batch.Job(k, f"person {k}", "<p>x</p>", f"digest-{k}", str(folder / f"p{k}.pdf"))
        for k in range(1, count + 1)
    ]


def _pid_writer(misbehave=None):
    """Job function writing the worker's pid as the "PDF"; ``misbehave(job)`` runs first."""

    def job_fn(job: batch.Job) -> None:
        if misbehave is not None:
            misbehave(job)
        batch.write_pdf(Path(job.target), str(os.getpid()).encode(), job.digest)

    return job_fn


def _run_jobs(jobs, job_fn, **kwargs):
    outcomes: list[tuple[int | None, str | None]] = []
    batch.run_jobs(
        jobs,
        BARE_INIT,
        job_fn=job_fn,
        record=lambda job, error: outcomes.append((job and job.participant_id, error)),
        **kwargs,
    )
    return dict(outcomes)


def test_a_hanging_report_is_stopped_after_the_timeout_and_the_rest_go_on(tmp_path):
    def hang_on_2(job):
        if job.participant_id == 2:
            Path(job.target).with_suffix(".pdf.part").write_bytes(b"half a PDF")
            time.sleep(600)

    started = time.monotonic()
    outcomes = _run_jobs(_jobs(tmp_path, 3), _pid_writer(hang_on_2), workers=1, timeout=3)
    assert time.monotonic() - started < 60
    assert [outcomes[1], outcomes[3]] == [None, None]
    assert outcomes[2] == "Timeout: timed out after 3 s; its worker was stopped"
    assert not (tmp_path / "p2.pdf").exists()
    assert not (tmp_path / "p2.pdf.part").exists()  # the stopped worker's half-written file
    # One worker: report 3 was rendered by a fresh one replacing the stopped worker.
    pid1, pid3 = ((tmp_path / f"p{k}.pdf").read_text() for k in (1, 3))
    assert pid1 != pid3


@pytest.mark.parametrize(
    ("die", "reason"),
    [
        (lambda: os._exit(3), "(exit code 3)"),
        (lambda: os.kill(os.getpid(), signal.SIGKILL), "(killed by SIGKILL)"),
    ],
    ids=["os._exit", "SIGKILL"],
)
def test_a_report_that_kills_its_worker_fails_alone(tmp_path, die, reason):
    def die_on_2(job):
        if job.participant_id == 2:
            die()

    outcomes = _run_jobs(_jobs(tmp_path, 4), _pid_writer(die_on_2), workers=2, timeout=60)
    assert outcomes[2] == (f"WorkerDied: the worker process rendering this report died {reason}")
    assert [outcomes[k] for k in (1, 3, 4)] == [None, None, None]
    assert sorted(p.name for p in tmp_path.glob("*.pdf")) == ["p1.pdf", "p3.pdf", "p4.pdf"]


def test_workers_are_replaced_every_n_reports(tmp_path):
    outcomes = _run_jobs(_jobs(tmp_path, 6), _pid_writer(), workers=1, restart_every=2)
    assert set(outcomes.values()) == {None}
    pids = [(tmp_path / f"p{k}.pdf").read_text() for k in range(1, 7)]
    # Two reports per worker process, then a fresh process.
    assert pids[0::2] == pids[1::2]
    assert len(set(pids)) == 3
    assert str(os.getpid()) not in pids


def test_skipped_and_failed_preparations_pass_through_in_order(tmp_path):
    jobs = [None, *_jobs(tmp_path, 2), None]
    seen: list[int | None] = []
    batch.run_jobs(
        jobs,
        BARE_INIT,
        workers=2,
        job_fn=_pid_writer(),
        record=lambda job, error: seen.append(job and job.participant_id),
    )
    assert sorted(seen, key=str) == sorted([None, 1, 2, None], key=str)


def test_a_hanging_render_fails_that_participant_of_the_cycle_only(
    app, session, tmp_path, monkeypatch
):
    """End to end through ``render_cycle`` and the real job function: WeasyPrint hangs."""
    import webapp.pdf

    cycle, _ = build_cycle(session, participants=3)
    cycles.close_cycle(session, cycle)
    participants = session.scalars(
        select(Participant).where(Participant.cycle_id == cycle.id).order_by(Participant.id)
    ).all()
    stuck = participants[0]
    stuck.employee.name = "Stuck Renderer"
    session.commit()
    real = webapp.pdf.render_pdf

    def slow_for_stuck(html, *args, **kwargs):
        if "Stuck Renderer" in html:
            time.sleep(600)
        return real(html, *args, **kwargs)

    monkeypatch.setattr(webapp.pdf, "render_pdf", slow_for_stuck)
    result = _render(app, cycle, tmp_path, timeout=8)
    [(pid, name, error)] = result.failures
    assert (pid, name) == (stuck.id, "Stuck Renderer")
    assert error == "Timeout: timed out after 8 s; its worker was stopped"
    assert sorted(result.rendered) == sorted(p.id for p in participants[1:])
    assert not (tmp_path / f"report-{stuck.employee.external_id}.pdf").exists()

    # Fixed: the re-run renders only the one that failed.
    monkeypatch.setattr(webapp.pdf, "render_pdf", real)
    again = _render(app, cycle, tmp_path)
    assert again.rendered == [stuck.id]
    assert sorted(again.skipped) == sorted(p.id for p in participants[1:])


def test_pdf_names_follow_the_employee_id_and_stay_safe_and_distinct():
    used: set[str] = set()
    assert batch.pdf_name("E001", 7, used) == "report-E001.pdf"
    assert batch.pdf_name("../etc/x y", 8, used) == "report-.._etc_x_y.pdf"
    assert batch.pdf_name("e001", 9, used) == "report-e001-9.pdf"  # same file on macOS/Windows
    names = [batch.pdf_name(e, p, used) for e, p in (("a_b-3", 1), ("a_b", 2), ("a/b", 3))]
    names += [batch.pdf_name(e, p, used) for e, p in (("ab-3", 4), ("AB", 3), ("ab", 3))]
    assert len({n.lower() for n in names}) == len(names)
