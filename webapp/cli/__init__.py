"""The ``feedback360`` command: one Flask CLI group, one module per area (DESIGN §8).

Each module in this package exposes ``command``, a click command or group that is
added to the application's CLI under its own name.
"""

from __future__ import annotations

import importlib
import pkgutil

import click
from flask import Flask
from flask.cli import FlaskGroup


def register_commands(app: Flask) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            app.cli.add_command(command)


def _create_app():
    from webapp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """feedback360: anonymous 360-degree feedback surveys.

    Configuration comes from environment variables (DATABASE_URL, QUEUE_URL, MAIL_URL,
    BASE_URL, SECRET_KEY); see the README.
    """
