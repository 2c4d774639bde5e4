"""Configuration: the only module that reads the environment (DESIGN §9)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

DEV_SECRET = "dev-only-not-secret"  # noqa: S105 - refused outside development
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; start-up stops with this message."""


ENV_NAMES = ("development", "production")


def _is_production(env: dict[str, str]) -> bool:
    """FEEDBACK360_ENV: a typo must not quietly run production as development."""
    name = env.get("FEEDBACK360_ENV", "development").strip().lower() or "development"
    if name not in ENV_NAMES:
        raise ConfigError(f"FEEDBACK360_ENV must be one of {', '.join(ENV_NAMES)}, not {name!r}")
    return name == "production"


def from_env(instance_path: str | Path, env: dict[str, str] | None = None) -> dict:
    """Build the Flask config mapping from environment variables."""
    env = dict(os.environ if env is None else env)
    instance = Path(instance_path)
    production = _is_production(env)
    config = {
        "ENV_NAME": "production" if production else "development",
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET),
        "SQLALCHEMY_DATABASE_URI": env.get(
            "DATABASE_URL", f"sqlite:///{instance / 'feedback360.db'}"
        ),
        #: Check pooled connections before use (a restarted PostgreSQL costs no request),
        #: and keep SQL parameters (names, comments, addresses) out of error messages and logs.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "QUEUE_URL": env.get("QUEUE_URL", f"sqlite:///{instance / 'queue.db'}"),
        "MAIL_URL": env.get("MAIL_URL", ""),
        "MAIL_FROM": env.get("MAIL_FROM", "feedback360 <no-reply@feedback360.local>"),
        "BASE_URL": env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        #: HR console sign-ins last a working day; there is no "remember me".
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        #: Login rate limits; use redis://… when more than one process serves requests.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "WTF_CSRF_TIME_LIMIT": None,  # surveys stay open for hours; the session binds the token
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        #: Requests per API token, and unknown-link requests per client address.
        "API_RATELIMIT": env.get("API_RATELIMIT", "300 per minute"),
        "LINK_GUESS_LIMIT": env.get("LINK_GUESS_LIMIT", "60 per 10 minutes"),
        "API_TOKEN_GUESS_LIMIT": env.get("API_TOKEN_GUESS_LIMIT", "60 per 10 minutes"),
        #: If Redis (the limiter's storage) is down, count in memory per process meanwhile.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "DEV_PAGES": not production,
        **log_settings(env),
        **_outbox_settings(env),
    }
    if production:
        _check_production(config)
    return config


def log_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """LOG_FORMAT (``json`` by default in production, else ``text``) and LOG_LEVEL.

    Separate from :func:`from_env` because gunicorn's logger class needs them before
    any app exists.
    """
    env = dict(os.environ if env is None else env)
    production = _is_production(env)
    fmt = env.get("LOG_FORMAT", "json" if production else "text").strip().lower()
    level = env.get("LOG_LEVEL", "INFO").strip().upper()
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    return {"LOG_FORMAT": fmt, "LOG_LEVEL": level}


def _outbox_settings(env: dict[str, str]) -> dict[str, int]:
    """Whole-number settings: how long a worker's claim on outbox rows lasts, how many
    it claims at once, and how many proxies sit in front of the app."""
    settings = {}
    for name, default, minimum in (
        ("OUTBOX_CLAIM_SECONDS", 600, 1),
        ("OUTBOX_BATCH", 50, 1),
        #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust.
        ("PROXY_HOPS", 0, 0),
    ):
        raw = env.get(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < minimum:
            raise ConfigError(f"{name} must be a whole number of at least {minimum}, not {raw!r}")
        settings[name] = value
    return settings


def _check_production(config: dict) -> None:
    problems = []
    if config["SECRET_KEY"] == DEV_SECRET or len(config["SECRET_KEY"]) < 32:
        problems.append("SECRET_KEY must be set to a random string of at least 32 characters")
    if not config["MAIL_URL"]:
        problems.append("MAIL_URL must point at an SMTP server (smtp://user:pass@host:587)")
    if not config["BASE_URL"].startswith("https://"):
        problems.append("BASE_URL must be the public https:// address used in emailed links")
    if problems:
        raise ConfigError("Unsafe production configuration:\n  - " + "\n  - ".join(problems))
