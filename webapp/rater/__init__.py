"""Pages reached from emailed links, no login: surveys, nominations, approvals."""

from flask import Blueprint

bp = Blueprint("rater", __name__)

from webapp.rater import nominations, routes  # noqa: E402, F401  (registers the views)
