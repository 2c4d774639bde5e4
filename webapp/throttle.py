"""Slowing down link guessing.

Emailed links carry 256-bit tokens, so guessing one is hopeless; still, a client that
keeps asking for links that don't exist is doing nothing else, and each miss costs a
database lookup. Misses (404s) on every link page (survey, nomination, approval, report)
share one budget per client address; once spent, that address gets 429 on those pages
until the window moves on. Valid links cost nothing.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

from webapp.extensions import limiter

#: Default budget of unknown-link requests per client address (``LINK_GUESS_LIMIT``).
LINK_GUESS_LIMIT = "60 per 10 minutes"
LINK_BLUEPRINTS = ("rater", "report_links")


def _limit() -> str:
    return current_app.config.get("LINK_GUESS_LIMIT", LINK_GUESS_LIMIT)


def _missed(response: Response) -> bool:
    return response.status_code == 404


def init_app(app: Flask) -> None:
    shared = limiter.shared_limit(_limit, scope="link-guessing", deduct_when=_missed)
    for name in LINK_BLUEPRINTS:
        shared(app.blueprints[name])
