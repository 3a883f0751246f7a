"""Dataset exports: JSON Lines (what ``import`` reads), an Open Terms Archive-style zip, CSV.

Every exporter is a generator of ``bytes`` chunks, so an export streams to a file or an HTTP
response without the archive having to fit in memory: :func:`select` lists version metadata
(which the version store already holds), and the texts are read one at a time as the chunks
are produced. Formats and their reasons: docs/decisions/0006-export-formats.md.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC

from archive.app import Archive
from archive.research.dataset import export_zip
from archive.research.selection import (
    EXPORT_KINDS,
    ExportError,
    ExportQuery,
    Item,
    Progress,
    Selection,
    iso,
    select,
    texts,
    to_json,
)

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "MEDIA_TYPES",
    "ExportError",
    "ExportQuery",
    "export_csv",
    "export_jsonl",
    "export_stream",
    "export_zip",
    "select",
    "suggested_filename",
]

FORMATS = ("jsonl", "zip", "csv")
MEDIA_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "zip": "application/zip",
    "csv": "text/csv; charset=utf-8",
}
CSV_COLUMNS = (
    "service",
    "type",
    "version",
    "date",
    "valid_to",
    "kind",
    "words",
    "url",
    "snapshot",
    "language",
)


def export_stream(
    archive: Archive, fmt: str, query: ExportQuery, progress: Progress | None = None
) -> tuple[Selection, Iterator[bytes]]:
    """Select now (so bad options fail before anything is sent), stream the bytes later."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    selection = select(archive, query)
    writer = {"jsonl": export_jsonl, "zip": export_zip, "csv": export_csv}[fmt]
    return selection, writer(archive, selection, progress)


def suggested_filename(fmt: str, query: ExportQuery) -> str:
    """``policy-archive-<when>[-<service>][-<type>].<ext>``, ASCII only (for downloads)."""
    when = query.at.astimezone(UTC).strftime("%Y-%m-%d") if query.at else "full"
    parts = ["policy-archive", when]
    for name in (query.service, query.type):
        if name:
            slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
            parts.append(slug or "x")
    return "-".join(parts) + "." + fmt


# --------------------------------------------------------------------------- formats


def version_record(item: Item, text: str) -> dict[str, str | None]:
    """One entry of a JSONL history's ``versions`` list."""
    v = item.version
    return {
        "date": v.date.isoformat(),
        "text": text,
        "kind": EXPORT_KINDS.get(v.kind, "change"),
        "version": v.id,
        "snapshot": v.snapshot,
        "source_url": v.url,
    }


def export_jsonl(
    archive: Archive, selection: Selection, progress: Progress | None = None
) -> Iterator[bytes]:
    """One history per line, in the format :func:`archive.importer.import_histories` reads.

    A line is written in pieces (header, then one version at a time), so even a policy with
    thousands of versions is never held whole.
    """
    for policy, position, item, text in texts(archive, selection, progress):
        if position == 0:
            head = {
                "service": policy.service,
                "document_type": policy.type,
                "language": policy.language,
                "url": policy.url,
            }
            yield (to_json(head)[:-1] + ', "versions": [').encode()
        separator = ", " if position else ""
        yield (separator + to_json(version_record(item, text))).encode()
        if position == len(policy.items) - 1:
            yield b"]}\n"


def export_csv(
    archive: Archive, selection: Selection, progress: Progress | None = None
) -> Iterator[bytes]:
    """One row per version (RFC 4180, UTF-8); ``words`` counts whitespace-separated tokens."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> bytes:
        data = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for policy, _, item, text in texts(archive, selection, progress):
        v = item.version
        writer.writerow(
            (
                policy.service,
                policy.type,
                v.id,
                v.date.isoformat(),
                iso(item.valid_to) or "",
                EXPORT_KINDS.get(v.kind, "change"),
                len(text.split()),
                v.url or "",
                v.snapshot or "",
                policy.language or "",
            )
        )
        yield flush()
