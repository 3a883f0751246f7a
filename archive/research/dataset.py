"""The zip dataset: Open Terms Archive's layout, with a README and a manifest, streamed.

``<service>/<type>/<YYYY-MM-DDTHH-MM-SSZ>.md`` for every version (the observation time in UTC,
as their dataset export names files), ``README.md`` (what, when, from which commit, licence)
and ``manifest.json`` (one entry per file, with its provenance). Written to an unseekable sink,
so each entry is handed on as soon as it is compressed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

from archive.app import Archive
from archive.research.selection import (
    EXPORT_KINDS,
    Item,
    PolicyItems,
    Progress,
    Selection,
    iso,
    texts,
    to_json,
)
from store.paths import safe_component

MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that hands what was written back as chunks."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def version_filename(when: datetime) -> str:
    """``2024-06-01T12-00-00Z.md``: UTC, as Open Terms Archive datasets name their files."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ") + ".md"


def dataset_paths(selection: Selection) -> Iterator[tuple[PolicyItems, Item, str]]:
    """``<service>/<type>/<date>.md`` for every version; a second version observed in the
    same second gets its short id appended (``...Z-1a2b3c4d.md``)."""
    for policy in selection.policies:
        folder = f"{safe_component(policy.service)}/{safe_component(policy.type)}/"
        used: set[str] = set()
        for item in policy.items:
            name = version_filename(item.version.date)
            if name in used:
                name = name[:-3] + f"-{item.version.id[:8]}.md"
            used.add(name)
            yield policy, item, folder + name


def _zip_info(name: str, when: datetime) -> zipfile.ZipInfo:
    stamp = when.astimezone(UTC).timetuple()[:6]
    info = zipfile.ZipInfo(name, date_time=max(stamp, _ZIP_EPOCH))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def dataset_readme(archive: Archive, selection: Selection, generated_at: datetime) -> str:
    """The dataset's README: what it holds, as of when, how it is laid out, its licence."""
    query = selection.query
    span = selection.date_range()
    if query.at is not None:
        scope = (
            f"the archive as it stood on {query.at.isoformat()}: the version of each "
            "document in force at that moment"
        )
    elif span:
        scope = f"every recorded version, observed between {span[0].date()} and {span[1].date()}"
    else:
        scope = "no versions"
    filters = ", ".join(
        f"{label} = {value}"
        for label, value in (("service", query.service), ("document type", query.type))
        if value
    )
    base = archive.config.web.base_url.rstrip("/")
    lines = [
        "# Policy Archive dataset",
        "",
        f"{selection.versions} versions of {len(selection.policies)} documents from "
        f"{selection.services} services: {scope}.",
        "",
        f"- Generated: {generated_at.isoformat()}",
        f"- Source: the archive's git history at commit {selection.head or '(empty)'} "
        f"(`git clone {base}/archive.git`)",
    ]
    if filters:
        lines.append(f"- Filtered on: {filters}")
    lines += [
        "",
        "## Layout",
        "",
        "- `<service>/<document type>/<YYYY-MM-DDTHH-MM-SSZ>.md`: one Markdown file per version,",
        "  named by the time it was observed (UTC); a version observed in the same second as",
        "  another carries its short version id after the date.",
        f"- `{MANIFEST_NAME}`: one entry per file with the version id (the archive's git commit),",
        "  kind, observation date, `valid_to` (when the next version replaced it), source URL,",
        "  language and the id of the raw snapshot (a commit of the snapshots repository) it",
        "  was extracted from.",
        "",
        "## Provenance",
        "",
        "Every version is a commit of the archive's git repository, dated at observation time,",
        "with its source URL and snapshot id in git trailers; `kind: technical_upgrade` marks",
        "a re-extraction of an unchanged page, not a change at the source.",
        "",
        "## Licence",
        "",
        archive.config.export.licence,
        "",
    ]
    return "\n".join(lines)


def _manifest_head(archive: Archive, selection: Selection, generated_at: datetime) -> dict:
    span = selection.date_range()
    return {
        "generated_at": generated_at.isoformat(),
        "as_of": iso(selection.query.at),
        "service": selection.query.service,
        "document_type": selection.query.type,
        "archive_head": selection.head,
        "licence": archive.config.export.licence,
        "services": selection.services,
        "documents": len(selection.policies),
        "versions": selection.versions,
        "first_version_date": iso(span[0]) if span else None,
        "last_version_date": iso(span[1]) if span else None,
    }


def manifest_entry(policy: PolicyItems, item: Item, path: str) -> dict[str, str | None]:
    v = item.version
    return {
        "path": path,
        "service": policy.service,
        "document_type": policy.type,
        "language": policy.language,
        "version": v.id,
        "kind": EXPORT_KINDS.get(v.kind, "change"),
        "date": v.date.isoformat(),
        "valid_to": iso(item.valid_to),
        "source_url": v.url,
        "snapshot": v.snapshot,
    }


def export_zip(
    archive: Archive,
    selection: Selection,
    progress: Progress | None = None,
    *,
    generated_at: datetime | None = None,
) -> Iterator[bytes]:
    """An Open Terms Archive-style dataset: a README, a manifest and one file per version.

    Written to an unseekable sink (entries carry data descriptors), so it streams.
    """
    generated_at = generated_at or datetime.now(UTC).replace(microsecond=0)
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            _zip_info(README_NAME, generated_at), dataset_readme(archive, selection, generated_at)
        )
        yield sink.take()
        head = json.dumps(_manifest_head(archive, selection, generated_at), indent=1)
        with zf.open(_zip_info(MANIFEST_NAME, generated_at), "w", force_zip64=True) as out:
            out.write(head[:-2].encode() + b',\n "files": [\n')
            for n, (policy, item, path) in enumerate(dataset_paths(selection)):
                entry = to_json(manifest_entry(policy, item, path))
                out.write(((",\n  " if n else "  ") + entry).encode())
                if n % 500 == 499:
                    yield sink.take()
            out.write(b"\n ]\n}\n")
        yield sink.take()
        paths = dataset_paths(selection)
        for (_, _, item, text), (_, _, path) in zip(
            texts(archive, selection, progress), paths, strict=True
        ):
            zf.writestr(_zip_info(path, item.version.date), text.encode("utf-8"))
            yield sink.take()
    yield sink.take()
