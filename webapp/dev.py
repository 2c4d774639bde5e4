"""Development-only pages: the outbox, so links can be clicked without an SMTP server."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from surveys.models import OutboxMessage
from webapp.extensions import db

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/outbox")
def outbox():
    messages = db.session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
    ).all()
    return render_template("dev/outbox.html", messages=messages)
