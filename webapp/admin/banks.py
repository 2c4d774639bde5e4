"""Placeholder; being written."""

from webapp.admin import bp


@bp.get("/banks")
def banks():
    return "coming soon"
