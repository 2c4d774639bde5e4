"""Placeholder; being written."""

from webapp.admin import bp


@bp.get("/people")
def people():
    return "coming soon"
