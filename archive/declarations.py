"""Open Terms Archive declarations: ``<Service>.json`` files with ``name`` and ``terms``.

A declaration's service id is its file name (as in Open Terms Archive's versions repositories);
``name`` is only a display name. ``*.history.json`` and ``*.filters.js`` files are skipped:
the first hold past declarations, the second custom JavaScript that we cannot run (terms that
name such filters are still tracked, and their filter names are kept on the source).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from archive.config import PolicyConfig, Source, check_url, parse_selectors
from archive.errors import ConfigError

TERMS_KEYS = {"fetch", "select", "remove", "executeClientScripts", "filter", "combine"}
COMBINE_KEYS = {"fetch", "select", "remove", "executeClientScripts", "filter"}


def _sources(terms: Mapping[str, Any], where: str) -> tuple[Source, ...]:
    unknown = set(terms) - TERMS_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known keys are {', '.join(sorted(TERMS_KEYS))}"
        )
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
    """The sources of one terms entry (used by ``policy-archive extract --declaration``)."""
    return _sources(terms, where)


def load_declaration_file(path: Path) -> list[PolicyConfig]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read declaration: {exc}") from None
    return list(policies_from_declaration(data, path.stem, str(path)))


def load_declarations_dir(folder: Path) -> list[PolicyConfig]:
    """Every ``<Service>.json`` below ``folder`` (recursively), sorted by path."""
    if not folder.is_dir():
        raise ConfigError(f"declarations = {str(folder)!r}: no such folder; fix the path")
    policies: list[PolicyConfig] = []
    for path in sorted(folder.rglob("*.json")):
        if path.name.endswith(".history.json"):
            continue
        policies.extend(load_declaration_file(path))
    return policies
