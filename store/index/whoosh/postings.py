"""Reading postings: a decoded block at a time, or only some documents, within a deadline;
and turning the documents that matched into bit sets of versions per policy."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.matching import Matcher
from whoosh.reading import IndexReader

from store.index.budget import Budget
from store.index.policies import Masks
from store.index.rules import near_count
from store.index.whoosh.catalog import SegmentView

CHECK_EVERY = 2048

Blocks = Iterator[tuple[Sequence[int], Sequence[float]]]

# A document that matched a leaf: the versions it stands for (first, last), how often it
# matched, and where it is in the index (segment, docnum).
Posting = tuple[int, int, float, int, int]


def read_all(
    matcher: Matcher, deadline: Budget, jump: Callable[[int], int | None] | None = None
) -> Blocks:
    """All postings of a matcher, a block at a time. After each block, ``jump(last docnum)``
    may name the next document worth reading (the next policy's, once this one is settled):
    blocks in between are passed over by their last id, never decoded."""
    count = 0
    if type(matcher) is W3LeafMatcher:
        # whoosh's on-disk postings: take each decoded block whole rather than calling
        # id()/weight()/next() per posting (the same values, a third of the time).
        while matcher.is_active():
            if matcher._ids is None:
                matcher._read_ids()
            matcher._read_weights()
            start = matcher._i
            block = matcher._ids[start:]
            yield block, matcher._weights[start:]
            count += len(block)
            if count > CHECK_EVERY:
                count = 0
                deadline.check()
            target = jump(block[-1]) if jump is not None else None
            if target is not None and target > block[-1]:
                skip(matcher, target)
            else:
                matcher._next_block()
        return
    ids: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
        if len(ids) == 256:
            yield ids, weights
            ids, weights = [], []
            deadline.check()
    yield ids, weights


def skip(matcher: Matcher, target: int) -> None:
    """``matcher.skip_to(target)``: whoosh scans a block posting by posting; on its on-disk
    postings this jumps over whole blocks by their last id, then bisects the block's ids."""
    if type(matcher) is not W3LeafMatcher:
        matcher.skip_to(target)
        return
    while matcher.is_active():
        if target > matcher._maxid:
            matcher._next_block()
            continue
        if matcher._ids is None:
            matcher._read_ids()
        matcher._i = bisect_left(matcher._ids, target, matcher._i)
        return


def values_of(
    matcher: Matcher, docs: list[int], df: int, deadline: Budget, *, values: bool = True
) -> Iterator[tuple[int, Any]]:
    """(docnum, encoded value, or None without ``values``) of the matcher's postings among
    ``docs`` (sorted; ``df``: the number of postings): jumping from one to the next when they
    are few against the postings, else a decoded block at a time (whoosh's on-disk
    postings)."""
    if not docs:
        return
    if type(matcher) is W3LeafMatcher and len(docs) * 8 > df:
        wanted = set(docs)
        last = docs[-1]
        count = 0
        while matcher.is_active():
            if matcher._ids is None:
                matcher._read_ids()
            ids = matcher._ids
            if values and matcher._values is None:
                matcher._read_values()
            for j in range(matcher._i, len(ids)):
                d = ids[j]
                if d in wanted:
                    yield d, (matcher._values[j] if values else None)
            count += len(ids)
            if count > CHECK_EVERY:
                count = 0
                deadline.check()
            if ids[-1] >= last:
                return
            matcher._next_block()
        return
    for i, docnum in enumerate(docs):
        if not matcher.is_active():
            return
        if matcher.id() < docnum:
            skip(matcher, docnum)
            if not matcher.is_active():
                return
        if matcher.id() == docnum:
            yield docnum, (matcher.value() if values else None)
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            deadline.check()


def read_only(matcher: Matcher, docs: list[int], deadline: Budget) -> Blocks:
    """The postings of these documents (sorted), jumping from one to the next."""
    ids: list[int] = []
    weights: list[float] = []
    for i, docnum in enumerate(docs):
        if not matcher.is_active():
            break
        if matcher.id() < docnum:
            skip(matcher, docnum)
            if not matcher.is_active():
                break
        if matcher.id() == docnum:
            ids.append(docnum)
            weights.append(matcher.weight())
        if i % CHECK_EVERY == 0:
            deadline.check()
    yield ids, weights


def collect(
    blocks: Blocks,
    seg: int,
    view: SegmentView,
    latest: dict[int, int],
    base: Masks,
    out: Masks,
    store: dict[int, list[Posting]],
) -> None:
    """Add each matching document's versions (within ``base``) to ``out``; keep the
    postings in ``store`` for scoring. ``latest``: each policy's latest version (where
    open runs end)."""
    pids, firsts, ends = view.pid, view.first, view.end
    get = base.get
    # A policy's postings usually come together: keep its state in locals until it changes.
    pid, allowed, acc, found = -1, 0, 0, None
    for ids, weights in blocks:
        for docnum, weight in zip(ids, weights, strict=True):
            if pids[docnum] != pid:
                if acc:
                    out[pid] = out.get(pid, 0) | acc
                pid = pids[docnum]
                allowed, acc = get(pid, 0), 0
                found = store.get(pid) if allowed else None
            if not allowed:
                continue
            first, end = firsts[docnum], ends[docnum]
            last = end - 1 if end else latest[pid]
            mask = allowed & (((1 << (last - first + 1)) - 1) << first)
            if mask:
                acc |= mask
                if found is None:
                    found = store[pid] = []
                found.append((first, last, weight, seg, docnum))
        if acc:  # before the reader decides, on seeing ``out``, where to go next
            out[pid] = out.get(pid, 0) | acc
            acc = 0


def read_phrase(
    reader: IndexReader,
    name: str,
    terms: list[str],
    deadline: Budget,
    docs: list[int] | None = None,
    jump: Callable[[int], int | None] | None = None,
    slop: int = 0,
) -> Blocks:
    """Documents of field ``name`` where ``terms`` occur next to each other, in order (with
    at most ``slop`` other words between them in all), with the number of occurrences; only
    ``docs`` (sorted) if given.

    A leapfrog join of the terms' postings, rarest first, then a check of positions. After a
    match, ``jump(docnum)`` may name the next document worth looking at (the next policy's,
    once this policy is settled). whoosh's own phrase query builds span objects for every
    candidate; this is several times faster.
    """
    if any((name, t) not in reader for t in terms):
        return
    matchers = [reader.postings(name, t) for t in terms]
    order = sorted(range(len(terms)), key=lambda i: reader.doc_frequency(name, terms[i]))
    driver, others = matchers[order[0]], [matchers[i] for i in order[1:]]
    decode = reader.schema[name].format.decode_positions
    targets = iter(docs) if docs is not None else None
    steps = 0

    def advance(to: int | None) -> int | None:
        """Move the driver to the next candidate at or after ``to``; its docnum, or None."""
        if targets is not None:
            for d in targets:
                if to is None or d >= to:
                    break
            else:
                return None
            to = d
        if to is not None and driver.is_active() and driver.id() < to:
            skip(driver, to)
        if not driver.is_active():
            return None
        if targets is not None and driver.id() != to:
            return advance(driver.id())
        return driver.id()

    d = advance(None)
    while d is not None:
        steps += len(terms)  # a step moves and may decode every term's postings
        if steps >= CHECK_EVERY:
            steps = 0
            deadline.check()
        behind = None
        for m in others:
            if m.id() < d:
                skip(m, d)
                if not m.is_active():
                    return
            if m.id() > d:
                behind = m.id()
                break
        if behind is not None:
            d = advance(behind)
            continue
        if slop:
            count = near_count([decode(m.value()) for m in matchers], slop)
        else:
            first = decode(matchers[0].value())
            rest = [set(decode(m.value())) for m in matchers[1:]]
            count = sum(1 for p in first if all(p + i in s for i, s in enumerate(rest, 1)))
        target = None
        if count:
            yield [d], [float(count)]
            target = jump(d) if jump is not None else None
        d = advance(target if target is not None else d + 1)
