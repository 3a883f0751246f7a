"""Tracking commands: init, check, run, list, history, show, extract, import, reextract."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from archive.cli import Context, log_own_info, main, pass_context
from archive.cli.tables import render_table
from archive.config import PolicyConfig, Source, parse_selectors
from archive.dates import parse_when
from archive.errors import ConfigError
from archive.tracking.status import history_json, policy_rows

if TYPE_CHECKING:
    from archive.tracking.pipeline import TrackResult

STATUS_LABELS = {
    "first_record": "first record",
    "changed": "changed",
    "unchanged": "unchanged",
    "failed": "FAILED",
    "suspect": "held back",
    "skipped": "skipped",
}


def select_policies(ctx: Context, service: str | None, type_: str | None) -> list[PolicyConfig]:
    policies = list(ctx.config.policies)
    if service:
        policies = [p for p in policies if p.service == service]
        if not policies:
            known = ", ".join(sorted({p.service for p in ctx.config.policies})[:20])
            raise click.ClickException(
                f"no policy of service {service!r} in the config; known services: {known or 'none'}"
            )
    if type_:
        policies = [p for p in policies if p.type == type_]
        if not policies:
            raise click.ClickException(f"{service} has no document type {type_!r}")
    return policies


@main.command()
@pass_context
def init(ctx: Context) -> None:
    """Create an empty archive (git repositories and state) in the data directory."""
    with ctx.open(writer=True, create=True) as archive:
        click.echo(
            f"Archive ready in {archive.config.data_dir}: versions in "
            f"{archive.config.archive_dir}, snapshots in {archive.config.snapshots_dir}; "
            f"{len(archive.config.policies)} policies configured. "
            "Next: `policy-archive check`."
        )


@main.command()
@click.argument("service", required=False)
@click.argument("type_", metavar="[TYPE]", required=False)
@click.option("--no-alerts", is_flag=True, help="Do not deliver pending alerts afterwards.")
@pass_context
def check(ctx: Context, service: str | None, type_: str | None, no_alerts: bool) -> None:
    """Fetch policies now (all, one service, or one document) and record changes."""
    from archive.fetch import Fetcher
    from archive.tracking.pipeline import Pipeline

    policies = select_policies(ctx, service, type_)
    with ctx.open(writer=True, create=True) as archive, Fetcher(archive.config.fetch) as fetcher:
        if service is None:  # all of them: paused ones wait; one named is checked regardless
            from archive.manage.pauses import Pauses

            policies, skipped = Pauses(archive.state).split(policies)
            if skipped:
                click.echo(
                    f"{len(skipped)} paused {'policy' if len(skipped) == 1 else 'policies'} "
                    "not checked (resume in /admin/policies, or name one to check it)",
                    err=True,
                )
        pipeline = Pipeline(archive, fetcher)
        with click.progressbar(
            length=len(policies),
            label="Checking",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda r: r and r.service,
        ) as bar:
            results = pipeline.check(policies, on_result=lambda r: bar.update(1, r))
        archive.catch_up()
        if not no_alerts:
            from archive.alerts import deliver_pending

            deliver_pending(archive, until=time.monotonic() + 60)
    order = {p.key: i for i, p in enumerate(policies)}
    results.sort(key=lambda r: order[(r.service, r.type)])
    rows = [
        (
            r.service,
            r.type,
            STATUS_LABELS[r.status],
            r.reason or (r.version.id[:10] if r.version else ""),
        )
        for r in results
    ]
    click.echo(render_table(("service", "type", "result", "detail"), rows))
    counts = Counter(r.status for r in results)
    click.echo(
        ", ".join(f"{n} {STATUS_LABELS[s]}" for s, n in sorted(counts.items()))
        or "nothing to check"
    )
    if counts["failed"]:
        noun = "policy" if len(results) == 1 else "policies"
        raise click.ClickException(
            f"{counts['failed']} of {len(results)} {noun} failed; see the detail column above "
            "(`policy-archive list` shows each policy's last error)"
        )


class RunPrinter:
    """What ``run`` prints on stdout: one line per check as it ends, and what to do when every
    first check of a new archive failed (a :class:`archive.tracking.runner.Reporter`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # checks end on several threads: whole lines only

    def echo(self, line: str) -> None:
        with self._lock:
            click.echo(f"{datetime.now().strftime('%H:%M:%S')}  {line}")

    def started(self, policies: int, url: str | None) -> None:
        where = f"; web UI at {url}" if url else ""
        if not policies:
            self.echo(
                f"No policies configured{where}. Add [[policy]] tables to the config, "
                "or try `policy-archive demo`."
            )
            return
        self.echo(f"Tracking {policies} policies{where} (Ctrl-C stops)")

    def checked(self, result: TrackResult) -> None:
        self.echo(f"{result.service} · {result.type}: {check_line(result)}")

    def first_checks_failed(self, results: list[TrackResult]) -> None:
        which = "The first check" if len(results) == 1 else f"All {len(results)} first checks"
        self.echo(
            f"{which} failed. Check that this machine can reach the "
            "policies' sites (network, proxy, firewall); the reasons are above and in "
            "`policy-archive list`. To see the archive work without the internet, run "
            "`policy-archive demo`."
        )


def check_line(result: TrackResult) -> str:
    """A check's result in a few words: recorded, unchanged, FAILED and why…"""
    version = f" ({result.version.id[:10]})" if result.version else ""
    if result.status == "first_record":
        return f"recorded the first version{version}"
    if result.status == "changed":
        return f"recorded a change{version}"
    if result.status == "failed":
        return f"FAILED: {result.reason}"
    label = STATUS_LABELS.get(result.status, result.status)
    return f"{label}: {result.reason}" if result.reason else label


@main.command()
@click.option("--no-web", is_flag=True, help="Only track; do not serve the web UI.")
@click.option("--host", default=None, help="Address of the web UI [default: config's web.host].")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port [default: web.port]."
)
@pass_context
def run(ctx: Context, no_web: bool, host: str | None, port: int | None) -> None:
    """Track every policy on schedule and serve the web UI until stopped (Ctrl-C).

    Prints one line per check as it ends; logs one INFO line per change and per failure on
    stderr when stderr is not the same terminal as stdout (a log file, a service manager), or
    with -v, so a terminal shows each result once. Links and feeds point at the served address
    unless [web] base_url is set.
    """
    from archive.cli.web import served_config, web_server
    from archive.tracking.runner import run_archive

    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        log_own_info()  # in a terminal the printed lines say it; -v still logs INFO
    config = served_config(ctx.config, host, port)
    run_archive(config, web=None if no_web else web_server(config), reporter=RunPrinter())


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """List tracked policies with their versions and the status of the last check."""
    with ctx.open() as archive:
        rows = policy_rows(archive.config, archive.versions, archive.state)
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
        return
    table = [
        (
            row.service,
            row.type,
            str(len(row.history)),
            row.state.last_check.isoformat() if row.state.last_check else "never",
            row.last_change or "-",
            row.status_text,
        )
        for row in rows
    ]
    click.echo(
        render_table(("service", "type", "versions", "last check", "last change", "status"), table)
    )


@main.command()
@click.argument("service")
@click.argument("type_", metavar="TYPE")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of versions.")
@pass_context
def history(ctx: Context, service: str, type_: str, as_json: bool) -> None:
    """Show the versions of one policy, oldest first."""
    with ctx.open() as archive:
        versions = archive.versions.history(service, type_)
    if not versions:
        raise click.ClickException(
            f"no versions of {service} {type_} in the archive (see `policy-archive list`)"
        )
    if as_json:
        click.echo(json.dumps(history_json(versions), indent=2))
        return
    rows = [(v.id[:10], v.date.isoformat(), v.kind, v.url or "") for v in versions]
    click.echo(render_table(("version", "date", "kind", "url"), rows))


@main.command()
@click.argument("service")
@click.argument("type_", metavar="TYPE")
@click.option("--at", "at", help="The version in force at this date (YYYY-MM-DD or ISO 8601).")
@click.option("--version", "version_id", help="A version id (from `history`).")
@pass_context
def show(ctx: Context, service: str, type_: str, at: str | None, version_id: str | None) -> None:
    """Print the text of a policy: current, in force at a date, or a given version."""
    if at and version_id:
        raise click.UsageError("give --at or --version, not both")
    with ctx.open() as archive:
        if at:
            when = parse_when(at)
            version = archive.versions.at(service, type_, when)
            if version is None:
                raise click.ClickException(f"{service} {type_} had no version yet on {at}")
            version_id = version.id
        elif not version_id:
            current = archive.versions.current(service, type_)
            if current is None:
                raise click.ClickException(f"no versions of {service} {type_} in the archive")
            version_id = current.id
        click.echo(archive.versions.text(service, type_, version_id), nl=False)


@main.command()
@click.option(
    "--html",
    "html_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A saved page (HTML or PDF).",
)
@click.option(
    "--url",
    default="https://example.invalid/",
    show_default=True,
    help="The page's URL, to make links absolute.",
)
@click.option(
    "--declaration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An Open Terms Archive terms entry, or a whole service file with --type.",
)
@click.option("--type", "type_", help="Document type to take from a service declaration.")
@click.option(
    "--date",
    "when",
    metavar="DATE",
    help="Use the declaration valid at DATE (YYYY-MM-DD or ISO 8601): the entry of "
    "<Service>.history.json beside the file whose validUntil is the first on or after DATE, "
    "else the current one.",
)
@click.option("--select", multiple=True, help="CSS selector of the content (repeatable).")
@click.option("--remove", multiple=True, help="CSS selector of what to drop (repeatable).")
@click.option("--content-type", default="", help="Content type (default: sniffed).")
def extract(
    html_file: Path,
    url: str,
    declaration: Path | None,
    type_: str | None,
    select: tuple[str, ...],
    remove: tuple[str, ...],
    content_type: str,
    when: str | None,
) -> None:
    """Run extraction on a saved page and print the Markdown."""
    from archive.extract import extract as run_extract

    source = Source(
        url=url,
        select=parse_selectors(list(select), "--select"),
        remove=parse_selectors(list(remove), "--remove"),
    )
    if declaration is not None:
        source = _declaration_source(declaration, type_, url, when)
    body = html_file.read_bytes()
    if not content_type:
        content_type = "application/pdf" if body.startswith(b"%PDF") else "text/html"
    click.echo(run_extract(body, content_type, url, source).rstrip() + "\n", nl=False)


def _declaration_source(path: Path, type_: str | None, url: str, when: str | None) -> Source:
    from archive.config.declarations import declaration_at, terms_sources

    if when is not None or path.name.endswith(".history.json"):
        from archive.dates import parse_when

        if not type_:
            raise click.UsageError(f"{path}: choose the document type with --type")
        moment = parse_when(when, end_of_day=False) if when else datetime.now(UTC)
        first = declaration_at(path, type_, moment).sources[0]
        return Source(
            url=url if url != "https://example.invalid/" else first.url,
            select=first.select,
            remove=first.remove,
            js=first.js,
            filters=first.filters,
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read declaration: {exc}") from None
    if isinstance(data, dict) and "terms" in data:
        terms = data["terms"]
        if not type_:
            raise click.UsageError(f"{path} declares {', '.join(terms)}: choose one with --type")
        if type_ not in terms:
            raise click.UsageError(f"{path} has no terms {type_!r}; it has {', '.join(terms)}")
        data = terms[type_]
    sources = terms_sources(data, str(path))
    first = sources[0]
    return Source(
        url=url if url != "https://example.invalid/" else first.url,
        select=first.select,
        remove=first.remove,
        js=first.js,
        filters=first.filters,
    )


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def import_(ctx: Context, file: Path) -> None:
    """Bulk-import policy histories from a JSON Lines file (one history per line)."""
    from archive.tracking.importer import import_histories

    with (
        ctx.open(writer=True, create=True) as archive,
        click.progressbar(
            length=max(1, file.stat().st_size), label="Reading", file=sys.stderr
        ) as bar,
    ):
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        report = import_histories(archive, file, progress=progress)
    click.echo(
        f"Imported {report.histories} histories: {report.versions_read} versions read, "
        f"{report.commits} commits written, {report.skipped_identical} identical to the "
        f"previous version, {report.skipped_present} already in the archive."
    )


@main.command()
@click.argument("service", required=False)
@click.argument("type_", metavar="[TYPE]", required=False)
@pass_context
def reextract(ctx: Context, service: str | None, type_: str | None) -> None:
    """Re-extract every policy from its latest snapshot (declarations: the entry valid then)."""
    from archive.tracking.reextract import reextract_all

    policies = select_policies(ctx, service, type_)
    with (
        ctx.open(writer=True) as archive,
        click.progressbar(length=len(policies), label="Re-extracting", file=sys.stderr) as bar,
    ):
        results = reextract_all(archive, policies, on_result=lambda r: bar.update(1))
    rows = [
        (r.service, r.type, r.status, r.reason or (r.version.id[:10] if r.version else ""))
        for r in results
    ]
    click.echo(render_table(("service", "type", "result", "detail"), rows))
