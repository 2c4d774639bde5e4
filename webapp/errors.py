"""Error pages that never leak detail (a forged token gets the same 404 as a typo)."""

from __future__ import annotations

from flask import Flask, render_template


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
        return render_template("error.html", code=code, title=title), code

    return handle
