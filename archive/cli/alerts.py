"""Alert commands: subscribe, unsubscribe, subscriptions, deliver."""

from __future__ import annotations

import json
import time

import click

from archive.alerts.delivery import deliver_pending
from archive.alerts.listener import parse_saved_search
from archive.alerts.outbox import Outbox, OutboxRow
from archive.alerts.schema import ensure_schema
from archive.alerts.subscriptions import CONFIG, UNSUBSCRIBED, Subscriptions
from archive.cli import Context, main, pass_context
from archive.cli.tables import render_table


@main.command()
@click.option("--email", "email", metavar="ADDRESS", help="Email this address (double opt-in).")
@click.option("--webhook", metavar="URL", help="POST signed JSON to this URL.")
@click.option("--apprise", metavar="URL", help="Notify an Apprise URL (slack://, ntfy://, ...).")
@click.option("--service", default="", help="Only this service (default: every service).")
@click.option("--type", "type_", default="", help="Only this document type (default: any).")
@click.option(
    "--query",
    default="",
    metavar="QUERY",
    help="A saved search: alert when a policy starts or stops matching it, e.g. "
    "'\"sell your personal information\"'.",
)
@click.option("--secret", default="", help="Webhook signing secret (default: generated).")
@click.option("--digest", is_flag=True, help="Email: one digest a day instead of every change.")
@click.option(
    "--first-records",
    is_flag=True,
    help="Also alert when a policy is recorded for the first time (default: changes only).",
)
@pass_context
def subscribe(
    ctx: Context,
    email: str | None,
    webhook: str | None,
    apprise: str | None,
    service: str,
    type_: str,
    query: str,
    secret: str,
    digest: bool,
    first_records: bool,
) -> None:
    """Subscribe an email address, a webhook or an Apprise URL to changes."""
    chosen = [
        (c, t) for c, t in (("email", email), ("webhook", webhook), ("apprise", apprise)) if t
    ]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --email, --webhook or --apprise")
    channel, target = chosen[0]
    if query:
        parse_saved_search(query)
    with ctx.open() as archive:
        ensure_schema(archive.state)
        sub = Subscriptions(archive.state).add(
            channel,
            target,
            service=service,
            type_=type_,
            query=query,
            secret=secret,
            digest=digest,
            first_records=first_records,
        )
        click.echo(f"Subscription #{sub.id}: {channel} {sub.target} → {sub.describe()}.")
        if channel == "email":
            Outbox(archive.state).queue_confirmation(sub.id, now=time.time())
            click.echo(
                "A confirmation email is queued: alerts start once the address owner "
                "follows its link. It is sent by `policy-archive deliver` (or `run`)."
            )
        if channel == "webhook":
            click.echo(
                f"Signing secret (verify the webhook-signature header with it): {sub.secret}"
            )


@main.command()
@click.argument("subscription_id", type=int)
@pass_context
def unsubscribe(ctx: Context, subscription_id: int) -> None:
    """Stop a subscription (see `policy-archive subscriptions` for the ids)."""
    with ctx.open() as archive:
        ensure_schema(archive.state)
        subscriptions = Subscriptions(archive.state)
        sub = subscriptions.get(subscription_id)
        if sub is None:
            raise click.ClickException(f"there is no subscription #{subscription_id}")
        if sub.origin == CONFIG:
            raise click.ClickException(
                f"subscription #{sub.id} comes from an [[alert]] table in config.toml; "
                "remove the table there instead"
            )
        subscriptions.set_status(sub.id, UNSUBSCRIBED, note="unsubscribed from the CLI")
        click.echo(f"Subscription #{sub.id} ({sub.channel} {sub.target}) stopped.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--show-secrets", is_flag=True, help="Include webhook signing secrets.")
@click.option("--failed", is_flag=True, help="List alerts that could not be delivered.")
@pass_context
def subscriptions(ctx: Context, as_json: bool, show_secrets: bool, failed: bool) -> None:
    """List subscriptions with their alert counts (or, with --failed, the failed alerts)."""
    with ctx.open() as archive:
        ensure_schema(archive.state)
        outbox = Outbox(archive.state)
        if failed:
            _echo_failed(outbox.rows(status="failed"), as_json)
            return
        counts = outbox.counts()
        subs = Subscriptions(archive.state).all()
    records = []
    for s in subs:
        n = counts.get(s.id, {})
        record = {
            "id": s.id,
            "channel": s.channel,
            "target": s.target,
            "service": s.service,
            "type": s.type,
            "query": s.query,
            "digest": s.digest,
            "first_records": s.first_records,
            "origin": s.origin,
            "status": s.status,
            "note": s.note,
            "pending": n.get("pending", 0),
            "delivered": n.get("delivered", 0),
            "failed": n.get("failed", 0),
        }
        if show_secrets and s.channel == "webhook":
            record["secret"] = s.secret
        records.append(record)
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("No subscriptions. Add one with `policy-archive subscribe` or [[alert]].")
        return
    headers = ["id", "channel", "target", "follows", "first records", "status", "origin"]
    headers += ["sent", "queued", "failed"]
    if show_secrets:
        headers.append("secret")
    rows = []
    for r, s in zip(records, subs, strict=True):
        row = [
            f"#{r['id']}",
            s.channel,
            s.target,
            s.describe(),
            "yes" if s.first_records else "no",
            s.status,
            s.origin,
            str(r["delivered"]),
            str(r["pending"]),
            str(r["failed"]),
        ]
        if show_secrets:
            row.append(str(r.get("secret", "")))
        rows.append(row)
    click.echo(render_table(headers, rows))


def _echo_failed(rows: list[OutboxRow], as_json: bool) -> None:
    """The alerts that could not be delivered, as JSON or a table."""
    if as_json:
        records = [
            {
                "subscription": r.subscription_id,
                "alert": r.alert_id,
                "event": r.event,
                "attempts": r.attempts,
                "error": r.last_error,
            }
            for r in rows
        ]
        click.echo(json.dumps(records, indent=2))
    elif not rows:
        click.echo("No failed alerts.")
    else:
        click.echo(
            render_table(
                ("sub", "event", "attempts", "error"),
                [
                    (f"#{r.subscription_id}", r.event, str(r.attempts), r.last_error or "")
                    for r in rows
                ],
                max_width=90,
            )
        )


@main.command()
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Start no new delivery after this many seconds (default: no limit).",
)
@pass_context
def deliver(ctx: Context, timeout: float | None) -> None:
    """Send the alerts that are due now (retries included), once."""
    until = time.monotonic() + timeout if timeout is not None else None
    with ctx.open(writer=True) as archive:
        report = deliver_pending(archive, until=until)
    click.echo(f"Alerts: {report}.")
    for error in report.errors:
        click.echo(f"  {error}", err=True)
