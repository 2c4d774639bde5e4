"""Error pages that never leak detail (a forged token gets the same 404 as a typo)."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request


def init_app(app: Flask) -> None:
    for code, title in (
        (400, "Bad request"),
        (403, "Not allowed"),
        (404, "Page not found"),
        (405, "Not allowed"),
        (413, "Too large"),
        (429, "Too many requests"),
        (500, "Something went wrong"),
    ):
        app.register_error_handler(code, _handler(code, title))


def _handler(code: int, title: str):
    def handle(error):
        # The console's pages keep its layout and speak to HR, not to a rater.
        # (By path: a mistyped console address matches no route, so it has no blueprint.)
        console = request.path == "/admin" or request.path.startswith("/admin/")
        page = "admin/error.html" if console else "error.html"
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return render_template(page, code=code, title=title, limit_mb=limit / 2**20), code

    return handle
