"""Configuration: the only module that reads the environment (DESIGN §9)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

DEV_SECRET = "dev-only-not-secret"  # noqa: S105 - refused outside development


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; start-up stops with this message."""


def from_env(instance_path: str | Path, env: dict[str, str] | None = None) -> dict:
    """Build the Flask config mapping from environment variables."""
    env = dict(os.environ if env is None else env)
    instance = Path(instance_path)
    production = env.get("FEEDBACK360_ENV", "development") == "production"
    config = {
        "ENV_NAME": "production" if production else "development",
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET),
        "SQLALCHEMY_DATABASE_URI": env.get(
            "DATABASE_URL", f"sqlite:///{instance / 'feedback360.db'}"
        ),
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
        "DEV_PAGES": not production,
    }
    if production:
        _check_production(config)
    return config


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
