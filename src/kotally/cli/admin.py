"""`kotally admin …`: the people who sign in to the admin UI (admin.md §1)."""

from __future__ import annotations

import sys

import click

from kotally.admin import service as users
from kotally.admin.passwords import PASSWORD_LENGTH_MIN, check_strength
from kotally.audit import service as audit
from kotally.cli import main
from kotally.cli.common import clock, echo_json, open_session, operator_errors
from kotally.db.models.admin_user import ADMIN_ROLES
from kotally.errors import OperatorError
from kotally.kit.clock import isoformat

_role = click.Choice(ADMIN_ROLES)
_password_stdin = click.option(
    "--password-stdin", is_flag=True, help="read the password from one line of standard input"
)


@main.group()
def admin() -> None:
    """Admin UI users: owner (everything), admin (all but users), viewer (reads only)."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        password = click.prompt(
            f"Password (at least {PASSWORD_LENGTH_MIN} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    try:
        check_strength(password)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from exc
    return password


@admin.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=_role)
@_password_stdin
@operator_errors
def create_user(email: str, role: str, password_stdin: bool) -> None:
    """Create an admin user."""
    password = _password(password_stdin)
    with open_session() as session:
        user = users.create(
            session, clock(), email=email, role=role, password=password, actor=audit.cli_actor()
        )
        email = user.email
    click.echo(f"admin user {email} created ({role})")


@admin.command("list-users")
@operator_errors
def list_users() -> None:
    """List admin users (never their password hashes)."""
    with open_session(write=False) as session:
        rows = [
            {
                "email": u.email,
                "role": u.role,
                "active": u.active,
                "created_at": isoformat(u.created_at),
                "last_sign_in_at": isoformat(u.last_sign_in_at),
            }
            for u in users.list_all(session)
        ]
    echo_json(rows)


@admin.command("set-role")
@click.argument("email")
@click.argument("role", type=_role)
@operator_errors
def set_role(email: str, role: str) -> None:
    """Change a user's role."""
    with open_session() as session:
        user = users.set_role(session, clock(), email, role, actor=audit.cli_actor())
        email = user.email
    click.echo(f"admin user {email} is now {role}")


@admin.command("deactivate-user")
@click.argument("email")
@operator_errors
def deactivate_user(email: str) -> None:
    """Turn a user off and end their sessions."""
    with open_session() as session:
        user = users.deactivate(session, clock(), email, actor=audit.cli_actor())
        email = user.email
    click.echo(f"admin user {email} deactivated")


@admin.command("reset-password")
@click.argument("email")
@_password_stdin
@operator_errors
def reset_password(email: str, password_stdin: bool) -> None:
    """Set a new password; the user's sessions end."""
    password = _password(password_stdin)
    with open_session() as session:
        user = users.reset_password(session, clock(), email, password, actor=audit.cli_actor())
        email = user.email
    click.echo(f"password of {email} reset; their sessions have ended")
