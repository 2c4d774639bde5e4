"""The Flask application: survey pages for raters, console for HR, CLI, jobs."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from webapp.config import from_env
from webapp.extensions import csrf, db, limiter, login_manager, migrate

#: Alembic scripts ship inside the package, so ``pip install .`` can still ``db upgrade``.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseInt(IntegerConverter):
    """``<int:…>`` in URLs: ids fit the database's 32-bit integers, larger ones are 404."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """Application factory; ``config`` overrides the environment (tests pass it)."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(from_env(app.instance_path))
    if config:
        app.config.update(config)
    app.url_map.converters["int"] = DatabaseInt
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    from webapp import jobs

    jobs.init_app(app)

    from webapp import health, logs

    health.init_app(app)  # /healthz
    logs.init_app(app)  # a request id and one log line per request

    from webapp import admin, api, errors, rater, reports, security

    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(admin.bp)
    app.register_blueprint(rater.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(reports.links)
    api.init_app(app)  # /api/v1 and its OpenAPI document
    if app.config["DEV_PAGES"]:
        from webapp import dev

        app.register_blueprint(dev.bp)

    if app.config.get("PROXY_HOPS"):
        # Behind a load balancer: the client's address (rate limits) and https come from
        # its X-Forwarded-* headers, trusted for exactly this many hops.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from webapp.cli import register_commands

    register_commands(app)
    return app
