"""Researcher commands: export, import-ota-repo, verify."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from archive.cli import Context, main, pass_context
from archive.dates import parse_when
from archive.research.export import FORMATS, ExportQuery, export_stream


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or ``path`` written under a temporary name and renamed when complete, so an
    interrupted export never looks finished."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as fh:
            yield fh
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class Bars:
    """Progress bars on stderr, one per stage, each finished when the next starts."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self._bar: Any = None
        self._stage: str | None = None
        self._last = 0

    def start(self, stage: str, total: int) -> None:
        self.close()
        self._bar = click.progressbar(
            length=max(total, 1), label=self.labels[stage], file=sys.stderr, show_pos=True
        )
        self._bar.__enter__()
        self._stage, self._last = stage, 0

    def staged(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self.start(stage, total)
        self._bar.update(done - self._last)
        self._last = done

    def callback(self, stage: str) -> Callable[[int, int], None]:
        return lambda done, total: self.staged(stage, done, total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="jsonl: histories that `import` reads back; zip: an Open Terms Archive-style "
    "dataset (one Markdown file per version, README, manifest); csv: one row per "
    "version.",
)
@click.option(
    "--at",
    "at",
    metavar="DATE",
    help="The archive as it stood on DATE: each policy's version in force then "
    "(YYYY-MM-DD means the end of that day, UTC; or an ISO 8601 timestamp).",
)
@click.option("--service", help="Only this service.")
@click.option("--type", "type_", metavar="TYPE", help="Only this document type.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: stdout for jsonl and csv; required for zip).",
)
@pass_context
def export(
    ctx: Context,
    fmt: str,
    at: str | None,
    service: str | None,
    type_: str | None,
    output: Path | None,
) -> None:
    """Export the archive's versions, whole or as of a date, for research."""
    if fmt == "zip" and output is None:
        raise click.UsageError(
            "--format zip needs --output FILE (a zip is not written to a terminal)"
        )
    query = ExportQuery(at=parse_when(at) if at else None, service=service, type=type_)
    with ctx.open() as archive, Bars({"export": f"Exporting {fmt}"}) as bars:
        selection, chunks = export_stream(archive, fmt, query, bars.callback("export"))
        bars.start("export", selection.versions)
        with _output(output) as out:
            for chunk in chunks:
                out.write(chunk)
    where = f" to {output}" if output else ""
    click.echo(
        f"Exported {selection.versions} versions of {len(selection.policies)} documents{where}.",
        err=True,
    )


@main.command(name="import-ota-repo")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_context
def import_ota_repo(ctx: Context, path: Path) -> None:
    """Import an Open Terms Archive versions repository (a git clone), keeping its dates.

    Walks PATH's history oldest first; running it again later imports only new commits.
    """
    from archive.tracking.ota_import import import_ota_repo as run_import

    labels = {"reading": "Reading history", "writing": "Writing versions"}
    with ctx.open(writer=True, create=True) as archive, Bars(labels) as bars:
        report = run_import(archive, path, progress=bars.staged)
    click.echo(
        f"Imported {report.source}: {report.commits_walked} commits walked, "
        f"{report.histories} documents, {report.versions_read} versions read, "
        f"{report.commits} commits written, {report.skipped_identical} identical to the "
        f"previous version, {report.skipped_present} already in the archive, "
        f"{report.ignored_commits} other commits ignored."
    )


@main.command()
@click.option(
    "--repair",
    is_flag=True,
    help="First remove what an interrupted write left behind in both git repositories "
    "(unreachable objects, stale temporary files), as the writer; history is never "
    "rewritten, so empty commits are still reported.",
)
@pass_context
def verify(ctx: Context, repair: bool) -> None:
    """Check both git repositories (fsck, empty commits), every version's snapshot link, and
    the search index; exit 1 if anything is wrong."""
    from archive.research.verify import repair as run_repair
    from archive.research.verify import verify as run_verify

    with ctx.open(writer=repair) as archive:
        if repair:
            done = run_repair(archive)
            for line in done:
                click.echo(f"Repaired: {line}")
            if not done:
                click.echo("Repaired: nothing to remove.")
        report = run_verify(archive)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)
