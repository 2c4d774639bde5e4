"""Feedback reports: the HTML page and its PDF (DESIGN §7)."""

from flask import Blueprint

from webapp import throttle

bp = Blueprint("reports", __name__, url_prefix="/reports")
#: The participant's links (/r/<token>). HR's preview lives in the console (login required).
links = Blueprint("report_links", __name__)
links.register_error_handler(404, throttle.link_not_found)  # misses spend a guessing budget

from webapp.reports import routes  # noqa: E402, F401  (registers the views)
