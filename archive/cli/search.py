"""Search commands: search, when, reindex."""

from __future__ import annotations

import html
import json
import os
import re
import sys
import time
from datetime import date

import click

from archive.app import Archive
from archive.cli import Context, main, pass_context
from archive.dates import DateError, parse_when
from archive.search import (
    MAX_LIMIT,
    MAX_PAGE,
    ClauseTimeline,
    index_warning,
    language_resolver,
    search,
    when,
)
from store.index import SearchResults

_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)


def _day(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return parse_when(value).date()
    except DateError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _terminal_snippet(snippet: str) -> str:
    """The HTML snippet for a terminal: matched words in bold, entities decoded."""
    parts = _MARK.split(snippet)
    out = []
    for i, part in enumerate(parts):
        text = html.unescape(part)
        out.append(click.style(text, bold=True, underline=True) if i % 2 else text)
    return "".join(out)


def _warn_if_stale(archive: Archive) -> None:
    """One line on stderr when the index is missing or behind git (stdout stays clean)."""
    warning = index_warning(archive)
    if warning:
        click.echo(warning, err=True)


def _print_results(results: SearchResults, history: bool) -> None:
    scope = "past and current versions" if history else "current versions"
    click.echo(
        f"{results.total} polic{'y' if results.total == 1 else 'ies'} match "
        f"{results.query.text!r} in {scope}"
        + (f" (page {results.page} of {results.pages})" if results.pages > 1 else "")
    )
    start = (results.page - 1) * results.query.limit
    for n, hit in enumerate(results.hits, start + 1):
        if history and hit.first_match:
            ended = hit.version.valid_to  # the last matching version's successor
            until = "now" if hit.current or ended is None else ended.date().isoformat()
            span = f"matched from {hit.first_match.date.date()} until {until}"
            if hit.matched_versions > 1:
                span += f" ({hit.matched_versions} versions)"
        else:
            span = f"version of {hit.version.date.date()}" + ("" if hit.current else " (past)")
        click.echo(
            f"\n{n:>3}. {click.style(f'{hit.service} · {hit.type}', bold=True)}  "
            f"{span}  [{hit.version.id[:10]}]"
        )
        if hit.snippet:
            click.echo("     " + _terminal_snippet(hit.snippet))
    for name, counts in results.facets.items():
        if len(counts) > 1:
            shown = ", ".join(f"{k} ({v})" for k, v in list(counts.items())[:8])
            click.echo(f"\n{name}: {shown}")


@main.command(name="search")
@click.argument("query")
@click.option(
    "--history",
    is_flag=True,
    help="Search every version, not only the current ones; a hit says from when "
    "to when the match held.",
)
@click.option("--service", help="Only this service (exact name, any case).")
@click.option("--type", "type_", help='Only this document type, e.g. "Privacy Policy".')
@click.option("--lang", help="Only policies in this language, e.g. en, fr, et.")
@click.option(
    "--from",
    "date_from",
    metavar="DATE",
    help="Versions in force on or after this day (YYYY-MM-DD).",
)
@click.option(
    "--to", "date_to", metavar="DATE", help="Versions in force on or before this day (YYYY-MM-DD)."
)
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(1, MAX_LIMIT),
    help="Hits per page.",
)
@click.option(
    "--page",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_PAGE),
    help="Page of hits to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_context
def search_command(
    ctx: Context,
    query: str,
    history: bool,
    service: str | None,
    type_: str | None,
    lang: str | None,
    date_from: str | None,
    date_to: str | None,
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """Search the policies' text: words (all must occur), "phrases", OR, NOT, prefix*,
    service:NAME, type:"NAME", lang:CODE.

    \b
    Examples:
      policy-archive search 'retention 30 days'
      policy-archive search '"sell your personal information"' --history
      policy-archive search 'cookies lang:fr' --from 2023-01-01 --to 2023-12-31
    """
    start, end = _day(date_from, "--from"), _day(date_to, "--to")
    with ctx.open() as archive:
        results = search(
            archive,
            query,
            history=history,
            service=service,
            type=type_,
            lang=lang,
            date_from=start,
            date_to=end,
            limit=limit,
            page=page,
        )
        _warn_if_stale(archive)
        if as_json:
            click.echo(json.dumps(results.as_json(), indent=2, ensure_ascii=False))
        else:
            _print_results(results, history)


def _print_timeline(t: ClauseTimeline) -> None:
    click.echo(
        click.style(f"{t.service} · {t.type}", bold=True)
        + f"  ({t.versions_with} of {t.versions_total} versions)"
    )
    click.echo(f"    first seen  {t.first_seen.date.date()}  [{t.first_seen.id[:10]}]")
    if t.still_present:
        click.echo("    last seen   still present")
    else:
        click.echo(f"    last seen   {t.last_seen.date.date()}  [{t.last_seen.id[:10]}]")
    for label, refs in (("appeared", t.appeared[1:]), ("disappeared", t.disappeared)):
        if refs:
            click.echo(
                f"    {label:<11} " + ", ".join(f"{r.date.date()} [{r.id[:10]}]" for r in refs)
            )


@main.command(name="when")
@click.argument("phrase")
@click.option("--json", "as_json", is_flag=True, help="Print the timelines as JSON.")
@pass_context
def when_command(ctx: Context, phrase: str, as_json: bool) -> None:
    """When did PHRASE appear in, or disappear from, each policy?

    \b
    Example:
      policy-archive when "sell your personal information"
    """
    with ctx.open() as archive:
        timelines = when(archive, phrase)
        _warn_if_stale(archive)
        if as_json:
            click.echo(json.dumps([t.as_json() for t in timelines], indent=2, ensure_ascii=False))
            return
        if not timelines:
            click.echo(f"No version of any policy contains {phrase!r}.")
            return
        click.echo(
            f"{len(timelines)} polic{'y' if len(timelines) == 1 else 'ies'} contained "
            f"{phrase!r} at some point:\n"
        )
        for t in timelines:
            _print_timeline(t)


@main.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Indexing processes [default: the number of CPUs, at most 4].",
)
@pass_context
def reindex(ctx: Context, processes: int | None) -> None:
    """Rebuild the search index from the versions in git.

    The new index is built in a fresh folder and swapped in when complete: searches keep
    answering from the old one meanwhile, and a damaged old index does not matter.
    """
    procs = processes or min(os.cpu_count() or 1, 4)
    # The constructor, not Archive.open: opening a writer would first catch the old index
    # up with git, work this command is about to throw away.
    with Archive(ctx.config, writer=True) as archive:
        began = time.monotonic()
        total = len(archive.versions.log())
        with click.progressbar(
            length=max(total, 1), label="Indexing versions", file=sys.stderr, show_pos=True
        ) as bar:
            last = [0]

            def progress(done: int, _total: int) -> None:
                bar.update(done - last[0])
                last[0] = done

            count = archive.index.rebuild(
                archive.versions,
                progress=progress,
                processes=procs,
                language_of=language_resolver(archive),
            )
        took = time.monotonic() - began
        stats = archive.index.stats()
    rate = f", {count / took:,.0f} versions/s" if took > 0 and count else ""
    click.echo(
        f"Indexed {count:,} versions of {stats.policies:,} policies as "
        f"{stats.sections:,} distinct sections in {took:.1f} s{rate}."
    )
