"""Events → alerts: the listener that fills the outbox after each commit.

The outbox is kept in step with git by a cursor (the last version commit looked at, in
``meta``): on every :class:`VersionRecorded`, and at every catch-up (writer start, after bulk
work), the versions after the cursor are turned into alerts and queued, and the cursor moves,
in one SQLite transaction. A crash between a commit and its alerts is repaired by the next
catch-up; queuing is idempotent, so nothing is sent twice. Re-extract commits alert nobody, and
a catch-up skips versions observed more than :data:`CATCH_UP_HORIZON` ago (a bulk import of
old histories is not news).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from archive.events import Event, PolicyFailing, PolicyRecovered, VersionRecorded
from archive.notify import content
from archive.notify.errors import NotifyError
from archive.notify.outbox import NewAlert, Outbox
from archive.notify.saved_search import SavedQuery, matches, parse
from archive.notify.subscriptions import Subscriptions
from store.errors import UnknownVersionError
from store.versions import REEXTRACT, Version

if TYPE_CHECKING:
    from archive.app import Archive

log = logging.getLogger(__name__)

CURSOR = "notify.cursor"
ROOT = "root"  # cursor value before the first commit: every version is news
CATCH_UP_HORIZON = timedelta(days=7)


def version_facts(version: Version, previous: Version | None) -> dict[str, str | None]:
    return {
        "service": version.service,
        "type": version.type,
        "version": version.id,
        "date": version.date.isoformat(),
        "kind": version.kind,
        "previous": previous.id if previous else None,
        "previous_date": previous.date.isoformat() if previous else None,
        "source_url": version.url,
    }


class Notifier:
    """Turns an archive's events and commits into queued alerts."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.subscriptions = Subscriptions(archive.state)
        self.outbox = Outbox(archive.state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ listener

    def on_event(self, event: Event) -> None:
        if isinstance(event, VersionRecorded):
            self.catch_up(live=event.version.id)
        elif isinstance(event, PolicyFailing | PolicyRecovered):
            self._operational(event)

    def _operational(self, event: PolicyFailing | PolicyRecovered) -> None:
        facts: dict[str, object] = {
            "service": event.service,
            "type": event.type,
            "failures": event.failures,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if isinstance(event, PolicyFailing):
            facts |= {"reason": event.reason, "transient": event.transient}
        key = uuid.uuid4().hex  # one event per failure streak: nothing to de-duplicate
        alerts = [
            NewAlert(sub.id, event.name, key, facts, sub.digest)
            for sub in self.subscriptions.active()
            if sub.operator and not sub.query and sub.covers(event.service, event.type)
        ]
        self.outbox.enqueue(alerts, now=time.time())

    # ------------------------------------------------------------------ catch-up

    def catch_up(self, live: str | None = None) -> int:
        """Queue alerts for every version after the cursor; returns how many were new."""
        with self._lock:
            cursor = self.archive.state.get_meta(CURSOR)
            head = self.archive.versions.head()
            if cursor is None:
                # First run: alert from now on, not for the history already there.
                self.archive.state.set_meta(CURSOR, head or ROOT)
                return 0
            if head is None or cursor == head:
                return 0
            try:
                versions = self.archive.versions.log(since=None if cursor == ROOT else cursor)
            except UnknownVersionError:
                log.warning(
                    "alert cursor %s is not in the archive's history any more; "
                    "alerting from the current head on",
                    cursor,
                )
                self.archive.state.set_meta(CURSOR, head)
                return 0
            if not versions:
                return 0
            alerts = list(self._alerts(versions, live))
            return self.outbox.enqueue(
                alerts, now=time.time(), cursor=(CURSOR, cursor, versions[-1].id)
            )

    def _alerts(self, versions: Iterable[Version], live: str | None) -> Iterable[NewAlert]:
        subscriptions = self.subscriptions.active()
        queries: dict[str, SavedQuery] = {}
        for sub in subscriptions:
            if sub.query:
                try:
                    queries[sub.query] = parse(sub.query)
                except NotifyError as exc:
                    log.warning("subscription #%d: %s", sub.id, exc)
        horizon = datetime.now(UTC) - CATCH_UP_HORIZON
        for version in versions:
            if version.kind == REEXTRACT or version.imported:
                continue  # re-extraction and bulk-imported history are not news
            if version.date < horizon and version.id != live:
                log.info(
                    "no alert for %s %s %s: observed %s, before the catch-up horizon",
                    version.service,
                    version.type,
                    version.id[:10],
                    version.date,
                )
                continue
            covering = [s for s in subscriptions if s.covers(version.service, version.type)]
            if not covering:
                continue
            previous = self._previous(version)
            facts = version_facts(version, previous)
            texts: dict[str, str | None] = {}
            for sub in covering:
                if not sub.query:
                    yield NewAlert(sub.id, content.VERSION_RECORDED, version.id, facts, sub.digest)
                    continue
                if sub.query not in queries:
                    continue
                event = self._search_change(queries[sub.query], version, previous, texts)
                if event is not None:
                    yield NewAlert(
                        sub.id, event, version.id, facts | {"query": sub.query}, sub.digest
                    )

    def _previous(self, version: Version) -> Version | None:
        history = self.archive.versions.history(version.service, version.type)
        for i, v in enumerate(history):
            if v.id == version.id:
                return history[i - 1] if i > 0 else None
        return None

    def _search_change(
        self,
        query: SavedQuery,
        version: Version,
        previous: Version | None,
        texts: dict[str, str | None],
    ) -> str | None:
        """``search_matched`` / ``search_unmatched`` if the match changed with this version."""
        for v in (version, previous):
            if v is not None and v.id not in texts:
                texts[v.id] = self.archive.versions.text(v.service, v.type, v.id)
        before = matches(query, texts[previous.id]) if previous else False
        after = matches(query, texts[version.id])
        if after and not before:
            return content.SEARCH_MATCHED
        if before and not after:
            return content.SEARCH_UNMATCHED
        return None
