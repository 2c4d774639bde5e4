"""Render every participant's report PDF of a cycle with a pool of worker processes.

Split of the work (issue 4 item 6):

* **Parent, once per cycle**: ``score_cycle`` (the only cycle-wide, expensive step: doing it
  per worker would repeat it on every worker start); then per participant
  ``build_report`` + the PDF's HTML + its fingerprint (together ~10 ms). A participant
  whose ``.sha256`` stamp matches is skipped before any worker sees it. The parent is
  the only process that touches the database, so no connection crosses a ``fork``.
* **Workers**: HTML in, PDF file out. Each worker starts with one
  :class:`~weasyprint.text.fonts.FontConfiguration`, the report stylesheet parsed once,
  the static-only URL fetcher and ``gc.freeze()`` (see :func:`webapp.pdf.render_pdf`);
  they need no app context, templates or database. ``multiprocessing.Pool`` with
  ``maxtasksperchild`` replaces each worker after ``restart_every`` reports, because
  WeasyPrint's native (Pango/HarfBuzz/cairo-free but still C-side) caches only grow.
* A failing participant (building, rendering or writing) becomes a line in
  :attr:`BatchResult.failures`; the rest go on. PDFs are written to ``.part`` then renamed,
  and the stamp is written last, so an interrupted run never leaves a "fresh" bad file.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from surveys.models import Cycle

__all__ = ["BatchResult", "Job", "init_worker", "render_cycle", "render_job"]


@dataclass(frozen=True)
class Job:
    """One PDF to make: picklable, sent to a worker."""

    participant_id: int
    name: str
    html: str
    digest: str
    target: str


@dataclass
class BatchResult:
    rendered: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    #: (participant id, name, "ErrorType: message")
    failures: list[tuple[int, str, str]] = field(default_factory=list)


# --- worker side -------------------------------------------------------------------------

_worker: dict = {}


def init_worker(
    static_folder: str, static_url_path: str, css: str, *, in_process: bool = False
) -> None:
    """Pool initializer: per-process font configuration, stylesheet and fetcher."""
    import weasyprint

    from webapp.pdf import StaticOnlyFetcher, font_config

    if not in_process:
        font_config.cache_clear()  # never share a forked parent's Pango state
    fc = font_config()
    _worker["fetcher"] = StaticOnlyFetcher(static_folder, static_url_path)
    _worker["stylesheets"] = [weasyprint.CSS(string=css, font_config=fc)]
    gc.collect()
    gc.freeze()


def render_job(job: Job) -> None:
    """Render ``job.html`` to ``job.target`` (default job function)."""
    from webapp.pdf import render_pdf

    pdf = render_pdf(job.html, _worker["fetcher"], _worker["stylesheets"], pause_gc=True)
    write_pdf(Path(job.target), pdf, job.digest)


def write_pdf(target: Path, pdf: bytes, digest: str) -> None:
    partial = target.with_suffix(".pdf.part")
    partial.write_bytes(pdf)
    partial.replace(target)
    target.with_suffix(".sha256").write_text(digest + "\n")


JobFunction = Callable[[Job], None]


def _run(task: tuple[JobFunction, Job]) -> tuple[int, str | None]:
    job_fn, job = task
    try:
        job_fn(job)
    except Exception as exc:  # reported per participant, never fatal to the worker
        return job.participant_id, f"{type(exc).__name__}: {exc}"
    return job.participant_id, None


# --- parent side -------------------------------------------------------------------------


def _lost(done: queue.SimpleQueue, participant_id: int, exc: BaseException) -> None:
    """A task that raised outside :func:`_run` (e.g. its job could not be pickled)."""
    done.put((participant_id, f"{type(exc).__name__}: {exc}"))


def up_to_date(target: Path, digest: str) -> bool:
    stamp = target.with_suffix(".sha256")
    return target.exists() and stamp.exists() and stamp.read_text().strip() == digest


def prepare_jobs(
    session: Session, cycle: Cycle, folder: Path, result: BatchResult
) -> Iterator[Job | None]:
    """Per participant: a :class:`Job`, or ``None`` when skipped or failed (recorded)."""
    from surveys.reports import build_report, score_cycle
    from webapp.reports.render import content_hash, report_html, report_stylesheet_text

    css = report_stylesheet_text()
    scored = score_cycle(session, cycle)
    for participant in list(cycle.participants):
        name = participant.employee.name
        target = folder / f"participant-{participant.id}.pdf"
        try:
            report = build_report(session, participant, cycle_scores=scored)
            html = report_html(report, pdf=True)
            digest = content_hash(html, css)
        except Exception as exc:  # one bad report must not stop the batch
            result.failures.append((participant.id, name, f"{type(exc).__name__}: {exc}"))
            yield None
            continue
        if up_to_date(target, digest):
            result.skipped.append(participant.id)
            yield None
            continue
        yield Job(participant.id, name, html, digest, str(target))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def render_cycle(
    session: Session,
    cycle: Cycle,
    folder: Path,
    *,
    static_folder: str,
    static_url_path: str = "/static",
    workers: int | None = None,
    restart_every: int = 100,
    progress: Callable[[int], None] | None = None,
    job_fn: JobFunction = render_job,
) -> BatchResult:
    """Render the cycle's PDFs into ``folder``; ``progress(n)`` after n more participants.

    ``workers=1`` renders in this process (no pool). ``job_fn`` must be a module-level
    function (it is pickled by reference); tests use it to make one participant fail
    inside a worker process.
    """
    from webapp.reports.render import report_stylesheet_text

    folder.mkdir(parents=True, exist_ok=True)
    workers = workers or default_workers()
    result = BatchResult()
    names: dict[int, str] = {}
    tick = progress or (lambda n: None)

    def record(outcome: tuple[int, str | None]) -> None:
        pid, error = outcome
        if error is None:
            result.rendered.append(pid)
        else:
            result.failures.append((pid, names.get(pid, "?"), error))
        tick(1)

    jobs = prepare_jobs(session, cycle, folder, result)
    init_args = (static_folder, static_url_path, report_stylesheet_text())
    if workers <= 1:
        init_worker(*init_args, in_process=True)
        try:
            for job in jobs:
                if job is None:
                    tick(1)
                else:
                    names[job.participant_id] = job.name
                    record(_run((job_fn, job)))
        finally:
            gc.unfreeze()
        return result

    # Jobs are prepared here, in the main thread (it owns the app context and the database
    # session), and handed out with at most `2 × workers` in flight so the HTML of a whole
    # cycle never sits in memory. fork gives cheap worker (re)starts; it is safe because
    # workers use neither the parent's database connections nor its Pango state.
    done: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()
    in_flight = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(
        workers, initializer=init_worker, initargs=init_args, maxtasksperchild=restart_every
    ) as pool:
        for job in jobs:
            while not done.empty() or in_flight >= 2 * workers:
                record(done.get())
                in_flight -= 1
            if job is None:
                tick(1)
                continue
            names[job.participant_id] = job.name
            pool.apply_async(
                _run,
                ((job_fn, job),),
                callback=done.put,
                error_callback=functools.partial(_lost, done, job.participant_id),
            )
            in_flight += 1
        while in_flight:
            record(done.get())
            in_flight -= 1
    return result
