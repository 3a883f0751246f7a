"""The policies an index holds and their versions, as both engines' catalogs see them.

Engine-neutral: each engine reads its own files into :class:`PolicyInfo` rows (whoosh:
:mod:`store.index.whoosh.catalog`, tantivy: :mod:`store.index.tantivy.catalog`); what a query's
filters keep of them is a bit set of versions per policy (:data:`Masks`).
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cached_property

from store.index.query import (
    And,
    FieldMatch,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    PolicyMatches,
    Prefix,
    SearchQuery,
    Term,
    VersionRef,
)

Masks = dict[int, int]  # pid -> bit set of versions (bit k: version k)


@dataclass
class PolicyInfo:
    pid: int
    service: str
    type: str
    vids: list[str] = field(default_factory=list)
    dates: array = field(default_factory=lambda: array("q"))
    tzs: array = field(default_factory=lambda: array("h"))
    ntoks: array = field(default_factory=lambda: array("i"))
    langs: list[str | None] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.vids)

    @property
    def lang(self) -> str | None:
        return self.langs[-1] if self.langs else None

    def when(self, seq: int) -> datetime:
        return datetime.fromtimestamp(self.dates[seq], timezone(timedelta(minutes=self.tzs[seq])))

    def ref(self, seq: int) -> VersionRef:
        valid_to = self.when(seq + 1) if seq + 1 < self.count else None
        return VersionRef(self.vids[seq], self.when(seq), valid_to)


class Policies:
    """The policies of one generation of an index, by id and by name (read-only once built,
    shared by threads)."""

    def __init__(self, policies: dict[int, PolicyInfo]) -> None:
        self.policies = policies
        self.by_name = {(p.service, p.type): pid for pid, p in policies.items()}
        self._lock = threading.Lock()
        self._vids: dict[int, frozenset[str]] = {}  # built on demand, by :meth:`holds`

    def pid_of(self, service: str, type_: str) -> int | None:
        return self.by_name.get((service, type_))

    def holds(self, service: str, type_: str, vid: str) -> bool:
        """Whether the index holds version ``vid`` (a full commit id) of that policy."""
        pid = self.by_name.get((service, type_))
        if pid is None:
            return False
        with self._lock:
            ids = self._vids.get(pid)
            if ids is None:
                ids = self._vids[pid] = frozenset(self.policies[pid].vids)
        return vid in ids

    @cached_property
    def doubled(self) -> list[tuple[str, str, str]]:
        """(service, type, version id) of every version the index holds more than once
        (none, unless an index was written before its writer skipped what it held)."""
        out = []
        for info in self.policies.values():
            if len(set(info.vids)) != info.count:
                seen: set[str] = set()
                for vid in info.vids:
                    if vid in seen:
                        out.append((info.service, info.type, vid))
                    seen.add(vid)
        return out


# --------------------------------------------------------------------------- filters


def _epoch(day: date, end: bool) -> int:
    return int(datetime.combine(day, time.max if end else time.min, tzinfo=UTC).timestamp())


def _in_range(info: PolicyInfo, start: int | None, end: int | None) -> int:
    bits = 0
    n = info.count
    for seq in range(n):
        if end is not None and info.dates[seq] > end:
            continue
        if start is not None and seq + 1 < n and info.dates[seq + 1] <= start:
            continue
        bits |= 1 << seq
    return bits


def every_version(policies: Mapping[int, PolicyInfo]) -> Masks:
    """Per policy, all of its versions (clause timelines search them all)."""
    return {pid: (1 << p.count) - 1 for pid, p in policies.items() if p.count}


def allowed_versions(policies: Mapping[int, PolicyInfo], query: SearchQuery) -> Masks:
    """Per policy, the versions this query searches (filters applied): the current version
    by default; with dates, those in force at some time in the range; with ``history``, all
    of them (within the dates, if given)."""
    start = _epoch(query.date_from, end=False) if query.date_from else None
    end = _epoch(query.date_to, end=True) if query.date_to else None
    dated = start is not None or end is not None
    service = query.service.casefold() if query.service else None
    type_ = query.type.casefold() if query.type else None
    lang = query.lang.casefold() if query.lang else None
    out: Masks = {}
    for pid, info in policies.items():
        n = info.count
        if not n:
            continue
        if service and info.service.casefold() != service:
            continue
        if type_ and info.type.casefold() != type_:
            continue
        if dated:
            bits = _in_range(info, start, end)
        elif query.history:
            bits = (1 << n) - 1
        else:
            bits = 1 << (n - 1)
        if lang:
            bits &= sum(1 << s for s, v in enumerate(info.langs) if _lang_is(v, lang))
        if bits:
            out[pid] = bits
    return out


def _lang_is(value: str | None, want: str) -> bool:
    value = (value or "").casefold()
    return value == want or value.split("-")[0] == want


def field_masks(policies: Mapping[int, PolicyInfo], node: FieldMatch, allowed: Masks) -> Masks:
    """Per policy, the ``allowed`` versions a ``service:``, ``type:`` or ``lang:`` match keeps
    (``lang:fr`` keeps ``fr-CA``; a prefix match keeps what starts with the value)."""
    want = node.value.casefold()
    out: Masks = {}
    for pid, mask in allowed.items():
        info = policies[pid]
        if node.name == "lang":
            bits = 0
            for seq, lang in enumerate(info.langs):
                value = (lang or "").casefold()
                if _matches(value, want, node.prefix) or _matches(
                    value.split("-")[0], want, node.prefix
                ):
                    bits |= 1 << seq
            mask &= bits
        else:
            value = info.service if node.name == "service" else info.type
            if not _matches(value.casefold(), want, node.prefix):
                continue
        if mask:
            out[pid] = mask
    return out


LeafMasks = Callable[[Term | Prefix | Phrase, Masks, bool], Masks]
"""An engine's own matching of one leaf: ``(leaf, allowed, positive) -> masks``."""


def node_masks(
    node: Node,
    allowed: Masks,
    policies: Mapping[int, PolicyInfo],
    leaf_masks: LeafMasks,
    positive: bool = True,
) -> Masks:
    """Per policy, the ``allowed`` versions matching ``node``: AND/OR/NOT and field filters as
    set operations over the versions' bit sets, each leaf matched by the engine
    (``leaf_masks``; ``positive`` is False under a NOT, where scores are not needed)."""

    def masks(node: Node, allowed: Masks, positive: bool) -> Masks:
        if isinstance(node, MatchAll):
            return dict(allowed)
        if isinstance(node, FieldMatch):
            return field_masks(policies, node, allowed)
        if isinstance(node, Term | Prefix | Phrase):
            return leaf_masks(node, allowed, positive)
        if isinstance(node, And):
            result: Masks | None = None
            for child in sorted(node.children, key=lambda c: isinstance(c, Not)):
                base = allowed if result is None else result
                if isinstance(child, Not):
                    excluded = masks(child.child, base, False)
                    result = {p: m & ~excluded.get(p, 0) for p, m in base.items()}
                else:
                    found = masks(child, base, positive)
                    result = {p: m & found[p] for p, m in base.items() if p in found}
                result = {p: m for p, m in result.items() if m}
            return result if result is not None else dict(allowed)
        if isinstance(node, Or):
            out: Masks = {}
            for child in node.children:
                for pid, mask in masks(child, allowed, positive).items():
                    out[pid] = out.get(pid, 0) | mask
            return out
        if isinstance(node, Not):
            excluded = masks(node.child, allowed, False)
            return {
                p: m for p, m in ((p, m & ~excluded.get(p, 0)) for p, m in allowed.items()) if m
            }
        raise TypeError(f"not a query node: {node!r}")

    return masks(node, allowed, positive)


def _matches(value: str, want: str, prefix: bool) -> bool:
    return value.startswith(want) if prefix else value == want


def policy_matches(policies: Mapping[int, PolicyInfo], masks: Masks) -> list[PolicyMatches]:
    """Each policy with a matching version, with all its versions and which matched."""
    out = []
    for pid, mask in masks.items():
        info = policies[pid]
        out.append(
            PolicyMatches(
                service=info.service,
                type=info.type,
                versions=tuple(info.ref(s) for s in range(info.count)),
                matched=tuple(bool(mask >> s & 1) for s in range(info.count)),
            )
        )
    out.sort(key=lambda m: (m.service.casefold(), m.type.casefold()))
    return out
