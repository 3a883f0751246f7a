"""Bulk import of policy histories from JSON Lines (the format ``export --format jsonl`` writes).

One JSON object per line: ``service``, ``document_type``, optional ``language`` and ``url``,
and ``versions`` = [{``date``, ``text``, optional ``kind``}] oldest first. Each version becomes
one commit dated at its date (``kind: technical_upgrade`` or ``reextract`` → a ``Re-extract``
commit). Consecutive identical texts are skipped, and a version already in the archive (same
policy, date and text) is skipped, so importing the same file twice changes nothing. All
commits go through one ``git fast-import`` stream, merged across histories in date order so
``git log`` reads as a timeline.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.app import Archive
from archive.errors import ArchiveError
from store.git.repository import blob_sha
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion
from store.paths import check_collisions, policy_path

REEXTRACT_KINDS = {"technical_upgrade", "reextract"}
IMPORTED_FROM = "Imported-From"


class ImportFormatError(ArchiveError):
    """A line of an import file is not a valid history."""


@dataclass
class ImportReport:
    histories: int = 0
    versions_read: int = 0
    commits: int = 0
    skipped_identical: int = 0
    skipped_present: int = 0
    policies: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class History:
    service: str
    type: str
    language: str | None
    url: str | None
    versions: tuple[tuple[datetime, str, str], ...]  # (date, text, kind)
    line: int


def parse_date(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ImportFormatError(f"{where}: date {value!r} is not an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ImportFormatError(
            f"{where}: date {value!r} is not ISO 8601 (e.g. 2024-06-01T12:00:00+00:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_history(obj: Any, where: str, line: int) -> History:
    if not isinstance(obj, dict):
        raise ImportFormatError(f"{where}: expected a JSON object")
    for key in ("service", "document_type"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise ImportFormatError(f"{where}: '{key}' must be a non-empty string")
    versions = obj.get("versions")
    if not isinstance(versions, list):
        raise ImportFormatError(f"{where}: 'versions' must be a list of {{date, text}}")
    parsed = []
    for i, v in enumerate(versions):
        vwhere = f"{where}: versions[{i}]"
        if not isinstance(v, dict) or not isinstance(v.get("text"), str):
            raise ImportFormatError(f"{vwhere}: needs 'date' and 'text' (a string)")
        kind = REEXTRACT if v.get("kind") in REEXTRACT_KINDS else CHANGE
        parsed.append((parse_date(v.get("date"), vwhere), v["text"], kind))
    language = obj.get("language")
    url = obj.get("url") or next(
        (
            v.get("source_url")
            for v in reversed(versions)
            if isinstance(v, dict) and v.get("source_url")
        ),
        None,
    )
    return History(
        service=obj["service"].strip(),
        type=obj["document_type"].strip(),
        language=language if isinstance(language, str) else None,
        url=url if isinstance(url, str) else None,
        versions=tuple(parsed),
        line=line,
    )


def read_histories(path: Path) -> Iterator[History]:
    """Parse a JSONL file lazily, naming the line of any error."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(f"{where}: not valid JSON ({exc.msg})") from None
            yield parse_history(obj, where, number)


def plan_history(
    archive: Archive, history: History, source: str, report: ImportReport
) -> list[NewVersion]:
    """The commits to write for one history, skipping what the archive already holds."""
    existing = archive.versions.blob_ids(history.service, history.type)
    present = {(v.date, blob) for v, blob in existing}
    last_blob = existing[-1][1] if existing else None
    have_any = bool(existing)
    planned = []
    for date, text, kind in history.versions:
        report.versions_read += 1
        blob = blob_sha(text.encode("utf-8"))
        if blob == last_blob:
            report.skipped_identical += 1
            continue
        last_blob = blob
        if (date, blob) in present:
            report.skipped_present += 1
            continue
        trailers_url = (history.url,) if history.url else ()
        planned.append(
            NewVersion(
                service=history.service,
                type=history.type,
                text=text,
                date=date,
                kind=kind if have_any else FIRST_RECORD,
                urls=trailers_url,
                extra_trailers=((IMPORTED_FROM, source),),
            )
        )
        have_any = True
    return planned


def import_histories(
    archive: Archive, path: Path, progress: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Import every history of a JSONL file into the archive, then update the index."""
    report = ImportReport()
    path = Path(path)
    total = path.stat().st_size if path.exists() else 0
    plans: list[list[NewVersion]] = []
    seen_keys: list[tuple[str, str]] = []
    position = 0
    for history in read_histories(path):
        report.histories += 1
        key = (history.service, history.type)
        if key in report.policies:
            raise ImportFormatError(
                f"{path}:{history.line}: {history.service} / "
                f"{history.type} appears twice in the file"
            )
        report.policies.add(key)
        seen_keys.append(key)
        policy_path(*key)  # raises UnsafeNameError for names that cannot be stored
        plans.append(plan_history(archive, history, path.name, report))
        if history.language:
            archive.state.set_meta(f"lang:{history.service}/{history.type}", history.language)
        position += sum(len(t) for _, t, _ in history.versions)
        if progress:
            progress(min(position, total), total)
    check_collisions(seen_keys + archive.versions.policies())
    ordered = list(merge_by_date(plans))
    if ordered:
        report.commits = archive.versions.bulk_import(ordered)
    archive.catch_up()
    return report


def merge_by_date(plans: Iterable[list[NewVersion]]) -> Iterator[NewVersion]:
    """Merge per-policy version lists by date, keeping each policy's own order."""
    return heapq.merge(*plans, key=lambda v: v.date)
