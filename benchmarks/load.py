"""Load (issue 6 targets): survey traffic against gunicorn with 2 workers, loopback only.

For each database (SQLite, and PostgreSQL when reachable), a throw-away organisation of
``--people`` employees gets a launched cycle (leadership bank, 45 items); gunicorn
serves the app with 2 worker processes; ``--clients`` client processes each take their
share of the survey links and, per rater, walk the realistic path: open the survey page,
autosave half the answers, submit all of them. The run is bounded by ``--seconds``.

Afterwards the database is counted: every submission the server accepted (a redirect
after ``action=submit``) must be stored exactly once with all its items, nothing more.

Targets: >= 500 submissions/s on each database, p99 < 100 ms for the survey page, zero
errors. Both the server and the load generator share this machine's cores, so the
figures are a floor for a deployment where they don't.

    python benchmarks/load.py [--db sqlite|postgresql|both] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import flask_migrate
import sqlalchemy as sa

from surveys import cycles
from surveys.banks import get_bank
from surveys.models import Assignment, AssignmentStatus, Employee, Response, ResponseItem
from webapp import create_app
from webapp.cli.serve import gunicorn_argv
from webapp.extensions import db

TARGET_SUBMISSIONS = 500.0
TARGET_P99_MS = 100.0
PG_URL = os.environ.get(
    "BENCH_DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LINK = re.compile(r"/s/([A-Za-z0-9_-]+)")


# -- setting up ----------------------------------------------------------------------------


def _pg_scratch(url: str) -> str | None:
    """A fresh database next to ``url``'s, or None when PostgreSQL is unreachable."""
    name = f"load_feedback360_{os.getpid()}"
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except sa.exc.OperationalError as error:
        print(f"  PostgreSQL skipped: {url} unreachable ({error.orig})")
        return None
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_pg(url: str) -> None:
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _org(people: int) -> list[Employee]:
    """Teams of 8 under managers, managers reporting to directors, one CEO."""
    ceo = Employee(external_id="E0", name="Chief", email="e0@example.com", department="Exec")
    staff = [ceo]
    managers: list[Employee] = []
    n = 1
    while len(staff) < people:
        if len(managers) % 8 == 0:
            director = Employee(
                external_id=f"E{n}", name=f"Director {n}", email=f"e{n}@example.com", manager=ceo
            )
            staff.append(director)
            n += 1
        manager = Employee(
            external_id=f"E{n}", name=f"Manager {n}", email=f"e{n}@example.com", manager=director
        )
        staff.append(manager)
        managers.append(manager)
        n += 1
        for _ in range(8):
            if len(staff) >= people:
                break
            staff.append(
                Employee(
                    external_id=f"E{n}",
                    name=f"Person {n}",
                    email=f"e{n}@example.com",
                    manager=manager,
                    department=f"D{len(managers)}",
                )
            )
            n += 1
    return staff


def prepare(database_url: str, instance: Path, people: int) -> tuple[list[str], list[str], float]:
    """Migrate, launch a cycle; returns (tokens, item ids, seconds the launch took)."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "QUEUE_URL": "memory://",
            "BASE_URL": "http://bench.invalid",
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        staff = _org(people)
        db.session.add_all(staff)
        db.session.flush()
        bank = get_bank("leadership")
        cycle = cycles.create_cycle(
            db.session,
            name="Load",
            bank=bank,
            participants=staff,
            settings={"peer_min": 2, "peer_max": 4},
        )
        started = time.perf_counter()
        cycles.launch_cycle(db.session, cycle, base_url="http://bench.invalid", allow_short=True)
        db.session.commit()
        launch_seconds = time.perf_counter() - started
        bodies = db.session.scalars(sa.text("SELECT body FROM outbox"))
        tokens = [t for body in bodies for t in LINK.findall(body or "")]
        items = [item.id for item in bank.items]
        db.session.remove()
        db.engine.dispose()
    return tokens, items, launch_seconds


# -- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(database_url: str, instance: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "QUEUE_URL": f"sqlite:///{instance / 'queue.db'}",
        "BASE_URL": "http://bench.invalid",
        "SECRET_KEY": "load-benchmark-" + "x" * 32,
        "LOG_LEVEL": "WARNING",
    }
    # Exactly what ``feedback360 serve --workers 2`` runs.
    argv = gunicorn_argv("127.0.0.1", port, workers=2)
    argv[-1:-1] = ["--chdir", str(instance), "--log-level", "warning"]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start within 30 s")


# -- the clients ---------------------------------------------------------------------------


@dataclass
class Tally:
    page_ms: list[float] = field(default_factory=list)
    autosave_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Client:
    """One keep-alive connection with its own cookie jar (one browser)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, body: dict | None = None):
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                text = response.read().decode()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, text


def _timed(tally_list: list[float], fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    tally_list.append((time.perf_counter() - started) * 1000)
    return result


def run_client(port: int, tokens: list[str], items: list[str], stop_at: float, seed: int):
    rng = random.Random(seed)
    tally = Tally()
    for token in tokens:
        if time.time() >= stop_at:
            break
        client = Client(port)
        path = f"/s/{token}"
        status, html = _timed(tally.page_ms, client.request, "GET", path)
        match = CSRF.search(html)
        if status != 200 or not match:
            tally.errors.append(f"GET {status}")
            continue
        answers = {f"r:{item}": str(rng.randint(1, 5)) for item in items}
        half = dict(list(answers.items())[: len(answers) // 2])
        status, _ = _timed(
            tally.autosave_ms,
            client.request,
            "POST",
            path + "/autosave",
            {"csrf_token": match.group(1), **half},
        )
        if status != 200:
            tally.errors.append(f"autosave {status}")
            continue
        form = {"csrf_token": match.group(1), "section": "0", "action": "submit", **answers}
        form["c:strengths"] = "Clear priorities and quick decisions."
        status, _ = _timed(tally.submit_ms, client.request, "POST", path, form)
        if status == 302:
            tally.submitted.append(token)
        else:
            tally.errors.append(f"submit {status}")
        client.conn.close()
    return tally


def _proc_cpu(pid: str) -> float:
    """CPU seconds (user + system) of one process, 0 when it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers(pid: int) -> list[str]:
    """gunicorn's worker processes (Linux); empty when /proc cannot say."""
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _database_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (backends and
    background writers): the database's share of serving the requests."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _proc_cpu(entry.name)
            except OSError:
                continue
    return total


def _server_cpu(pid: int, postgres: bool) -> float:
    cpu = sum(_proc_cpu(child) for child in _workers(pid))
    return cpu + (_database_cpu() if postgres else 0.0)


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- one backend ---------------------------------------------------------------------------


def run(label: str, database_url: str, args: argparse.Namespace) -> bool:
    print(f"== {label}")
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        tokens, items, launch_s = prepare(database_url, instance, args.people)
        print(
            f"  cycle: {args.people} people, {len(tokens)} survey links,"
            f" launched in {launch_s:.1f} s"
        )
        port = _free_port()
        server = start_gunicorn(database_url, instance, port)
        try:
            random.Random(1).shuffle(tokens)
            shares = [tokens[i :: args.clients] for i in range(args.clients)]
            postgres = database_url.startswith("postgresql")
            deadline = time.monotonic() + 30
            while len(_workers(server.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # both workers booted: their start-up is not counted below
            idle_cpu = _server_cpu(server.pid, postgres)
            started = time.time()
            stop_at = started + args.seconds
            with multiprocessing.Pool(args.clients) as pool:
                tallies = pool.starmap(
                    run_client,
                    [(port, share, items, stop_at, i) for i, share in enumerate(shares)],
                )
            elapsed = time.time() - started
            server_cpu = _server_cpu(server.pid, postgres) - idle_cpu
        finally:
            server.terminate()
            server.wait(timeout=30)
        page = [ms for t in tallies for ms in t.page_ms]
        autosave = [ms for t in tallies for ms in t.autosave_ms]
        submit = [ms for t in tallies for ms in t.submit_ms]
        submitted = [tok for t in tallies for tok in t.submitted]
        errors = [e for t in tallies for e in t.errors]
        rate = len(submitted) / elapsed
        requests = len(page) + len(autosave) + len(submit)
        print(f"  {requests} requests in {elapsed:.1f} s ({requests / elapsed:.0f}/s)")
        for name, values in (("survey page", page), ("autosave", autosave), ("submit", submit)):
            print(
                f"  {name:<12} n={len(values):>6}  p50 {statistics.median(values):6.1f} ms"
                f"  p99 {_p(values, 0.99):6.1f} ms"
            )
        ok_rate = rate >= TARGET_SUBMISSIONS
        ok_p99 = _p(page, 0.99) < TARGET_P99_MS
        print(
            f"  submissions: {len(submitted)} = {rate:.0f}/s (target >= {TARGET_SUBMISSIONS:.0f})"
            f" {'ok' if ok_rate else 'NOT MET'}"
        )
        print(
            f"  survey page p99 {_p(page, 0.99):.1f} ms (target < {TARGET_P99_MS:.0f})"
            f" {'ok' if ok_p99 else 'NOT MET'}"
        )
        if submitted and server_cpu > 0:
            who = "2 workers" + (" + PostgreSQL" if database_url.startswith("postgresql") else "")
            print(
                f"  server CPU {server_cpu * 1000 / len(submitted):.1f} ms per submission"
                f" ({who}; 2 cores would serve {2 * len(submitted) / server_cpu:.0f}/s"
                " with no load generator beside them)"
            )
        print(f"  errors: {len(errors)} {sorted(set(errors))[:5]}")
        stored_ok = _count(database_url, len(submitted), len(items))
    return ok_rate and ok_p99 and not errors and stored_ok


def _count(database_url: str, accepted: int, items: int) -> bool:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        responses = conn.scalar(sa.select(sa.func.count()).select_from(Response))
        rows = conn.scalar(sa.select(sa.func.count()).select_from(ResponseItem))
        done = conn.scalar(
            sa.select(sa.func.count())
            .select_from(Assignment)
            .where(Assignment.status == AssignmentStatus.SUBMITTED)
        )
    engine.dispose()
    ok = responses == accepted == done and rows == accepted * items
    verdict = "ok (each once, nothing lost)" if ok else "MISMATCH"
    print(
        f"  stored: {responses} responses, {rows} answers, {done} assignments submitted"
        f" for {accepted} accepted submissions -> {verdict}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--people", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    results = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run("SQLite", f"sqlite:///{Path(tmp) / 'load.db'}", args))
    if args.db in ("postgresql", "both"):
        url = _pg_scratch(PG_URL)
        if url is not None:
            try:
                results.append(run("PostgreSQL", url, args))
            finally:
                _drop_pg(url)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
