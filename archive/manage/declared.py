"""The policies the admin UI manages: Open Terms Archive declarations in a git repository.

The repository is ``config.declarations`` when set, else ``data_dir/declarations`` (which
:func:`archive.config.load_config` then loads too, so ``list`` and ``check`` see UI-added
policies). Each save writes ``<Service>.json`` (and, when the selectors of an existing entry
change, appends the old entry to ``<Service>.history.json`` with ``validUntil``) and commits it
authored by the user. A policy's language and interval, which the format has no key for, are
kept in the folder's ``policy-archive.toml``.

:class:`LivePolicies` gives the policies as they are now — config.toml's plus the repository's,
read again whenever the repository's HEAD moves — to the admin pages and to ``run``'s pickup.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from archive.config import (
    MANAGED_DECLARATIONS,
    Config,
    PolicyConfig,
    Selector,
    Source,
    _check_duplicates,
    _language,
    _policy_interval,
    check_url,
    parse_selector,
    policy_name,
)
from archive.config.declarations import (
    HISTORY_SUFFIX,
    SETTINGS_FILE,
    PolicyExtras,
    declaration_with,
    dump_json,
    dump_settings_file,
    history_with,
    load_declarations_dir,
    load_settings_file,
    selector_json,
    terms_entry,
    with_settings,
)
from archive.errors import ConfigError, ExtractError
from archive.extract.select import _compile as compile_css
from archive.extract.select import describe
from store.errors import UnsafeNameError
from store.git.declarations import Author, DeclarationsRepo
from store.paths import safe_component

MAX_SELECTORS = 50
MAX_SELECTOR_CHARS = 2000


def declarations_dir(config: Config) -> Path:
    """Where the admin UI's declarations live."""
    return config.declarations or config.data_dir / MANAGED_DECLARATIONS


def is_managed(config: Config, policy: PolicyConfig) -> bool:
    """Whether ``policy`` comes from the declarations repository (the UI may edit it)."""
    if not policy.origin.endswith(".json"):
        return False
    try:
        return Path(policy.origin).resolve().parent == declarations_dir(config).resolve()
    except OSError:
        return False


def _under(folder: Path, origin: str) -> bool:
    """Whether a policy's origin is a file in ``folder`` or below (re-read from it)."""
    if not origin.endswith(".json"):
        return False
    try:
        return Path(origin).resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def author_for(name: str) -> Author:
    """The git author of a user's edits (an address that names the user, never mailed)."""
    local = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "user"
    return Author(
        name=" ".join(name.split()) or "user", email=f"{local}@users.policy-archive.invalid"
    )


# --------------------------------------------------------------------------- live policies


class LivePolicies:
    """The policies as they are now, re-read when the declarations repository changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.folder = declarations_dir(config)
        self.repo = DeclarationsRepo(self.folder)
        self._fixed = tuple(p for p in config.policies if not _under(self.folder, p.origin))
        self._lock = threading.Lock()
        self._seen: tuple[Any, ...] | None = None
        self._policies: tuple[PolicyConfig, ...] = config.policies

    def _signature(self) -> tuple[Any, ...]:
        settings = self.folder / SETTINGS_FILE
        try:
            stamp = settings.stat().st_mtime_ns
        except OSError:
            stamp = None
        return (self.repo.head(), self.folder.is_dir(), stamp)

    def current(self) -> tuple[PolicyConfig, ...]:
        """Every policy now; raises ConfigError if the repository holds a broken declaration
        (the caller keeps what it had)."""
        signature = self._signature()
        with self._lock:
            if signature == self._seen:
                return self._policies
        loaded: list[PolicyConfig] = []
        if self.folder.is_dir():
            loaded = with_settings(load_declarations_dir(self.folder), self.folder)
        policies = [*self._fixed, *loaded]
        _check_duplicates(policies)
        with self._lock:
            self._seen = signature
            self._policies = tuple(policies)
            return self._policies

    def config_now(self) -> Config:
        return dataclasses.replace(self.config, policies=self.current())

    def find(self, service: str, type_: str) -> PolicyConfig | None:
        return next((p for p in self.current() if p.key == (service, type_)), None)


# --------------------------------------------------------------------------- the form


class FormErrors(Exception):
    """What is wrong with a submitted policy, field by field."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Draft:
    """A policy as submitted by the form, validated."""

    service: str
    type: str
    url: str
    select: tuple[Selector, ...] = ()
    remove: tuple[Selector, ...] = ()
    js: bool = False
    language: str | None = None
    interval: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)

    @property
    def source(self) -> Source:
        return Source(url=self.url, select=self.select, remove=self.remove, js=self.js)


def parse_selector_lines(text: str, field: str) -> tuple[Selector, ...]:
    """One selector per line: CSS, or a JSON range selector
    ``{"startBefore": "css", "endBefore": "css"}``. Raises ValueError with the line."""
    out: list[Selector] = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_SELECTORS:
        raise ValueError(f"at most {MAX_SELECTORS} selectors")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_SELECTOR_CHARS:
            raise ValueError(f"line {number} is over {MAX_SELECTOR_CHARS} characters")
        value: Any = line
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"line {number} is not a range selector: {exc.msg} (write it as "
                    '{"startBefore": "css", "endBefore": "css"})'
                ) from None
        try:
            selector = parse_selector(value, f"{field} line {number}")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        _check_css(selector, field, number)
        out.append(selector)
    return tuple(out)


def _check_css(selector: Selector, field: str, number: int) -> None:
    """Every CSS part of ``selector`` compiles as extraction compiles it."""
    parts = (
        [selector]
        if isinstance(selector, str)
        else [
            s
            for s in (
                selector.start_before,
                selector.start_after,
                selector.end_before,
                selector.end_after,
            )
            if s is not None
        ]
    )
    for part in parts:
        if not isinstance(part, str) or not part.strip():
            raise ValueError(f"{field} line {number}: {describe(selector)} has an empty part")
        try:
            compile_css(part)
        except ExtractError as exc:
            raise ValueError(
                f"line {number}: {exc}".replace("; fix it in the declaration", "")
            ) from None


def parse_form(form: Mapping[str, str]) -> Draft:
    """Validate the policy form's fields; raise :class:`FormErrors` naming each bad field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key in ("service", "type"):
        try:
            name = policy_name(form.get(key, ""), "form", key)
            safe = safe_component(name)
            if safe != name:
                raise ConfigError(
                    f"{name!r} cannot be a declaration's file name (it would be stored as "
                    f"{safe!r}); use {safe!r}"
                )
            values[key] = name
        except (ConfigError, UnsafeNameError) as exc:
            errors[key] = str(exc).removeprefix(f"form: {key} ")
    try:
        values["url"] = check_url(form.get("url", ""))
    except ValueError as exc:
        errors["url"] = str(exc)
    for key in ("select", "remove"):
        try:
            values[key] = parse_selector_lines(form.get(key, ""), key)
        except ValueError as exc:
            errors[key] = str(exc)
    language = form.get("language", "").strip()
    if language:
        try:
            values["language"] = _language(language, "form")
        except ValueError as exc:
            errors["language"] = str(exc)
    interval = form.get("interval", "").strip()
    if interval:
        try:
            _policy_interval(interval, "form")
            values["interval"] = interval
        except ValueError as exc:
            errors["interval"] = str(exc)
    if errors:
        raise FormErrors(errors)
    return Draft(js=form.get("js") in ("1", "on", "true"), **values)


def draft_of(policy: PolicyConfig, extras: PolicyExtras | None = None) -> Draft:
    """A managed policy as the form shows it (one source)."""
    source = policy.sources[0]
    return Draft(
        service=policy.service,
        type=policy.type,
        url=source.url,
        select=source.select,
        remove=source.remove,
        js=source.js,
        language=policy.language,
        interval=extras.interval if extras else None,
    )


def selector_lines(selectors: tuple[Selector, ...]) -> str:
    """Selectors as the form's text area shows them (the inverse of parse_selector_lines)."""
    lines = []
    for selector in selectors:
        value = selector_json(selector)
        lines.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return "\n".join(lines)


# --------------------------------------------------------------------------- saving


@dataclass(frozen=True)
class Saved:
    commit: str | None  # None: nothing changed
    selectors_changed: bool


class Declarations:
    """Writes the declarations repository (never config.toml)."""

    def __init__(self, config: Config, repo: DeclarationsRepo | None = None) -> None:
        self.config = config
        self.folder = declarations_dir(config)
        self.repo = repo or DeclarationsRepo(self.folder)

    @staticmethod
    def file_of(service: str) -> str:
        return f"{service}.json"

    @staticmethod
    def history_of(service: str) -> str:
        return f"{service}{HISTORY_SUFFIX}"

    def extras(self) -> dict[tuple[str, str], PolicyExtras]:
        return load_settings_file(self.folder)

    def _settings_bytes(self, draft: Draft | None, key: tuple[str, str]) -> bytes | None:
        extras = self.extras()
        before = extras.get(key)
        if draft is None:
            extras.pop(key, None)
        else:
            extras[key] = PolicyExtras(draft.language, draft.interval)
        if extras.get(key) == before and (self.folder / SETTINGS_FILE).is_file():
            return None  # unchanged: leave the file out of the commit
        return dump_settings_file(extras)

    def add(self, draft: Draft, author: Author, when: datetime) -> Saved:
        current = self.repo.read(self.file_of(draft.service))
        if current is not None and draft.type in json.loads(current).get("terms", {}):
            raise FormErrors({"type": f"{draft.service} already declares {draft.type!r}"})
        data = declaration_with(current, draft.service, draft.type, terms_entry(draft.source))
        files: dict[str, bytes | None] = {self.file_of(draft.service): dump_json(data)}
        settings = self._settings_bytes(draft, draft.key)
        if settings is not None:
            files[SETTINGS_FILE] = settings
        commit = self.repo.commit(files, f"Add {draft.service} {draft.type}", author, when)
        return Saved(commit, True)

    def update(self, draft: Draft, author: Author, when: datetime, valid_until: datetime) -> Saved:
        """Replace the entry of ``draft``'s policy; the old entry goes to the history, valid
        until ``valid_until``, when its sources change."""
        path = self.file_of(draft.service)
        current = self.repo.read(path)
        terms = json.loads(current).get("terms", {}) if current is not None else {}
        previous = terms.get(draft.type)
        if previous is None:
            raise FormErrors({"type": f"{draft.service} does not declare {draft.type!r}"})
        entry = terms_entry(draft.source)
        files: dict[str, bytes | None] = {
            path: dump_json(declaration_with(current, draft.service, draft.type, entry))
        }
        changed = previous != entry
        if changed:
            history_path = self.history_of(draft.service)
            history = history_with(self.repo.read(history_path), draft.type, previous, valid_until)
            files[history_path] = dump_json(history)
        settings = self._settings_bytes(draft, draft.key)
        if settings is not None:
            files[SETTINGS_FILE] = settings
        subject = f"Update {draft.service} {draft.type}" + (" selectors" if changed else "")
        return Saved(self.repo.commit(files, subject, author, when), changed)

    def remove(self, service: str, type_: str, author: Author, when: datetime) -> Saved:
        """Stop declaring the policy (its versions and this repository's history stay)."""
        path = self.file_of(service)
        current = self.repo.read(path)
        terms = json.loads(current).get("terms", {}) if current is not None else {}
        previous = terms.get(type_)
        if previous is None:
            raise FormErrors({"type": f"{service} does not declare {type_!r}"})
        data = declaration_with(current, service, type_, None)
        files: dict[str, bytes | None] = {path: dump_json(data) if data is not None else None}
        history_path = self.history_of(service)
        files[history_path] = dump_json(
            history_with(self.repo.read(history_path), type_, previous, when)
        )
        settings = self._settings_bytes(None, (service, type_))
        if settings is not None:
            files[SETTINGS_FILE] = settings
        return Saved(
            self.repo.commit(files, f"Stop tracking {service} {type_}", author, when), True
        )


def valid_until_for(snapshot_date: datetime | None, now: datetime) -> datetime:
    """When the replaced selectors stop being valid: just before the latest snapshot (which
    the new selectors are re-extracted from), else now."""
    if snapshot_date is None:
        return now
    return min(now, snapshot_date - timedelta(seconds=1))
