"""Development-only pages: the outbox, so links can be clicked without an SMTP server."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from surveys.models import OutboxMessage
from webapp.extensions import db

bp = Blueprint("dev", __name__, url_prefix="/dev")

#: The pages show every emailed link. A server started without FEEDBACK360_ENV=production
#: (a forgotten staging box) must not hand them to the network: only this machine sees them.
LOCAL = frozenset({"127.0.0.1", "::1"})


@bp.before_request
def _this_machine_only() -> None:
    if request.remote_addr not in LOCAL:
        abort(404)


@bp.get("/outbox")
def outbox():
    messages = db.session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
    ).all()
    return render_template("dev/outbox.html", messages=messages)
