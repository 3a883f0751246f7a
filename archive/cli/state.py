"""``migrate-state --to postgresql://…``: move the state (policy state, subscriptions, the
alert outbox and its delivery log, accounts, admin requests and pauses) from this archive's
state.sqlite to PostgreSQL, for the distributed mode."""

from __future__ import annotations

import click

from archive.accounts.schema import ACCOUNTS
from archive.alerts.schema import ALERTS
from archive.cli import Context, main, pass_context
from archive.config import database_url
from archive.manage.pauses import PAUSES
from archive.manage.requests import REQUESTS
from store.state import CORE, State, redacted
from store.state.copy import copy_state

SCHEMAS = (CORE, ACCOUNTS, ALERTS, REQUESTS, PAUSES)
"""Every feature's tables, the state's own first."""


def _url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        url = database_url(value, "--to")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not url:
        raise click.BadParameter("give the PostgreSQL URL to copy the state to")
    return url


@main.command(name="migrate-state")
@click.option(
    "--to",
    "to",
    required=True,
    callback=_url,
    help="PostgreSQL URL to copy the state to (postgresql://user:password@host:port/db).",
)
@click.option("--force", is_flag=True, help="Replace state the target database holds already.")
@pass_context
def migrate_state(ctx: Context, to: str, force: bool) -> None:
    """Copy state.sqlite into PostgreSQL (in one transaction), then say what to put in
    config.toml. state.sqlite is left as it was."""
    config = ctx.config
    if not config.state_path.exists():
        raise click.ClickException(f"no state to copy: {config.state_path} does not exist")
    with State(config.state_path) as source, State(config.state_path, to) as target:
        told: list[str] = []

        def progress(table: str, rows: int) -> None:
            if not told:
                told.append(table)
                click.echo(f"copying {config.state_path} to {redacted(to)}", err=True)
            click.echo(f"  {table}: {rows} rows", err=True)

        copied = copy_state(source, target, SCHEMAS, force=force, progress=progress)
    click.echo(f"copied {sum(copied.values())} rows in {len(copied)} tables")
    click.echo("to use it, put this in config.toml (and stop the processes using state.sqlite):")
    click.echo(f'[database]\nurl = "{redacted(to)}"  # with the password you gave, if any')
