"""The ``feedback360`` command: one Flask CLI group, one module per area (DESIGN §8).

Each module in this package exposes ``command``, a click command or group that is
added to the application's CLI under its own name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import FlaskGroup

from webapp.config import ConfigError

#: SQLSTATE of "undefined table" (PostgreSQL); SQLite says "no such table".
_UNDEFINED_TABLE = "42P01"


def register_commands(app: Flask) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            app.cli.add_command(command)


def _create_app():
    from webapp import create_app

    return create_app()


@contextmanager
def _plain_errors(*, loading: bool = False) -> Iterator[None]:
    """Mistakes in the setup, said in one line (``Error: …``, exit 1), not a traceback.

    ``loading``: the app is being made, so a missing module is the database driver."""
    try:
        yield
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    except sa.exc.NoSuchModuleError as error:
        raise click.ClickException(f"DATABASE_URL: {error}") from error
    except ModuleNotFoundError as error:
        if not loading:
            raise
        raise click.ClickException(f"DATABASE_URL: {error}") from error
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        orig = error.orig
        if "no such table" in str(orig) or getattr(orig, "sqlstate", None) == _UNDEFINED_TABLE:
            raise click.ClickException(
                "the database has no tables yet (or is older than this version):"
                " run `feedback360 db upgrade` first"
            ) from error
        raise
    except OverflowError as error:  # e.g. an id far beyond any row: SQLite refuses it
        raise click.ClickException(f"a number given is out of range ({error})") from error


class _Group(FlaskGroup):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        with _plain_errors(loading=True):  # loading the app reads the configuration
            return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        with _plain_errors():
            return super().invoke(ctx)


@click.group(cls=_Group, create_app=_create_app, add_version_option=False)
def main() -> None:
    """feedback360: anonymous 360-degree feedback surveys.

    Configuration comes from environment variables (DATABASE_URL, QUEUE_URL, MAIL_URL,
    BASE_URL, SECRET_KEY); see the README.
    """
