"""Clause timelines: when did a phrase enter and leave each policy?

``when(archive, "sell your personal information")`` asks the index which versions of which
policies contain the phrase (one look-up over the sections, never a scan of the files), then
reads each policy's history as a row of present/absent and reports where it flipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.index import TIME_BUDGET, Phrase, PolicyMatches, QueryTooBroadError, Term, VersionRef

if TYPE_CHECKING:
    from archive.app import Archive

MAX_PHRASE_CHARS = 500
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class ClauseTimeline:
    """The life of a phrase in one policy."""

    service: str
    type: str
    first_seen: VersionRef
    last_seen: VersionRef  # the last version that contained it
    still_present: bool
    appeared: tuple[VersionRef, ...]  # versions that contain it when the one before did not
    disappeared: tuple[VersionRef, ...]  # versions without it when the one before had it
    versions_with: int
    versions_total: int

    @classmethod
    def from_matches(cls, m: PolicyMatches) -> ClauseTimeline:
        appeared, disappeared = [], []
        before = False
        for version, present in zip(m.versions, m.matched, strict=True):
            if present and not before:
                appeared.append(version)
            elif before and not present:
                disappeared.append(version)
            before = present
        seen = [v for v, present in zip(m.versions, m.matched, strict=True) if present]
        return cls(
            service=m.service,
            type=m.type,
            first_seen=seen[0],
            last_seen=seen[-1],
            still_present=m.matched[-1],
            appeared=tuple(appeared),
            disappeared=tuple(disappeared),
            versions_with=len(seen),
            versions_total=len(m.versions),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "type": self.type,
            "first_seen": self.first_seen.as_json(),
            "last_seen": None if self.still_present else self.last_seen.as_json(),
            "still_present": self.still_present,
            "appeared": [v.as_json() for v in self.appeared],
            "disappeared": [v.as_json() for v in self.disappeared],
            "versions_with": self.versions_with,
            "versions_total": self.versions_total,
        }


def when(archive: Archive, phrase: str) -> list[ClauseTimeline]:
    """For each policy whose history ever contained ``phrase``: when it appeared, whether it is
    still there, and every version where it came or went. Oldest first appearance first.

    The same time budget as a search: a phrase whose look-up takes more than TIME_BUDGET
    seconds of its own CPU time is refused with QueryError; IndexBusyError (a StoreError)
    when the server is too loaded to finish it in time."""
    from archive.search import QueryError  # defined there, next to the API that raises it

    text = (phrase or "").strip()
    if len(text) > MAX_PHRASE_CHARS:
        raise QueryError(
            f"the phrase is {len(text):,} characters long; the limit is {MAX_PHRASE_CHARS}: "
            "follow a distinctive part of the clause"
        )
    words = [w for w in text.strip('"').split() if _WORD.search(w)]
    if not words:
        raise QueryError('give a phrase to follow, e.g. "sell your personal information"')
    node = Term(words[0]) if len(words) == 1 else Phrase(tuple(words))
    try:
        matches = archive.index.match_versions(node, time_budget=TIME_BUDGET)
    except QueryTooBroadError as exc:
        raise QueryError(str(exc)) from None
    timelines = [ClauseTimeline.from_matches(m) for m in matches if any(m.matched)]
    timelines.sort(key=lambda t: (t.first_seen.date, t.service.casefold(), t.type.casefold()))
    return timelines
