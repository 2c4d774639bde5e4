"""The HR console under ``/admin/``: sign-in, then cycles and their progress.

Every view requires a signed-in, active account (``hr`` or ``admin``); see ``auth``.
"""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from webapp.admin import (  # noqa: E402, F401  (registers the guard and the views)
    auth,
    banks,
    cycle_actions,
    people,
    release,
    routes,
    setup,
    users,
)
