"""Console views: sign in and out, the cycle dashboard and one cycle's progress."""

from __future__ import annotations

import math
import time

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from surveys import accounts, audit
from surveys.models import Cycle
from surveys.status import cycle_status
from webapp.admin import bp
from webapp.admin.auth import safe_next
from webapp.admin.cycle_actions import cycle_page, load_cycle
from webapp.admin.forms import LoginForm, LogoutForm
from webapp.extensions import db, limiter

#: Failed sign-ins allowed per email and client address before the form locks.
LOGIN_LIMIT = "5 per 15 minutes"
BAD_LOGIN = "That email and password do not match an active account."


def _login_key() -> str:
    email = accounts.normalise_email(request.form.get("email", ""))
    return f"{request.remote_addr}|{email}"


def _login_failed(response) -> bool:
    return bool(g.get("login_failed"))


def _after_login() -> str:
    return safe_next(request.args.get("next")) or url_for(".dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, key_func=_login_key, methods=["POST"], deduct_when=_login_failed)
def login():
    if current_user.is_authenticated:
        return redirect(_after_login())
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            g.login_failed = True  # counted by the limiter after the response
            db.session.rollback()
            return render_template("admin/login.html", form=form, error=BAD_LOGIN)
        audit.record(db.session, user, "account.login", f"user:{user.email}")
        db.session.commit()
        session.clear()  # nothing from before the sign-in survives it
        login_user(user, remember=False)
        session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
        return redirect(_after_login())
    return render_template("admin/login.html", form=form, error=None)


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(error: RateLimitExceeded):
    limit = limiter.current_limit
    # ``window[0]`` is the exact reset time; ``reset_at`` rounds it up by a second.
    seconds = (limit.window[0] - time.time()) if limit is not None else 15 * 60
    minutes = max(1, math.ceil(seconds / 60))
    message = (
        f"Too many failed sign-in attempts. Try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )
    response = render_template("admin/login.html", form=LoginForm(), error=message)
    return response, 429, {"Retry-After": str(max(1, math.ceil(seconds)))}


@bp.post("/logout")
def logout():
    if not LogoutForm().validate_on_submit():
        abort(400)
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for(".login"))


@bp.get("/")
def dashboard():
    # Newest first; one status query per cycle is fine at console scale.
    listed = db.session.scalars(select(Cycle).order_by(Cycle.created_at.desc(), Cycle.id.desc()))
    return render_template(
        "admin/dashboard.html", statuses=[cycle_status(db.session, c) for c in listed]
    )


@bp.get("/cycles/<int:cycle_id>")
def cycle(cycle_id: int):
    html, status_code = cycle_page(load_cycle(cycle_id))
    return html, status_code
