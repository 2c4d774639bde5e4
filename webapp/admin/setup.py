"""Placeholder; being written."""

from webapp.admin import bp


@bp.get("/new-cycle")
def new_cycle():
    return "coming soon"
