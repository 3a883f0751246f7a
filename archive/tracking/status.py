"""The read models of "the policies with their status" and "a policy's history".

One home for both questions, so ``policy-archive list``, ``history``, the /policies page and
the JSON API give the same answers: one row per policy that is configured or has a version in
git (keyed by the names the user wrote, as git's trailers and the config say), with the status
of its last check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archive.config import Config, PolicyConfig
from store.git.versions import Version, VersionStore
from store.state import PolicyState, State

FAILING = "failing"
ERROR = "error"
HELD_BACK = "held_back"
OK = "ok"
NOT_CHECKED = "not_checked"
HEALTH = (FAILING, ERROR, HELD_BACK, OK, NOT_CHECKED)
"""What the last check said: failing (failures counted and retried), error (not fetched, not
counted as a failure: e.g. a policy that needs a browser), held back (a much shorter text
waits for the next check to confirm it), ok, or never checked."""


def health_of(state: PolicyState) -> str:
    """One of :data:`HEALTH` for a policy's state: what its last check said."""
    if state.failing:
        return FAILING
    if state.last_error:
        return ERROR
    if state.suspect_hash:
        return HELD_BACK
    return OK if state.last_check else NOT_CHECKED


def status_text(state: PolicyState) -> str:
    """The status in words, with the last error: what ``list`` prints."""
    status = health_of(state)
    if status == FAILING:
        return f"failing ×{state.failures}: {state.last_error}"
    if status == ERROR:
        return state.last_error or ""
    if status == HELD_BACK:
        since = state.suspect_since.isoformat() if state.suspect_since else "the last check"
        return f"held back since {since}"
    return "ok" if status == OK else "not checked"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class StoredPolicy:
    """What git and the config say about a policy (changes only when HEAD or config does)."""

    service: str
    type: str
    history: list[Version]
    config: PolicyConfig | None
    imported_language: str | None = None


@dataclass(frozen=True)
class PolicyRow:
    """A policy with its versions, configuration and the state of its last check."""

    service: str
    type: str
    history: list[Version]
    config: PolicyConfig | None
    state: PolicyState
    imported_language: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)

    @property
    def configured(self) -> bool:
        return self.config is not None

    @property
    def current(self) -> Version | None:
        return self.history[-1] if self.history else None

    @property
    def last_change(self) -> str | None:
        current = self.current
        return current.date.isoformat() if current else None

    @property
    def language(self) -> str | None:
        configured = self.config.language if self.config else None
        return configured or self.imported_language

    @property
    def urls(self) -> tuple[str, ...]:
        if self.config:
            return self.config.urls
        current = self.current
        url = current.url if current else None
        # only web addresses become links: an imported trailer could say javascript:...
        return (url,) if url and url.lower().startswith(("http://", "https://")) else ()

    @property
    def health(self) -> str:
        return health_of(self.state)

    @property
    def status_text(self) -> str:
        return status_text(self.state)

    def as_json(self) -> dict[str, Any]:
        """The ``list --json`` shape."""
        st = self.state
        return {
            "service": self.service,
            "type": self.type,
            "versions": len(self.history),
            "configured": self.configured,
            "last_check": _iso(st.last_check),
            "last_change": self.last_change,
            "failures": st.failures,
            "last_error": st.last_error,
            "health": self.health,
            "last_success": _iso(st.last_success),
            "transient": st.last_error_transient,
            "held_back_since": _iso(st.suspect_since) if st.suspect_hash else None,
            "language": self.language,
        }


def imported_language(state: State, service: str, type_: str) -> str | None:
    """The language an import recorded for a policy that is not in the configuration."""
    return state.get_meta(f"lang:{service}/{type_}")


def stored_policies(config: Config, versions: VersionStore, state: State) -> list[StoredPolicy]:
    """Every policy that is configured or has a version, sorted by (service, type)."""
    configured = {policy.key: policy for policy in config.policies}
    out = []
    for service, type_ in sorted(set(configured) | set(versions.policies())):
        policy = configured.get((service, type_))
        language = None if policy else imported_language(state, service, type_)
        out.append(StoredPolicy(service, type_, versions.history(service, type_), policy, language))
    return out


def with_state(
    stored: Iterable[StoredPolicy], states: Mapping[tuple[str, str], PolicyState]
) -> list[PolicyRow]:
    """The rows of ``stored`` with each policy's state (a blank state if never checked)."""
    rows = []
    for p in stored:
        st = states.get((p.service, p.type)) or PolicyState(service=p.service, type=p.type)
        rows.append(PolicyRow(p.service, p.type, p.history, p.config, st, p.imported_language))
    return rows


def policy_rows(config: Config, versions: VersionStore, state: State) -> list[PolicyRow]:
    """The policies with their status: one row per configured or recorded policy."""
    return with_state(stored_policies(config, versions, state), state.all())


def counts(rows: Sequence[PolicyRow]) -> dict[str, Any]:
    """Policies, versions, the last check and how many policies are failing."""
    checks = [r.state.last_check for r in rows if r.state.last_check]
    return {
        "policies": len(rows),
        "versions": sum(len(r.history) for r in rows),
        "last_check": _iso(max(checks)) if checks else None,
        "failing": sum(1 for r in rows if r.state.failing),
    }


def history_json(history: Iterable[Version]) -> list[dict[str, str | None]]:
    """A policy's history, oldest first: the ``history --json`` and API versions shape."""
    return [version.as_json() for version in history]
