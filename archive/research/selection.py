"""What an export holds: the versions a query selects, as metadata, and their texts one by one.

:func:`select` reads the version list once (the store caches it) and groups it by policy;
:func:`texts` then reads one text at a time, so no export holds more than one text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from archive.app import Archive
from archive.config import Config, PolicyConfig
from archive.errors import ArchiveError
from store.errors import UnsafeNameError
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, Version
from store.paths import safe_component

Progress = Callable[[int, int], None]

# Our commit kinds under the names the JSONL importer (and the OTA corpus) use.
EXPORT_KINDS = {FIRST_RECORD: "first_record", CHANGE: "change", REEXTRACT: "technical_upgrade"}


class ExportError(ArchiveError):
    """An export was asked for with options it cannot honour (unknown format or policy)."""


@dataclass(frozen=True)
class ExportQuery:
    """What to export: every version, or the archive as it stood at ``at``; optional filters."""

    at: datetime | None = None
    service: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Item:
    """One version to export, with when it stopped being current (None: still current)."""

    version: Version
    valid_to: datetime | None


@dataclass(frozen=True)
class PolicyItems:
    """The versions of one policy to export, oldest first, with the policy's metadata."""

    service: str
    type: str
    language: str | None
    url: str | None
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Selection:
    """Everything an export will write, as metadata only (no texts)."""

    query: ExportQuery
    head: str | None
    policies: tuple[PolicyItems, ...]

    @property
    def versions(self) -> int:
        return sum(len(p.items) for p in self.policies)

    @property
    def services(self) -> int:
        return len({p.service for p in self.policies})

    def date_range(self) -> tuple[datetime, datetime] | None:
        dates = [i.version.date for p in self.policies for i in p.items]
        return (min(dates), max(dates)) if dates else None


def select(archive: Archive, query: ExportQuery) -> Selection:
    """The versions ``query`` asks for, grouped by policy (sorted by service and type).

    With ``query.at``, each policy contributes the one version in force at that moment (see
    :func:`in_force`); policies first recorded later are left out. The version list is read
    once for the whole archive (one look at git), not once per policy.
    """
    head = archive.versions.head()
    histories: dict[tuple[str, str], list[Version]] = {}
    for version in archive.versions.log():
        histories.setdefault(version.key, []).append(version)
    keys = sorted(histories)
    if query.service is not None:
        keys = [k for k in keys if k[0] == query.service]
        if not keys:
            raise ExportError(f"the archive has no policy of service {query.service!r}")
    if query.type is not None:
        keys = [k for k in keys if k[1] == query.type]
        if not keys:
            where = f"of service {query.service!r} " if query.service else ""
            raise ExportError(f"the archive has no {query.type!r} document {where}".rstrip())
    configured = configured_policies(archive.config)
    policies = []
    for key in keys:
        items = _items(histories[key], query.at)
        if items:
            policy = configured.get(key)
            policies.append(
                PolicyItems(
                    service=key[0],
                    type=key[1],
                    language=archive.state.get_meta(f"lang:{key[0]}/{key[1]}")
                    or (policy.language if policy else None),
                    url=policy.urls[0] if policy and policy.urls else histories[key][-1].url,
                    items=items,
                )
            )
    return Selection(query=query, head=head, policies=tuple(policies))


def configured_policies(config: Config) -> dict[tuple[str, str], PolicyConfig]:
    """Configured policies by the names they are stored under (names are sanitised)."""
    out = {}
    for policy in config.policies:
        try:
            out[(safe_component(policy.service), safe_component(policy.type))] = policy
        except UnsafeNameError:
            continue
    return out


def in_force(history: list[Version], when: datetime) -> Version | None:
    """The version in force at ``when``: the latest observed at or before it, the later
    record on a tie (the rule of :meth:`VersionStore.at`, applied to a history in hand)."""
    best = None
    for version in history:
        if version.date <= when and (best is None or version.date >= best.date):
            best = version
    return best


def _items(history: list[Version], at: datetime | None) -> tuple[Item, ...]:
    # valid_to as VersionStore.valid_to defines it (the next version's date), in one pass.
    items = [
        Item(v, history[i + 1].date if i + 1 < len(history) else None)
        for i, v in enumerate(history)
    ]
    if at is None:
        return tuple(items)
    chosen = in_force(history, at)
    return tuple(i for i in items if chosen is not None and i.version.id == chosen.id)


def texts(
    archive: Archive, selection: Selection, progress: Progress | None
) -> Iterator[tuple[PolicyItems, int, Item, str]]:
    """(policy, position in policy, item, text), reading one text at a time."""
    total, done = selection.versions, 0
    for policy in selection.policies:
        for position, item in enumerate(policy.items):
            text = read_text(archive, item.version)
            done += 1
            if progress is not None:
                progress(done, total)
            yield policy, position, item, text


def read_text(archive: Archive, version: Version) -> str:
    """The text of a listed version (see :meth:`VersionStore.read_text_at`: no HEAD check per
    text, which would be 3/4 of the cost of an export)."""
    return archive.versions.read_text_at(version)


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def to_json(obj: object) -> str:
    """UTF-8 JSON on one line, even for readers that also break lines at U+2028, U+2029 or
    NEL (``str.splitlines``, JavaScript): those are written as ``\\u`` escapes."""
    text = json.dumps(obj, ensure_ascii=False)
    for char, escaped in _LINE_BREAKS.items():
        if char in text:
            text = text.replace(char, escaped)
    return text
