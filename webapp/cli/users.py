"""``feedback360 users``: HR console accounts (the console manages them later too)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from surveys import audit
from surveys.accounts import AccountError, create_user, list_users
from surveys.models import UserRole
from webapp.extensions import db

command = AppGroup(
    "users",
    help="HR console accounts. Participants and raters never need one.\n\n"
    "\b\nTypical use:\n"
    "  feedback360 users create ana@example.com --name 'Ana Lima' --admin\n"
    "  feedback360 users list",
)


@command.command(
    "create",
    help="Create an account for EMAIL; asks for the password twice (at least 12 characters).\n\n"
    "Role hr by default (cycles, people, reports); --admin also manages accounts. "
    "With --password-stdin the first line of standard input is the password (for scripts; "
    "never put a password on the command line).",
)
@click.argument("email")
@click.option("--name", required=True, help="The person's name, shown in the console.")
@click.option("--admin", "is_admin", is_flag=True, help="Role admin instead of hr.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def create_command(
    ctx: click.Context, email: str, name: str, is_admin: bool, password_stdin: bool
) -> None:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    role = UserRole.ADMIN if is_admin else UserRole.HR
    try:
        user = create_user(db.session, email, name, password, role)
        audit.record(
            db.session,
            audit.COMMAND_LINE,
            "user.create",
            f"user:{user.email}",
            {"role": role.value},
        )
        db.session.commit()
    except AccountError as error:
        db.session.rollback()
        click.echo(f"Error: {error}", err=True)
        ctx.exit(1)
    click.echo(f"Created {user.role.value} account {user.email} ({user.name}).")


@command.command("list", help="Show every account: email, name, role, active, last sign-in.")
def list_command() -> None:
    users = list_users(db.session)
    if not users:
        click.echo("No accounts. Create one: feedback360 users create EMAIL --name NAME --admin")
        return
    header = ("EMAIL", "NAME", "ROLE", "ACTIVE", "LAST SIGN-IN")
    rows = [
        (
            u.email,
            u.name,
            u.role.value,
            "yes" if u.active else "no",
            u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never",
        )
        for u in users
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
