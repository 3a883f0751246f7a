"""Open Terms Archive declarations: ``<Service>.json`` files with ``name`` and ``terms``.

A declaration's service id is its file name (as in Open Terms Archive's versions repositories);
``name`` is only a display name. ``*.filters.js`` files hold custom JavaScript that we cannot
run (terms that name such filters are still tracked, and their filter names are kept on the
source).

``<Service>.history.json`` beside ``<Service>.json`` keeps the past declarations: for each terms
type a list of entries, each with the keys of a terms entry plus ``validUntil`` (an ISO 8601
date). As in Open Terms Archive (services/index.js), the declaration valid at a date is the
entry with the earliest ``validUntil`` on or after that date, else the current one. Tracking
always uses the current declaration; re-extraction and ``extract --declaration --date`` use the
one valid at the snapshot's date (:func:`declaration_at`, :func:`policy_at`). History files are
read only when asked for, so a broken history never stops tracking.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.config import (
    PolicyConfig,
    Selector,
    Source,
    _language,
    _policy_interval,
    check_url,
    parse_duration,
    parse_selectors,
)
from archive.dates import DateError, parse_when
from archive.errors import ConfigError

TERMS_KEYS = {
    "fetch",
    "select",
    "remove",
    "executeClientScripts",
    "filter",
    "combine",
    "validUntil",
}
COMBINE_KEYS = {"fetch", "select", "remove", "executeClientScripts", "filter"}
HISTORY_SUFFIX = ".history.json"


def _sources(terms: Mapping[str, Any], where: str) -> tuple[Source, ...]:
    unknown = set(terms) - TERMS_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known keys are {', '.join(sorted(TERMS_KEYS))}"
        )
    if "validUntil" in terms:
        valid_until(terms, where)
    select = parse_selectors(terms.get("select"), where)
    remove = parse_selectors(terms.get("remove"), where)
    js = bool(terms.get("executeClientScripts", False))
    filters = tuple(terms.get("filter", []) or [])
    parts = terms.get("combine")
    if parts is None:
        if "fetch" not in terms:
            raise ConfigError(f"{where}: needs 'fetch' (a URL) or 'combine' (a list of sources)")
        parts = [{"fetch": terms["fetch"]}]
    elif "fetch" in terms:
        raise ConfigError(f"{where}: give either 'fetch' or 'combine', not both")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{where}: 'combine' must be a non-empty list of sources")
    sources = []
    for i, part in enumerate(parts):
        pwhere = f"{where} combine[{i}]"
        if not isinstance(part, Mapping) or "fetch" not in part:
            raise ConfigError(f"{pwhere}: each combined source needs 'fetch'")
        unknown = set(part) - COMBINE_KEYS
        if unknown:
            raise ConfigError(f"{pwhere}: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            url = check_url(part["fetch"])
        except ValueError as exc:
            raise ConfigError(f"{pwhere}: {exc}") from None
        sources.append(
            Source(
                url=url,
                select=parse_selectors(part["select"], pwhere) if "select" in part else select,
                remove=parse_selectors(part["remove"], pwhere) if "remove" in part else remove,
                js=bool(part.get("executeClientScripts", js)),
                filters=tuple(part.get("filter", filters) or ()),
            )
        )
    return tuple(sources)


def valid_until(terms: Mapping[str, Any], where: str) -> datetime:
    """The ``validUntil`` of a history entry, as an aware datetime.

    A bare date (``2023-06-01``) means the start of that day in UTC, as JavaScript's
    ``new Date("2023-06-01")`` reads it in Open Terms Archive.
    """
    value = terms.get("validUntil")
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: a history entry needs 'validUntil', an ISO 8601 date such as "
            '"2023-06-01T00:00:00Z" (the last moment this declaration was valid)'
        )
    try:
        return parse_when(value, end_of_day=False)
    except DateError as exc:
        raise ConfigError(f"{where}: validUntil {exc}") from None


def policies_from_declaration(data: Any, service: str, origin: str) -> Iterator[PolicyConfig]:
    """The policies of one parsed declaration file."""
    if not isinstance(data, Mapping) or not isinstance(data.get("terms"), Mapping):
        raise ConfigError(
            f"{origin}: not an Open Terms Archive declaration "
            "(expected an object with 'name' and 'terms')"
        )
    for type_, terms in data["terms"].items():
        where = f"{origin}: terms {type_!r}"
        if not isinstance(terms, Mapping):
            raise ConfigError(f"{where}: expected an object")
        yield PolicyConfig(
            service=service, type=type_, sources=_sources(terms, where), origin=origin
        )


def terms_sources(terms: Mapping[str, Any], where: str = "declaration") -> tuple[Source, ...]:
    """The sources of one terms entry, current or from a history (``validUntil`` is allowed)."""
    return _sources(terms, where)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read declaration: {exc}") from None


def load_declaration_file(path: Path) -> list[PolicyConfig]:
    return list(policies_from_declaration(_read_json(path), path.stem, str(path)))


def load_declarations_dir(folder: Path) -> list[PolicyConfig]:
    """Every ``<Service>.json`` below ``folder`` (recursively), sorted by path.

    These are the current declarations, the ones tracking uses; history files are skipped.
    """
    if not folder.is_dir():
        raise ConfigError(f"declarations = {str(folder)!r}: no such folder; fix the path")
    policies: list[PolicyConfig] = []
    for path in sorted(folder.rglob("*.json")):
        if path.name.endswith(HISTORY_SUFFIX):
            continue
        policies.extend(load_declaration_file(path))
    return policies


# ------------------------------------------------------------------ history


@dataclass(frozen=True)
class HistoryEntry:
    """One past declaration of a terms type: valid up to and including ``valid_until``."""

    valid_until: datetime
    sources: tuple[Source, ...]


def history_path(path: Path) -> Path:
    """``<Service>.history.json`` beside ``<Service>.json``."""
    return path.with_name(path.name.removesuffix(".json") + HISTORY_SUFFIX)


def _current_path(path: Path) -> Path:
    """``<Service>.json`` for either ``<Service>.json`` or ``<Service>.history.json``."""
    if path.name.endswith(HISTORY_SUFFIX):
        return path.with_name(path.name.removesuffix(HISTORY_SUFFIX) + ".json")
    return path


def load_history(path: Path) -> dict[str, list[HistoryEntry]]:
    """The entries of a ``<Service>.history.json`` per terms type, oldest ``validUntil`` first.

    A missing file is an empty history; a malformed one is a ConfigError naming the entry.
    """
    if not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: not an Open Terms Archive history file "
            '(expected an object: {"<terms type>": [entries with validUntil]})'
        )
    history: dict[str, list[HistoryEntry]] = {}
    for type_, entries in data.items():
        where = f"{path}: terms {type_!r}"
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: expected a list of past declarations ([...], not {{...}})")
        parsed = []
        for i, terms in enumerate(entries):
            ewhere = f"{where} entry {i + 1}"
            if not isinstance(terms, Mapping):
                raise ConfigError(f"{ewhere}: expected an object")
            parsed.append(HistoryEntry(valid_until(terms, ewhere), _sources(terms, ewhere)))
        history[type_] = sorted(parsed, key=lambda entry: entry.valid_until)
    return history


def entry_at(entries: list[HistoryEntry], when: datetime) -> HistoryEntry | None:
    """The entry valid at ``when`` (the first whose validUntil is at or after it), if any.

    A naive ``when`` is taken as UTC.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return next((entry for entry in entries if when <= entry.valid_until), None)


def declaration_at(path: Path, type_: str, when: datetime) -> PolicyConfig:
    """The declaration of ``type_`` valid at ``when``, from ``path`` and its history file.

    ``path`` is a ``<Service>.json`` (or its ``.history.json``); ``when`` an aware datetime,
    for instance a snapshot's date. A date after every ``validUntil`` gets the current
    declaration. Raises ConfigError when neither file declares ``type_`` at that date.
    """
    current_path = _current_path(path)
    service = current_path.stem
    current: PolicyConfig | None = None
    types: list[str] = []
    if current_path.is_file():
        for policy in load_declaration_file(current_path):
            types.append(policy.type)
            if policy.type == type_:
                current = policy
    history = load_history(history_path(current_path))
    entry = entry_at(history.get(type_, []), when)
    if entry is not None:
        return PolicyConfig(
            service=service, type=type_, sources=entry.sources, origin=str(current_path)
        )
    if current is not None:
        return current
    types.extend(t for t in history if t not in types)
    known = f"; it declares {', '.join(types)}" if types else ""
    raise ConfigError(
        f"{current_path}: no declaration of {type_!r} valid at {when.isoformat()}{known}"
    )


def policy_at(policy: PolicyConfig, when: datetime) -> PolicyConfig:
    """``policy`` with the sources its declaration had at ``when``.

    Only policies loaded from a declaration file (``origin`` is its path) can have a history;
    others, and those without a ``.history.json`` entry valid at ``when``, come back unchanged.
    """
    if not policy.origin.endswith(".json"):
        return policy
    entries = load_history(history_path(Path(policy.origin))).get(policy.type, [])
    entry = entry_at(entries, when)
    if entry is None:
        return policy
    return dataclasses.replace(policy, sources=entry.sources)


# ------------------------------------------------------------------ writing (the admin UI)

SETTINGS_FILE = "policy-archive.toml"
"""Beside the declarations: what the Open Terms Archive format has no key for (a policy's
language and check interval), so the ``<Service>.json`` files stay valid declarations."""


def selector_json(selector: Selector) -> str | dict[str, str]:
    """A selector as a declaration writes it: a CSS string or a range object."""
    if isinstance(selector, str):
        return selector
    keys = {
        "startBefore": selector.start_before,
        "startAfter": selector.start_after,
        "endBefore": selector.end_before,
        "endAfter": selector.end_after,
    }
    return {k: v for k, v in keys.items() if v is not None}


def _selectors_json(selectors: tuple[Selector, ...]) -> Any:
    items = [selector_json(s) for s in selectors]
    return items[0] if len(items) == 1 else items


def terms_entry(source: Source) -> dict[str, Any]:
    """The terms entry of a one-page document, in Open Terms Archive's key order."""
    entry: dict[str, Any] = {"fetch": source.url}
    if source.select:
        entry["select"] = _selectors_json(source.select)
    if source.remove:
        entry["remove"] = _selectors_json(source.remove)
    if source.filters:
        entry["filter"] = list(source.filters)
    if source.js:
        entry["executeClientScripts"] = True
    return entry


def dump_json(data: Any) -> bytes:
    """A declaration or history file as Open Terms Archive writes them (2-space indent)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def declaration_with(
    current: bytes | None, service: str, type_: str, entry: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The declaration file's data with ``type_`` set to ``entry`` (None: removed).

    Returns None when no terms are left (the file is then deleted)."""
    data: dict[str, Any] = {"name": service, "terms": {}}
    if current is not None:
        loaded = json.loads(current.decode("utf-8"))
        if isinstance(loaded, dict) and isinstance(loaded.get("terms"), dict):
            data = loaded
    terms = dict(data["terms"])
    if entry is None:
        terms.pop(type_, None)
    else:
        terms[type_] = dict(entry)
    if not terms:
        return None
    return {**data, "terms": terms}


def history_with(
    current: bytes | None, type_: str, previous: Mapping[str, Any], until: datetime
) -> dict[str, Any]:
    """The history file's data with ``previous`` (the entry being replaced) appended as valid
    until ``until``."""
    data: dict[str, Any] = {}
    if current is not None:
        loaded = json.loads(current.decode("utf-8"))
        if isinstance(loaded, dict):
            data = loaded
    entries = list(data.get(type_, []))
    stamp = until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries.append(
        {**{k: v for k, v in previous.items() if k != "validUntil"}, "validUntil": stamp}
    )
    return {**data, type_: entries}


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class PolicyExtras:
    """A declared policy's settings kept in :data:`SETTINGS_FILE`."""

    language: str | None = None
    interval: str | None = None  # as typed, e.g. "6h" (validated)


def load_settings_file(folder: Path) -> dict[tuple[str, str], PolicyExtras]:
    """``{(service, type): extras}`` from ``folder``'s :data:`SETTINGS_FILE` (may be absent)."""
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    out: dict[tuple[str, str], PolicyExtras] = {}
    services = raw.get("policy", {})
    if not isinstance(services, Mapping):
        raise ConfigError(f'{path}: expected [policy."<service>"."<type>"] tables')
    for service, types in services.items():
        if not isinstance(types, Mapping):
            raise ConfigError(f"{path}: policy {service!r}: expected a table per document type")
        for type_, values in types.items():
            where = f"{path}: policy {service!r} / {type_!r}"
            if not isinstance(values, Mapping) or set(values) - {"language", "interval"}:
                raise ConfigError(f"{where}: only language and interval may be set here")
            try:
                language = values.get("language")
                if language is not None:
                    _language(language, where)
                interval = values.get("interval")
                if interval is not None:
                    _policy_interval(interval, where)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            out[(service, type_)] = PolicyExtras(language, interval)
    return out


def dump_settings_file(extras: Mapping[tuple[str, str], PolicyExtras]) -> bytes:
    lines = [
        "# Written by Policy Archive's admin UI: the settings of the declarations in this folder",
        "# that the Open Terms Archive format has no key for.",
    ]
    for (service, type_), values in sorted(extras.items()):
        if values.language is None and values.interval is None:
            continue
        lines += ["", f"[policy.{_toml_string(service)}.{_toml_string(type_)}]"]
        if values.language is not None:
            lines.append(f"language = {_toml_string(values.language)}")
        if values.interval is not None:
            lines.append(f"interval = {_toml_string(values.interval)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def with_settings(policies: list[PolicyConfig], folder: Path) -> list[PolicyConfig]:
    """``policies`` (loaded from ``folder``) with the language and interval its
    :data:`SETTINGS_FILE` gives them."""
    extras = load_settings_file(folder)
    if not extras:
        return policies
    out = []
    for policy in policies:
        found = extras.get(policy.key)
        if found is not None:
            policy = dataclasses.replace(
                policy,
                language=found.language or policy.language,
                interval=parse_duration(found.interval) if found.interval else policy.interval,
            )
        out.append(policy)
    return out
