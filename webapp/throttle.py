"""Slowing down guessing: of emailed links, and of API tokens.

Links carry 256-bit tokens, so guessing one is hopeless; still, a client that keeps
asking for links that don't exist is doing nothing else, and each miss costs a database
lookup. Each miss (a 404 on a survey, nomination, approval or report link) spends one
unit of a budget per client address (``LINK_GUESS_LIMIT``); once it is spent, further
misses get 429 instead of 404 until the window moves on. API tokens get the same
treatment (``API_TOKEN_GUESS_LIMIT``): the API's own limit is per token, so a client
trying one wrong token after another would otherwise start afresh with each guess.

Only misses are counted and only misses are refused: a valid link or token always
works, even from an address that has spent its budget (behind a proxy without
``PROXY_HOPS`` every rater shares one address, and stale links must not lock them out).
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_limiter.util import get_remote_address
from limits import parse

from webapp.extensions import limiter

#: Default budgets per client address.
LINK_GUESS_LIMIT = "60 per 10 minutes"
API_TOKEN_GUESS_LIMIT = "60 per 10 minutes"  # noqa: S105 - a rate, not a secret


def spend(kind: str, default: str) -> bool:
    """Count one miss of ``kind`` for this client; ``False`` once its budget is spent."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return True
    setting = f"{kind.upper().replace('-', '_')}_GUESS_LIMIT"
    limit = parse(current_app.config.get(setting, default))
    return limiter.limiter.hit(limit, f"{kind}-guessing", get_remote_address())


def link_not_found(error):
    """404 handler of the link blueprints: the not-found page, or 429 once over budget."""
    if not spend("link", LINK_GUESS_LIMIT):
        return render_template("error.html", code=429, title="Too many requests"), 429
    return render_template("error.html", code=404, title="Page not found"), 404
