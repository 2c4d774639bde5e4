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
  they need no app context, templates or database. A worker exits after
  ``restart_every`` reports and a fresh one takes its place, because WeasyPrint's native
  (Pango/HarfBuzz) caches only grow.
* **Watchdog**: the parent gives each report ``timeout`` seconds. A worker that overruns
  is killed, and one that dies (a crash in native code, ``os._exit``, the OOM killer)
  is noticed through its process sentinel; either way that participant becomes a
  failure with the reason, a new worker starts and the rest go on. This is why the pool
  is a few lines of our own rather than :class:`multiprocessing.pool.Pool`, which waits
  forever for a task whose worker died and has no per-task timeout.
* A failing participant (building, rendering or writing) becomes a line in
  :attr:`BatchResult.failures`; the rest go on. PDFs are written to ``.part`` then renamed,
  and the stamp is written last, so an interrupted run never leaves a "fresh" bad file.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from sqlalchemy.orm import Session

from surveys.errors import DomainError
from surveys.models import Cycle, CycleState

__all__ = [
    "BatchResult",
    "Job",
    "init_worker",
    "render_cycle",
    "render_job",
    "run_jobs",
]

#: Seconds one report may take in a worker before the watchdog stops it (a typical
#: report takes well under a second; one with thousands of comments a few seconds).
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Job:
    """One PDF to make, handed to a worker."""

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
    """Worker start-up: per-process font configuration, stylesheet and fetcher."""
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


def _discard_partial(job: Job) -> None:
    """Remove what a worker stopped mid-write left behind (never the previous PDF)."""
    Path(job.target).with_suffix(".pdf.part").unlink(missing_ok=True)


JobFunction = Callable[[Job], None]
#: (participant id, None) when the PDF was written, else (participant id, reason)
Outcome = tuple[int, str | None]


def _run(job_fn: JobFunction, job: Job) -> Outcome:
    try:
        job_fn(job)
    except Exception as exc:  # reported per participant, never fatal to the worker
        return job.participant_id, f"{type(exc).__name__}: {exc}"
    return job.participant_id, None


def _worker_main(
    conn: Connection, init_args: tuple[str, str, str], job_fn: JobFunction, restart_every: int
) -> None:
    """A worker process: render up to ``restart_every`` jobs from ``conn``, then exit."""
    init_worker(*init_args)
    for _ in range(restart_every):
        try:
            job = conn.recv()
        except EOFError:  # the parent went away
            return
        if job is None:
            return
        conn.send(_run(job_fn, job))


# --- the pool, parent side ---------------------------------------------------------------


@dataclass
class _Slot:
    """One worker process and the report it is rendering, if any."""

    process: BaseProcess
    conn: Connection
    job: Job | None = None
    deadline: float = 0.0
    done: int = 0


class _Pool:
    """Worker processes fed one job at a time over a pipe, each job under a deadline."""

    def __init__(
        self,
        init_args: tuple[str, str, str],
        job_fn: JobFunction,
        *,
        restart_every: int,
        timeout: float,
    ) -> None:
        # fork: cheap (re)starts; safe because workers use neither the parent's database
        # connections (they exit with os._exit, so no finaliser touches them) nor its
        # Pango state (init_worker makes a new FontConfiguration).
        self.ctx = multiprocessing.get_context("fork")
        self.args = (init_args, job_fn, restart_every)
        self.restart_every = restart_every
        self.timeout = timeout
        self.idle: list[_Slot] = []
        self.busy: list[_Slot] = []

    def submit(self, job: Job) -> None:
        slot = self.idle.pop() if self.idle else self._start()
        with contextlib.suppress(OSError):  # it died idle or starting: collect() says how
            slot.conn.send(job)
        slot.job, slot.deadline = job, time.monotonic() + self.timeout
        self.busy.append(slot)

    def _start(self) -> _Slot:
        parent_end, child_end = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker_main, args=(child_end, *self.args), daemon=True)
        process.start()
        child_end.close()
        return _Slot(process, parent_end)

    def collect(self) -> list[tuple[Job, str | None]]:
        """Wait for at least one busy worker to finish, die or overrun its deadline."""
        left = min(s.deadline for s in self.busy) - time.monotonic()
        ready = set(wait([w for s in self.busy for w in (s.conn, s.process.sentinel)], left))
        now = time.monotonic()
        finished: list[tuple[Job, str | None]] = []
        for slot in list(self.busy):
            job = slot.job
            assert job is not None
            if slot.conn in ready or slot.process.sentinel in ready:
                outcome = self._receive(slot)
                self.busy.remove(slot)
                if outcome is None:
                    finished.append((job, self._death(slot)))
                    _discard_partial(job)
                    continue
                finished.append((job, outcome[1]))
                slot.job, slot.done = None, slot.done + 1
                if slot.done >= self.restart_every:
                    self._stop(slot)  # it exits by itself: a fresh one starts on demand
                else:
                    self.idle.append(slot)
            elif now >= slot.deadline:
                self.busy.remove(slot)
                self._stop(slot, kill=True)
                reason = f"timed out after {self.timeout:g} s; its worker was stopped"
                finished.append((job, f"Timeout: {reason}"))
                _discard_partial(job)
        return finished

    @staticmethod
    def _receive(slot: _Slot) -> Outcome | None:
        """The worker's answer, or ``None`` when it died without one."""
        try:
            if slot.conn.poll():
                outcome: Outcome = slot.conn.recv()
                return outcome
        except (EOFError, OSError):
            pass
        return None

    def _death(self, slot: _Slot) -> str:
        self._stop(slot, kill=True)
        code = slot.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit code {code}"
        return f"WorkerDied: the worker process rendering this report died ({how})"

    @staticmethod
    def _stop(slot: _Slot, *, kill: bool = False) -> None:
        if kill and slot.process.is_alive():
            slot.process.kill()
        slot.process.join(timeout=10)
        if slot.process.is_alive():  # pragma: no cover - a worker ignoring its last job
            slot.process.kill()
            slot.process.join()
        slot.conn.close()

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones are killed."""
        for slot in self.idle:
            with contextlib.suppress(OSError):
                slot.conn.send(None)
            self._stop(slot)
        for slot in self.busy:
            self._stop(slot, kill=True)
        self.idle, self.busy = [], []


def run_jobs(
    jobs: Iterable[Job | None],
    init_args: tuple[str, str, str],
    *,
    workers: int,
    restart_every: int = 100,
    timeout: float = DEFAULT_TIMEOUT,
    job_fn: JobFunction | None = None,
    record: Callable[[Job | None, str | None], None],
) -> None:
    """Render ``jobs`` with ``workers`` processes; ``record(job, error)`` for each one.

    ``None`` entries (participants skipped or failed while preparing) are passed straight
    to ``record``. Jobs are drawn from ``jobs`` as workers need them, keeping at most
    ``workers`` prepared ahead, so the HTML of a whole cycle never sits in memory and
    ``jobs`` may be a generator using the caller's database session.
    ``init_args`` are :func:`init_worker`'s (static folder, static URL path, CSS).
    """
    pool = _Pool(init_args, job_fn or render_job, restart_every=restart_every, timeout=timeout)
    ahead: deque[Job] = deque()
    source: Iterator[Job | None] = iter(jobs)
    exhausted = False

    def top_up() -> None:
        nonlocal exhausted
        while not exhausted and len(ahead) < workers:
            job = next(source, _END)
            if job is _END:
                exhausted = True
            elif job is None:
                record(None, None)
            else:
                ahead.append(job)  # type: ignore[arg-type]

    try:
        top_up()
        while ahead or pool.busy:
            while ahead and len(pool.busy) < workers:
                pool.submit(ahead.popleft())
            top_up()  # prepare the next ones while the workers render
            if pool.busy:
                for job, error in pool.collect():
                    record(job, error)
    finally:
        pool.close()


_END = object()


# --- the cycle ---------------------------------------------------------------------------


def up_to_date(target: Path, digest: str) -> bool:
    stamp = target.with_suffix(".sha256")
    return target.exists() and stamp.exists() and stamp.read_text().strip() == digest


def pdf_name(employee_id: str, participant_id: int, used: set[str]) -> str:
    """``report-<employee id>.pdf`` (characters unsafe in a file name become ``_``); the
    participant's row id is added if two employee ids come out the same."""
    base = f"report-{_UNSAFE.sub('_', employee_id)}"
    name, k = f"{base}.pdf", 0
    while name.lower() in used:  # case-insensitive file systems too
        k += 1
        name = f"{base}-{participant_id}.pdf" if k == 1 else f"{base}-{participant_id}-{k}.pdf"
    used.add(name.lower())
    return name


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def prepare_jobs(
    session: Session, cycle: Cycle, folder: Path, result: BatchResult
) -> Iterator[Job | None]:
    """Per participant: a :class:`Job`, or ``None`` when skipped or failed (recorded).

    A released cycle's PDFs are its frozen reports (each participant's latest version,
    what they read); a closed cycle's are built as the release will freeze them.
    """
    from surveys.releases import latest_versions
    from surveys.reports import build_report, report_from_json, score_cycle
    from webapp.reports.render import content_hash, report_html, report_stylesheet_text

    css = report_stylesheet_text()
    participants = list(cycle.participants)
    released = cycle.state == CycleState.RELEASED
    scored = None if released else score_cycle(session, cycle)
    versions = latest_versions(session, participants) if released else {}
    used: set[str] = set()
    for participant in participants:
        name = participant.employee.name
        target = folder / pdf_name(participant.employee.external_id, participant.id, used)
        try:
            if scored is not None:
                report = build_report(session, participant, cycle_scores=scored)
            elif (version := versions.get(participant.id)) is not None:
                report = report_from_json(version.data)
            else:
                raise DomainError("no released report")
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


#: Cycles whose reports can be rendered: nobody can answer any more. While a cycle is
#: open, two renders around one more submission would show what that rater said.
RENDERABLE = (CycleState.CLOSED, CycleState.RELEASED)


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
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int], None] | None = None,
    job_fn: JobFunction | None = None,
) -> BatchResult:
    """Render the cycle's PDFs into ``folder``; ``progress(n)`` after n more participants.

    Only a closed or released cycle (DomainError otherwise); see :func:`prepare_jobs`.

    Every report is rendered in a worker process, even with ``workers=1``, so that the
    watchdog (``timeout`` seconds a report) always applies. ``job_fn`` replaces
    :func:`render_job` in the workers (tests use it to make one participant fail there).
    """
    from webapp.reports.render import report_stylesheet_text

    if cycle.state not in RENDERABLE:
        raise DomainError(
            f"cycle {cycle.name!r} is {cycle.state.value}; its reports can be rendered once it"
            " is closed"
        )
    folder.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    tick = progress or (lambda n: None)

    def record(job: Job | None, error: str | None) -> None:
        if job is not None and error is None:
            result.rendered.append(job.participant_id)
        elif job is not None:
            result.failures.append((job.participant_id, job.name, error or "?"))
        tick(1)

    run_jobs(
        prepare_jobs(session, cycle, folder, result),
        (static_folder, static_url_path, report_stylesheet_text()),
        workers=workers or default_workers(),
        restart_every=restart_every,
        timeout=timeout,
        job_fn=job_fn,
        record=record,
    )
    return result
