"""A summary of each change: sections touched, words added and removed, the main edits.

Computed from the one diff (:func:`archive.diff.diff_versions`), so the diff page, the JSON
diff, ``/changes``, the timeline, feeds, e-mails and webhooks all say the same thing. A change
between two commits never changes, so its summary is computed once: kept in memory beside the
diffs (``DiffCache.summaries``, keyed by the policy and ``(old id, new id)``) and persisted in
state.sqlite's ``meta`` table (key ``diff-summary/<format>/<service>/<type>/<old id>/<new id>``,
a JSON value), so a restarted
server or the alert worker reads it instead of diffing again. Coarse summaries (the diff's time
budget ran out) are kept in memory only, so a later, finer diff can replace them. Every
summary can be rebuilt from git: deleting the rows only costs time.

The ``passages`` of an e-mail (the changed passages with a few words around them) come from
the same diff, through :func:`passages`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from archive.diff import (
    DELETE,
    EQUAL,
    INSERT,
    DiffCache,
    Excerpt,
    Span,
    TextDiff,
    diff_versions,
)
from store.errors import StoreError
from store.git.versions import Version, VersionStore

log = logging.getLogger(__name__)

FORMAT = "v2"
"""Version of the persisted summary: bump it when the summary's content changes."""
META_PREFIX = f"diff-summary/{FORMAT}/"
ELLIPSIS = "…"
PASSAGE_CONTEXT = 12
"""Unchanged words kept on each side of a change in an e-mail passage."""
MAX_PASSAGES = 12
MAX_PASSAGE_WORDS = 200
_PIECE = re.compile(r"\S+\s*")


class MetaStore(Protocol):
    """Where summaries persist: state.sqlite's key/value ``meta`` (:class:`store.state.State`)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str | None) -> None: ...


@dataclass(frozen=True)
class ChangeSummary:
    """What one change did, in a few facts (``first``: a first record, nothing before it)."""

    sections: tuple[str, ...]
    words_added: int
    words_removed: int
    excerpts: tuple[Excerpt, ...] = ()
    changes: int = 0
    first: bool = False
    coarse: bool = False
    wording_changes: int = 0
    formatting_changes: int = 0
    """Units whose words changed (or moved), and units whose formatting only changed: words
    added and removed count the wording only."""

    @classmethod
    def of(cls, diff: TextDiff) -> ChangeSummary:
        return cls(
            sections=diff.sections,
            words_added=diff.words_added,
            words_removed=diff.words_removed,
            excerpts=diff.excerpts(),
            changes=len(diff.changes),
            first=diff.first,
            coarse=diff.coarse,
            wording_changes=diff.wording_changes,
            formatting_changes=diff.formatting_changes,
        )

    def as_json(self) -> dict[str, Any]:
        """The ``summary`` object of the API, feeds' JSON twins and webhooks."""
        return {
            "sections": list(self.sections),
            "words_added": self.words_added,
            "words_removed": self.words_removed,
            "formatting_changes": self.formatting_changes,
            "excerpts": [e.as_json() for e in self.excerpts],
        }

    def dumps(self) -> str:
        return json.dumps(
            {
                **self.as_json(),
                "weights": [e.weight for e in self.excerpts],
                "changes": self.changes,
                "wording_changes": self.wording_changes,
                "first": self.first,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> ChangeSummary:
        data = json.loads(text)
        excerpts = tuple(
            Excerpt(e["section"], e["before"], e["after"], w)
            for e, w in zip(data["excerpts"], data["weights"], strict=True)
        )
        return cls(
            sections=tuple(data["sections"]),
            words_added=data["words_added"],
            words_removed=data["words_removed"],
            excerpts=excerpts,
            changes=data["changes"],
            first=data["first"],
            wording_changes=data["wording_changes"],
            formatting_changes=data["formatting_changes"],
        )

    def describe(self, max_sections: int = 5) -> str:
        """One line: ``+6 / −1 words in Data retention, Cookies``; with formatting-only
        changes, ``+6 / −1 words (3 wording changes, 42 formatting-only) in …``."""
        if self.first:
            return f"First record, {self.words_added:,} words"
        if not self.changes:
            return "No change in the text"
        if not self.wording_changes:
            text = f"Formatting only: {_plural(self.formatting_changes, 'change')}"
        else:
            text = f"+{self.words_added:,} / −{self.words_removed:,} words"
            if self.formatting_changes:
                text += (
                    f" ({_plural(self.wording_changes, 'wording change')},"
                    f" {self.formatting_changes:,} formatting-only)"
                )
        if self.sections:
            shown = ", ".join(self.sections[:max_sections])
            more = len(self.sections) - max_sections
            text += f" in {shown}" + (f" and {more} more sections" if more > 0 else "")
        return text


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


SUMMARY_TIMEOUT = 2.0
"""Seconds one summary's diff may take, about. A summary is computed once and kept, so it
gets more time than an interactive diff (:data:`archive.diff.DEFAULT_TIMEOUT`): with 0.3 s,
large diffs on a loaded server came out coarse."""


class _Deferred(Exception):
    """The summary is not known yet and the caller's time budget is spent."""


def meta_key(old: Version | None, new: Version) -> str:
    """``diff-summary/<FORMAT>/<service>/<type>/<old id or ->/<new id>`` (names hold no ``/``)."""
    return f"{META_PREFIX}{new.service}/{new.type}/{old.id if old else '-'}/{new.id}"


def summary_of(
    versions: VersionStore,
    old: Version | None,
    new: Version,
    *,
    diffs: DiffCache,
    state: MetaStore | None = None,
    timeout: float = SUMMARY_TIMEOUT,
) -> ChangeSummary:
    """The summary of the change from ``old`` (None: a first record) to ``new``: read from
    memory, else from ``state``, else computed from the diff (and stored in both)."""
    return _lookup(versions, old, new, diffs, state, None, timeout)


def summary_within(
    versions: VersionStore,
    old: Version | None,
    new: Version,
    *,
    diffs: DiffCache,
    state: MetaStore | None = None,
    deadline: float | None = None,
    timeout: float = SUMMARY_TIMEOUT,
) -> ChangeSummary | None:
    """:func:`summary_of`, or None when it is not known yet and ``deadline`` (a
    :func:`time.monotonic` value) has passed: pages show what is known quickly, and what
    they compute is kept for the next request."""
    try:
        return _lookup(versions, old, new, diffs, state, deadline, timeout)
    except _Deferred:
        return None


def _lookup(
    versions: VersionStore,
    old: Version | None,
    new: Version,
    diffs: DiffCache,
    state: MetaStore | None,
    deadline: float | None,
    timeout: float,
) -> ChangeSummary:
    def compute() -> ChangeSummary:
        key = meta_key(old, new)
        stored = state.get_meta(key) if state is not None else None
        if stored is not None:
            return ChangeSummary.loads(stored)
        if deadline is not None and time.monotonic() > deadline:
            raise _Deferred
        diff = diff_versions(versions, old, new, cache=diffs, timeout=timeout)
        summary = ChangeSummary.of(diff)
        # kept even when coarse: with the summary's budget a coarse diff is one too large to
        # align word by word, and computing it again on every fresh server gives the same
        if state is not None:
            try:
                state.set_meta(key, summary.dumps())
            except StoreError as exc:  # a derived value: serve it, keep it in memory only
                log.warning("change summary of %s not persisted: %s", new.id[:10], exc)
        return summary

    key = (new.service, new.type, old.id if old else None, new.id)
    return diffs.summaries.get(key, compute)


# --------------------------------------------------------------------------- e-mail passages


Passage = tuple[Span, ...]


def passages(
    diff: TextDiff,
    *,
    context: int = PASSAGE_CONTEXT,
    limit: int = MAX_PASSAGES,
    max_words: int = MAX_PASSAGE_WORDS,
) -> tuple[list[Passage], int]:
    """The changed passages of a diff (its hunks), unchanged stretches cut to ``context``
    words next to each change and each passage to ``max_words``; at most ``limit`` of them,
    with the number left out. A first record has none (all of it is new)."""
    if diff.first:
        return [], 0
    hunks = [h for h in diff.hunks(context=1) if not h.formatting_only]
    out = []
    for hunk in hunks[:limit]:
        spans = hunk.spans
        trimmed = [
            _trim(s, context, lead=k > 0, tail=k < len(spans) - 1) if s.op == EQUAL else s
            for k, s in enumerate(spans)
        ]
        out.append(tuple(_cap(trimmed, max_words)))
    return out, max(len(hunks) - limit, 0)


def _trim(span: Span, context: int, *, lead: bool, tail: bool) -> Span:
    """An unchanged stretch: ``context`` words after the change before it (``lead``) and
    before the change after it (``tail``)."""
    pieces = _PIECE.findall(span.text)
    keep_start, keep_end = (context if lead else 0), (context if tail else 0)
    if len(pieces) <= keep_start + keep_end + 1:
        return span
    start = "".join(pieces[:keep_start])
    end = "".join(pieces[len(pieces) - keep_end :]) if keep_end else ""
    lead_space = span.text[: len(span.text) - len(span.text.lstrip())]
    return Span(EQUAL, f"{lead_space}{start}{ELLIPSIS} {end}")


def _cap(spans: Sequence[Span], max_words: int) -> list[Span]:
    out, seen = [], 0
    for span in spans:
        pieces = _PIECE.findall(span.text)
        if seen + len(pieces) > max_words:
            out.append(Span(span.op, "".join(pieces[: max(max_words - seen, 0)]) + ELLIPSIS))
            break
        out.append(span)
        seen += len(pieces)
    return out


def render_text(passage: Passage) -> str:
    """A passage as plain text: ``[-deleted-]`` and ``{+inserted+}`` (git's word-diff marks)."""
    parts = []
    for span in passage:
        text = " ".join(span.text.split())
        if not text:
            continue
        if span.op == DELETE:
            parts.append(f"[-{text}-]")
        elif span.op == INSERT:
            parts.append(f"{{+{text}+}}")
        else:
            parts.append(text)
    return " ".join(parts)
