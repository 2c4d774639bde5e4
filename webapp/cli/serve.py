"""``feedback360 serve``: the web app, with an embedded background worker for local use."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import BaseWSGIServer, make_server

from webapp import jobs
from webapp.cli.worker import describe_mail, setup_logging
from webapp.security import RedactingRequestHandler


def start_embedded_worker(threads: int):
    """Start a Huey consumer in background threads of this process, or None if the
    queue runs tasks inline (QUEUE_URL=memory://). Stop it with ``.stop(graceful=True)``."""
    if jobs.huey.immediate:
        return None
    consumer = jobs.create_consumer(workers=threads, embedded=True)
    consumer.start()
    return consumer


def build_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` (port 0 picks a free one)."""
    return make_server(host, port, app, threaded=True, request_handler=RedactingRequestHandler)


#: Threads per gunicorn worker process (gthread).
THREADS_PER_WORKER = 4


def gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    """The gunicorn command line for ``serve --workers N``.

    Each gunicorn process is a bare ``create_app()``: no embedded Huey consumer (that is
    only started by the werkzeug path below), so N web processes never mean N workers;
    ``feedback360 worker`` runs separately. Logs go through :class:`webapp.logs.GunicornLogger`
    (LOG_FORMAT), and request lines come from the app itself, as under werkzeug.

    Threaded workers (gthread) keep connections alive and let a slow client wait without
    holding a whole process. Their heartbeat file goes to /dev/shm where it exists: on a
    disk-backed /tmp, touching it every second costs a few per cent of the CPU under load.
    """
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    argv += ["--worker-class", "gthread", "--threads", str(THREADS_PER_WORKER)]
    shm = "/dev/shm"  # noqa: S108 - a directory for gunicorn's own mkstemp files
    if Path(shm).is_dir():
        argv += ["--worker-tmp-dir", shm]
    argv += ["--bind", f"{host}:{port}", "--logger-class", "webapp.logs.GunicornLogger"]
    return [*argv, "webapp:create_app()"]


def _exec_gunicorn(host: str, port: int, workers: int) -> None:
    if importlib.util.find_spec("gunicorn") is None:
        raise click.ClickException(
            "--workers above 1 runs gunicorn, which is not installed (pip install gunicorn)"
        )
    click.echo(
        f"Starting gunicorn with {workers} processes on http://{host}:{port}/ — run"
        " `feedback360 worker` alongside for email and reminders.",
        err=True,
    )
    argv = gunicorn_argv(host, port, workers)
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Don't embed a worker (one runs separately: `feedback360 worker`).",
)
@click.option(
    "--worker-threads",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Threads of the embedded worker.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Web processes. Above 1 runs gunicorn (if installed) and embeds no worker.",
)
@with_appcontext
def command(host: str, port: int, no_worker: bool, worker_threads: int, workers: int) -> None:
    """Run the web app, with a background worker in the same process, until Ctrl-C.

    The embedded worker sends the outbox (MAIL_URL) and runs the minute tick
    (reminders, closing cycles), so `make run` needs nothing else. The server is
    werkzeug's threaded one, meant for local use. In production run the app under
    gunicorn (`serve --workers 4`, or gunicorn 'webapp:create_app()') and separate
    `feedback360 worker` processes with QUEUE_URL=redis://….
    """
    if workers > 1:
        _exec_gunicorn(host, port, workers)
        return
    setup_logging()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    server = build_server(app, host, port)
    consumer = None if no_worker else start_embedded_worker(worker_threads)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display only
    url = f"http://{shown}:{server.server_port}"
    click.echo(f"feedback360 on {url}/  (Ctrl-C stops)")
    if app.config["DEV_PAGES"]:
        click.echo(f"  emails written so far: {url}/dev/outbox")
    if app.config["BASE_URL"] != url:
        click.echo(f"  links in emails point at BASE_URL={app.config['BASE_URL']}")
    if consumer is not None:
        click.echo(f"  background worker: {worker_threads} thread(s), {describe_mail()}")
    elif jobs.huey.immediate:
        click.echo(f"  jobs run inline (QUEUE_URL=memory://), {describe_mail()}")
    else:
        click.echo("  no background worker: run `feedback360 worker` for email and reminders")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)  # stop cleanly under supervisors
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopping…", err=True)
    finally:
        server.server_close()
        if consumer is not None:
            consumer.stop(graceful=True)
