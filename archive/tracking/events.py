"""Events the pipeline emits, and the dispatcher that hands them to listeners.

Listeners (alerts, saved searches) must never break tracking: an exception in one is logged
with its traceback and the others still run. A listener that needs to survive a crash between
the commit and its own bookkeeping also implements ``catch_up``, called when a writer opens the
archive (see :class:`archive.app.Archive`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from archive.config import PolicyConfig
from store.git.versions import Version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionRecorded:
    """A first record or a change (never a Re-extract commit)."""

    version: Version
    previous: Version | None
    policy: PolicyConfig | None = None
    name: str = "version_recorded"


@dataclass(frozen=True)
class PolicyFailing:
    """A policy reached ``failure_alert_after`` consecutive failures (sent once per streak)."""

    service: str
    type: str
    failures: int
    reason: str
    transient: bool
    name: str = "policy_failing"


@dataclass(frozen=True)
class PolicyRecovered:
    """A policy that was reported failing was fetched successfully again."""

    service: str
    type: str
    failures: int
    name: str = "policy_recovered"


Event = VersionRecorded | PolicyFailing | PolicyRecovered
Listener = Callable[[Event], None]


class Dispatcher:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a failing listener must not stop tracking: logged, not hidden
                log.exception("listener %r failed on %s", listener, event.name)
