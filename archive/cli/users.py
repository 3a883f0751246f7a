"""Account commands: ``user add|list|remove|passwd`` and ``token create|list|revoke``.

Accounts live in the state database (state.sqlite, or [database] url), so these work before
``init`` too; passwords are prompted (twice) or read from standard input with
``--password-stdin``, never taken as an argument.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from archive.accounts.passwords import check_password
from archive.accounts.roles import ROLES, VIEWER
from archive.accounts.tokens import ApiTokens
from archive.accounts.users import Users
from archive.cli import Context, main, pass_context
from archive.cli.tables import render_table
from store.state import State

ROLE = click.Choice(ROLES)


@contextmanager
def _state(ctx: Context) -> Iterator[State]:
    state = State(ctx.config.state_path, ctx.config.database.url)
    try:
        yield state
    finally:
        state.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, show_default=False
        )
    return check_password(password)


@main.group()
def user() -> None:
    """Accounts of the admin UI (roles: viewer, editor, admin)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="viewer, editor or admin.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@pass_context
def user_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password (at least 10 characters) is prompted twice."""
    password = _password(password_stdin)
    with _state(ctx) as state:
        added = Users(state).add(name, role, password)
    click.echo(f"User {added.name} added ({added.role}).")


@user.command("list")
@pass_context
def user_list(ctx: Context) -> None:
    """List the users and their roles."""
    with _state(ctx) as state:
        users = Users(state).all()
    if not users:
        click.echo("No users yet: add one with `policy-archive user add NAME --role admin`.")
        return
    click.echo(render_table(["name", "role"], [(u.name, u.role) for u in users]))


@user.command("remove")
@click.argument("name")
@pass_context
def user_remove(ctx: Context, name: str) -> None:
    """Remove a user (their sessions end at once)."""
    with _state(ctx) as state:
        Users(state).remove(name)
    click.echo(f"User {name} removed.")


@user.command("passwd")
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@pass_context
def user_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set a user's password (their sessions end: they log in again)."""
    with _state(ctx) as state:
        users = Users(state)
        users.named(name)  # say so before asking for a password
        users.set_password(name, _password(password_stdin))
    click.echo(f"Password of {name} changed.")


@main.group()
def token() -> None:
    """API tokens for scripts, sent as `Authorization: Bearer <token>`."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=ROLE, default=VIEWER, show_default=True, help="What the token may do.")
@pass_context
def token_create(ctx: Context, name: str, role: str) -> None:
    """Create a token; it is shown once, here (only its digest is kept)."""
    with _state(ctx) as state:
        created, secret = ApiTokens(state).create(name, role)
    click.echo(f"Token {created.name} ({created.role}) created. It is shown only once:")
    click.echo(secret)


@token.command("list")
@pass_context
def token_list(ctx: Context) -> None:
    """List the tokens (names, roles, last use; never the secrets)."""
    with _state(ctx) as state:
        tokens = ApiTokens(state).all()
    if not tokens:
        click.echo("No tokens yet: create one with `policy-archive token create NAME`.")
        return
    rows = [(t.name, t.role, t.created, t.last_used or "never") for t in tokens]
    click.echo(render_table(["name", "role", "created", "last used"], rows))


@token.command("revoke")
@click.argument("name")
@pass_context
def token_revoke(ctx: Context, name: str) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    with _state(ctx) as state:
        ApiTokens(state).revoke(name)
    click.echo(f"Token {name} revoked.")
