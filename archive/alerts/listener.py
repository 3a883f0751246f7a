"""Events → alerts: the listener that fills the outbox after each commit.

The outbox is kept in step with git by a cursor (the last version commit looked at, in
``meta``): on every :class:`VersionRecorded`, and at every catch-up (writer start, after bulk
work), the versions after the cursor are turned into alerts and queued, and the cursor moves,
in one SQLite transaction. A crash between a commit and its alerts is repaired by the next
catch-up; queuing is idempotent, so nothing is sent twice. Re-extract commits alert nobody, and
a catch-up skips versions observed more than :data:`CATCH_UP_HORIZON` ago (a bulk import of
old histories is not news).

A first record alerts only subscriptions with ``first_records`` (adding a thousand policies is
not a thousand pieces of news). A page that *flaps* — back to the text it served just before,
less than :data:`FLAP_WINDOW` earlier, as an A/B test does (A→B→A→B) — is recorded, but from
the first return on its alerts are held: the operator subscriptions are told once per flapping
spell (``policy_flapping``, with the lines that differ), so an ``ignore`` pattern or a
``remove`` selector can be added (see docs/noise.md).

A subscription with a query (a saved search) alerts when a policy starts or stops matching it,
judged on the previous and the new text with the search box's meaning
(:mod:`archive.search.matching`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from archive.alerts import content
from archive.alerts.errors import NotifyError
from archive.alerts.outbox import NewAlert, Outbox
from archive.alerts.subscriptions import Subscription, Subscriptions
from archive.search import QueryError, language_resolver, parse_query
from archive.search.matching import PolicyText, index_language, matches
from archive.tracking.events import Event, PolicyFailing, PolicyRecovered, VersionRecorded
from store.errors import UnknownVersionError
from store.git.versions import CHANGE, REEXTRACT, Version
from store.index import And, Node, Or, Phrase, Prefix, Term

if TYPE_CHECKING:
    from archive.app import Archive

log = logging.getLogger(__name__)

CURSOR = "notify.cursor"
ROOT = "root"  # cursor value before the first commit: every version is news
CATCH_UP_HORIZON = timedelta(days=7)
FLAP_WINDOW = timedelta(days=1)
POLICY_FLAPPING = content.POLICY_FLAPPING
MAX_FLAP_LINES = 20  # lines of each side shown in a flapping notice
MAX_LINE_CHARS = 300


def parse_saved_search(query: str) -> Node:
    """A saved search's query tree, read as the search box reads it (:mod:`archive.search`);
    raises :class:`NotifyError` when it cannot be read or looks for no word (``-cookies``,
    ``service:Acme``: a subscription without a query follows every change)."""
    try:
        tree = parse_query(query)
    except QueryError as exc:
        raise NotifyError(f"saved search {query!r}: {exc}") from None
    if not _looks_for_words(tree):
        raise NotifyError(
            f"saved search {query!r} has no word to look for; use e.g. "
            '"sell your personal information" (a subscription without a query follows '
            "every change)"
        )
    return tree


def _looks_for_words(node: Node) -> bool:
    if isinstance(node, Term | Prefix | Phrase):
        return True
    if isinstance(node, And | Or):
        return any(_looks_for_words(child) for child in node.children)
    return False  # a filter, "*", or a NOT


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


@dataclass(frozen=True)
class Flap:
    """A version whose text repeats an earlier one seen within :data:`FLAP_WINDOW`."""

    version: Version
    previous: Version
    returned_to: Version  # the earlier version with the same text
    new_spell: bool  # the previous version was not flapping: tell the operator


def repeats(
    history: Sequence[Version], index: int, text_of: Callable[[Version], str]
) -> Version | None:
    """The version two before ``history[index]`` if this one brings its text back within
    :data:`FLAP_WINDOW` (A→B→A); None otherwise."""
    if index < 2:
        return None
    version, between, earlier = history[index], history[index - 1], history[index - 2]
    if REEXTRACT in (version.kind, between.kind) or version.kind != CHANGE:
        return None  # texts on either side of a re-extraction are not comparable
    if version.date - earlier.date > FLAP_WINDOW:
        return None
    return earlier if text_of(earlier) == text_of(version) else None


def find_flap(
    history: Sequence[Version], index: int, text_of: Callable[[Version], str]
) -> Flap | None:
    """Whether ``history[index]`` is a flip of a flapping page (and starts a new spell)."""
    returned_to = repeats(history, index, text_of)
    if returned_to is None:
        return None
    ongoing = repeats(history, index - 1, text_of) is not None
    return Flap(history[index], history[index - 1], returned_to, new_spell=not ongoing)


def differing_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(lines only in ``old``, lines only in ``new``), in order, de-duplicated and capped."""
    old_lines = [line.strip() for line in old.splitlines() if line.strip()]
    new_lines = [line.strip() for line in new.splitlines() if line.strip()]
    old_set, new_set = set(old_lines), set(new_lines)

    def only(lines: list[str], other: set[str]) -> list[str]:
        out = list(dict.fromkeys(x for x in lines if x not in other))[:MAX_FLAP_LINES]
        return [x if len(x) <= MAX_LINE_CHARS else x[: MAX_LINE_CHARS - 1] + "…" for x in out]

    return only(old_lines, new_set), only(new_lines, old_set)


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
        queries: dict[str, Node] = {}
        for sub in subscriptions:
            if sub.query:
                try:
                    queries[sub.query] = parse_saved_search(sub.query)
                except NotifyError as exc:
                    log.warning("subscription #%d: %s", sub.id, exc)
        language_of = language_resolver(self.archive)
        horizon = datetime.now(UTC) - CATCH_UP_HORIZON
        operators = [s for s in subscriptions if s.operator and not s.query]
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
            history = self.archive.versions.history(version.service, version.type)
            index = next((i for i, v in enumerate(history) if v.id == version.id), None)
            if index is None:
                continue
            previous = history[index - 1] if index > 0 else None
            covering = [
                s
                for s in subscriptions
                if s.covers(version.service, version.type) and (previous or s.first_records)
            ]
            texts: dict[str, str | None] = {}
            if previous is not None:
                flap = find_flap(history, index, partial(self._text, texts=texts))
                if flap is not None:
                    yield from self._flapping(flap, texts, operators)
                    continue
            if not covering:
                continue
            facts = version_facts(version, previous)
            judged: tuple[PolicyText | None, PolicyText | None] | None = None
            for sub in covering:
                if not sub.query:
                    yield NewAlert(sub.id, content.VERSION_RECORDED, version.id, facts, sub.digest)
                    continue
                if sub.query not in queries:
                    continue
                if judged is None:
                    judged = self._judged_texts(history, index, texts, language_of)
                event = search_change(queries[sub.query], *judged)
                if event is not None:
                    yield NewAlert(
                        sub.id, event, version.id, facts | {"query": sub.query}, sub.digest
                    )

    def _text(self, version: Version, texts: dict[str, str | None]) -> str:
        if texts.get(version.id) is None:
            texts[version.id] = self.archive.versions.text(
                version.service, version.type, version.id
            )
        return texts[version.id] or ""

    def _flapping(
        self, flap: Flap, texts: dict[str, str | None], operators: Sequence[Subscription]
    ) -> Iterable[NewAlert]:
        """Hold a flapping page's alerts; tell the operators once per flapping spell."""
        version = flap.version
        label = f"{version.service} {version.type}"
        if not flap.new_spell:
            log.info("%s flaps: alert for %s held", label, version.id[:10])
            return
        removed, added = differing_lines(
            self._text(flap.previous, texts), self._text(version, texts)
        )
        log.warning(
            "%s flaps: back to the text of %s (%s) within %s; its alerts are held from now on. "
            "Lines that differ: %s | %s. If this is noise, add an `ignore` pattern or a "
            "`remove` selector to the policy (docs/noise.md)",
            label,
            flap.returned_to.id[:10],
            flap.returned_to.date.isoformat(timespec="seconds"),
            FLAP_WINDOW,
            " / ".join(removed) or "-",
            " / ".join(added) or "-",
        )
        facts = version_facts(version, flap.previous) | {
            "returned_to": flap.returned_to.id,
            "returned_to_date": flap.returned_to.date.isoformat(),
            "lines_removed": removed,
            "lines_added": added,
        }
        for sub in operators:
            if sub.covers(version.service, version.type):
                yield NewAlert(sub.id, POLICY_FLAPPING, version.id, facts, sub.digest)

    def _judged_texts(
        self,
        history: Sequence[Version],
        index: int,
        texts: dict[str, str | None],
        language_of: Callable[[str, str], str | None],
    ) -> tuple[PolicyText | None, PolicyText | None]:
        """The previous and the new text of ``history[index]`` (None: no such version, or its
        file deleted), in the language the index analyses the policy in: the known one, else
        the one guessed from its first version."""
        version = history[index]
        lang = index_language(
            language_of(version.service, version.type), self._text(history[0], texts)
        )

        def judged(v: Version) -> PolicyText | None:
            if v.id not in texts:
                texts[v.id] = self.archive.versions.text(v.service, v.type, v.id)
            text = texts[v.id]
            return None if text is None else PolicyText(v.service, v.type, text, lang)

        return (judged(history[index - 1]) if index else None), judged(version)


def search_change(query: Node, before: PolicyText | None, after: PolicyText | None) -> str | None:
    """``search_matched`` / ``search_unmatched`` if the match of a saved search changed from the
    text ``before`` to the text ``after``."""
    was, now = matches(query, before), matches(query, after)
    if now and not was:
        return content.SEARCH_MATCHED
    if was and not now:
        return content.SEARCH_UNMATCHED
    return None
