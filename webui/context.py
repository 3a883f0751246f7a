"""What every request reads: the app's archive, caches and the parsing of request arguments.

Helpers here turn bad input into HTTP errors with a message that says what was wrong
(400), and names that match nothing into 404s, so views stay short.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask import abort, current_app, request

from archive.app import Archive
from archive.config import Config, PolicyConfig
from archive.dates import DateError, parse_when
from archive.diff import DiffCache
from archive.tracking.status import PolicyRow
from store.cache import LRU
from store.errors import UnsafeNameError
from store.git.versions import Version
from store.paths import safe_component
from webui.render import Renderer

EXTENSION = "policy_archive"
VERSION_ID = re.compile(r"^[0-9a-f]{7,40}$")
MAX_LIST_PAGE = 10_000
"""Highest page of a listing (changes); search results stop at archive.search.MAX_PAGE."""
T = TypeVar("T")


RENDERED_BYTES = 32_000_000
"""Rendered HTML of versions kept in memory (the largest policies are ~1 MB each)."""


@dataclass
class WebState:
    """The app's archive and caches (kept in ``app.extensions``, never in a module global)."""

    config: Config
    archive: Archive
    owns_archive: bool = False
    diffs: DiffCache = field(default_factory=DiffCache)
    rendered: LRU[str, str] = field(
        default_factory=lambda: LRU(maxsize=256, max_bytes=RENDERED_BYTES)
    )
    word_counts: LRU[str, int] = field(default_factory=lambda: LRU(maxsize=50_000))
    renderer: Renderer = field(default_factory=Renderer)
    _closed: bool = False
    _per_head: dict[str, tuple[str | None, Any]] = field(default_factory=dict)
    _per_head_lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        if self.owns_archive and not self._closed:
            self._closed = True
            self.archive.close()

    def per_head(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, cached until the versions repository's HEAD moves (one value per
        name: read models of the whole archive, like the home page's)."""
        head = self.archive.versions.head()
        with self._per_head_lock:
            hit = self._per_head.get(name)
            if hit is not None and hit[0] == head:
                return hit[1]
        value = compute()  # outside the lock; computed from HEAD or later: never too old
        with self._per_head_lock:
            self._per_head[name] = (head, value)
        return value

    def newest_first(self) -> list[Version]:
        """Every version across the archive, newest observation first (cached per HEAD)."""
        versions = self.archive.versions
        return self.per_head(
            "newest_first", lambda: sorted(versions.log(), key=lambda v: v.date, reverse=True)
        )

    def word_count(self, version: Version) -> int:
        """Words in a version's text (cached: a version never changes)."""

        def count() -> int:
            text = self.archive.versions.text(version.service, version.type, version.id)
            return len(text.split())

        return self.word_counts.get(version.id, count)

    def render(self, version: Version) -> str:
        """A version's Markdown as sanitised HTML (cached by version id, bounded in bytes)."""

        def html() -> str:
            text = self.archive.versions.text(version.service, version.type, version.id)
            return self.renderer.markdown(text)

        return self.rendered.get(version.id, html)


def web_state() -> WebState:
    return current_app.extensions[EXTENSION]


def archive() -> Archive:
    return web_state().archive


# --------------------------------------------------------------------------- policies


PolicyRef = PolicyRow
"""A policy named in a URL: the read model's row (archive/tracking/status.py), one home."""


def configured_policy(config: Config, service: str, type_: str) -> PolicyConfig | None:
    """The configured policy stored under these names (names are sanitised for storage)."""
    exact = config.policy(service, type_)
    if exact is not None:
        return exact
    for policy in config.policies:
        try:
            if (safe_component(policy.service), safe_component(policy.type)) == (service, type_):
                return policy
        except UnsafeNameError:
            continue
    return None


def stored_names(policy: PolicyConfig) -> tuple[str, str]:
    """The names a configured policy is stored (and linked) under."""
    return safe_component(policy.service), safe_component(policy.type)


def policy_or_404(service: str, type_: str) -> PolicyRef:
    arch = archive()
    history = arch.versions.history(service, type_)
    config = configured_policy(arch.config, service, type_)
    if not history and config is None:
        abort(404, description=f"There is no policy {service!r} / {type_!r} in this archive.")
    state_key = config.key if config else (service, type_)
    state = arch.state.get(*state_key)
    language = None if config else imported_language(service, type_)
    return PolicyRef(service, type_, history, config, state, language)


def imported_language(service: str, type_: str) -> str | None:
    """The language an import recorded for a policy that is not in the configuration."""
    return archive().state.get_meta(f"lang:{service}/{type_}")


def version_in(ref: PolicyRef, version_id: str, name: str = "version") -> Version:
    """The version named ``version_id`` (checked to look like a commit id) of a policy."""
    if not VERSION_ID.match(version_id):
        abort(
            400,
            description=f"{name}: {version_id[:60]!r} is not a version id "
            "(7 to 40 lowercase hexadecimal characters).",
        )
    matches = [v for v in ref.history if v.id.startswith(version_id)]
    if not matches:
        abort(404, description=f"{ref.service} {ref.type} has no version {version_id}.")
    if len(matches) > 1:
        abort(400, description=f"{name}: {version_id} is ambiguous; give more characters.")
    return matches[0]


# --------------------------------------------------------------------------- arguments


def text_arg(name: str, *, max_chars: int | None = None) -> str:
    """The argument's text, at most ``max_chars`` long. Queries and phrases are given no
    bound here: the search engine checks them, so the web and the CLI refuse the same ones
    with the same message (the query string as a whole is capped by webui.security)."""
    value = request.args.get(name, "").strip()
    if max_chars is not None and len(value) > max_chars:
        abort(400, description=f"{name} is too long: at most {max_chars} characters.")
    return value


def flag_arg(name: str) -> bool:
    value = request.args.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    abort(400, description=f"{name} must be 1 or 0, not {value[:40]!r}.")


def int_arg(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def page_arg(high: int = MAX_LIST_PAGE) -> int:
    return int_arg("page", 1, low=1, high=high)


def date_arg(name: str, *, end_of_day: bool = True) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return parse_when(raw[:64], end_of_day=end_of_day)
    except DateError as exc:
        abort(400, description=f"{name}: {exc}")


def choice_arg(name: str, choices: tuple[str, ...]) -> str:
    value = request.args.get(name, "").strip() or choices[0]
    if value not in choices:
        abort(400, description=f"{name} must be one of {', '.join(choices)}.")
    return value
