"""Pages reached from emailed links, no login: surveys, nominations, approvals."""

from flask import Blueprint

from webapp import throttle

bp = Blueprint("rater", __name__)
bp.register_error_handler(404, throttle.link_not_found)  # misses spend a guessing budget

from webapp.rater import nominations, routes  # noqa: E402, F401  (registers the views)
