"""Placeholder; being written."""

from webapp.admin import bp


@bp.get("/users")
def users():
    return "coming soon"


@bp.get("/api-tokens")
def api_tokens():
    return "coming soon"


@bp.get("/audit")
def audit():
    return "coming soon"


@bp.get("/account")
def account():
    return "coming soon"
