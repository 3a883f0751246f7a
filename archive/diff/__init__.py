"""Word-level diffs between two versions of a policy: bounded in time, cached, structured.

Two steps (see docs/decisions/0005-diff.md). First the texts are cut into *units* (non-blank
lines: paragraphs, list items, headings) and the units are aligned with :mod:`difflib`. Then,
inside each changed run of units, the words are diffed with diff-match-patch on a string where
every token (a word or a run of punctuation; white space is compared apart) is one character,
followed by its semantic clean-up, so highlights always cover whole words
(``<del>30</del><ins>60</ins> days``, never ``<del>3</del><ins>6</ins>0``).

One time budget bounds each diff: diff-match-patch aligns words during its first half, difflib
(with the same clean-up) after that, and once it is spent the remaining runs are shown as
whole-passage replacements and the diff says so (``coarse``): a request never runs unbounded.
A diff between two commits never changes, so callers keep results in a :class:`DiffCache`.

Each unit also has a *reading* (:mod:`archive.diff.reading`: the element it becomes on the
policy page and the text a reader sees there), and each change is told apart unit by unit into
wording, formatting-only and moved edits (:mod:`archive.diff.wording`): words added and
removed count wording only, and the rendered diff marks the reading text.

Sections come from every heading style (:mod:`archive.diff.sections`). The result serves every
reader: the HTML views (:meth:`TextDiff.layout`), the JSON API (:meth:`TextDiff.as_json`), and,
through :mod:`archive.diff.summary`, the change lists, feeds, e-mails and webhooks: one engine,
so they all report the same changes, word counts and sections.
"""

from __future__ import annotations

import difflib
import re
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from diff_match_patch import diff_match_patch

from archive.diff.reading import Reading, reading_units
from archive.diff.sections import heading as heading  # re-exported: one-line titles
from archive.diff.sections import in_force, unit_headings
from archive.diff.wording import (
    DELETE,
    EQUAL,
    FORMATTING,
    INSERT,
    MOVED,
    Edit,
    Span,
    edits_of_run,
    find_moves,
)
from store.cache import LRU
from store.git.versions import Version, VersionStore

if TYPE_CHECKING:
    from archive.diff.summary import ChangeSummary

DEFAULT_TIMEOUT = 0.3
"""Seconds one diff may take, about: past it, changed runs are whole replacements."""
DMP_SHARE = 0.5
"""Share of the budget during which diff-match-patch aligns words (difflib after that)."""
CALL_TIMEOUT = 0.1
"""Seconds one diff-match-patch call may take before the run is aligned with difflib."""
CALL_SHARE = 0.25
"""With a longer budget (a change summary's), one call may take this share of it instead."""
DIFFLIB_MAX_CELLS = 4_000_000
"""Largest (old tokens × new tokens) run aligned with difflib; bigger ones are replaced whole."""
DEFAULT_CONTEXT = 2
"""Unchanged units shown before and after each change."""
MAX_EXCERPTS = 3
"""Before → after excerpts in a summary: the most significant edits."""
EXCERPT_WORDS = 12
"""Longest side of an excerpt, in whitespace-separated pieces (longer ones end with …)."""
EXCERPT_CONTEXT = 2
"""Unchanged pieces shown on each side of an excerpt's edit (within its paragraph)."""
UNIT_SEPARATOR = "\n\n"

_TOKEN = re.compile(r"(\w+|[^\w\s]+)(\s*)")
_WORD = re.compile(r"\w+")
_PIECE_AFTER = re.compile(r"\S+\s*")
_PIECE_BEFORE = re.compile(r"\s*\S+")
_DMP_OPS = {0: EQUAL, 1: INSERT, -1: DELETE}
_TOKEN_BASE = 0x10000  # encode tokens outside the BMP: no surrogates, no control characters
_MAX_TOKENS = 0x10FFFF - _TOKEN_BASE


@dataclass(frozen=True)
class Equal:
    """A run of unchanged units (``old_start``/``new_start`` are 0-based unit indexes)."""

    old_start: int
    new_start: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """One changed passage: old units ``old_start:old_end`` became new ``new_start:new_end``."""

    old_start: int
    old_end: int
    new_start: int
    new_end: int
    spans: tuple[Span, ...]
    sections: tuple[str, ...]
    words_added: int
    words_removed: int
    coarse: bool = False
    unit_sections: tuple[str | None, ...] = ()
    """The section in force at each unit of the new side (of the old side for a deletion)."""
    edits: tuple[Edit, ...] = ()
    """What a reader sees change, unit by unit (:mod:`archive.diff.wording`)."""

    @property
    def formatting_only(self) -> bool:
        """Nothing a reader reads changed: every edit is formatting."""
        return all(e.kind == FORMATTING for e in self.edits)

    @property
    def kind(self) -> str:
        if self.old_start == self.old_end:
            return INSERT
        if self.new_start == self.new_end:
            return DELETE
        return "replace"


Segment = Equal | Change


@dataclass(frozen=True)
class LayoutItem:
    """One piece of a rendered diff: ``context`` or ``hidden`` unchanged lines, or a change.

    ``number`` counts changes from 1, for "previous/next change" links.
    """

    kind: str  # "context" | "hidden" | "change"
    lines: tuple[str, ...] = ()
    change: Change | None = None
    number: int = 0
    old_start: int = 0
    new_start: int = 0

    @property
    def anchor(self) -> str:
        """The element id of a change: ``change-N`` (wording), ``formatting-N`` (formatting
        only; those are numbered apart, so "next change" never lands on a hidden one)."""
        if self.change is not None and self.change.formatting_only:
            return f"formatting-{self.number}"
        return f"change-{self.number}"


@dataclass(frozen=True)
class Hunk:
    """Changes that lie close together, with a little unchanged context around them."""

    old_start: int
    new_start: int
    spans: tuple[Span, ...]
    sections: tuple[str, ...]
    words_added: int
    words_removed: int
    formatting_only: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "old_start": self.old_start + 1,
            "new_start": self.new_start + 1,
            "sections": list(self.sections),
            "words_added": self.words_added,
            "words_removed": self.words_removed,
            "formatting_only": self.formatting_only,
            "spans": [s.as_json() for s in self.spans],
        }


@dataclass(frozen=True)
class Excerpt:
    """One edit, shortly: ``section: "before" → "after"`` (a side is empty when nothing
    stood there). ``weight`` is the words it changes, for ranking."""

    section: str
    before: str
    after: str
    weight: int = 0

    def as_json(self) -> dict[str, str]:
        return {"section": self.section, "before": self.before, "after": self.after}

    def __str__(self) -> str:
        where = f"{self.section}: " if self.section else ""
        return f"{where}“{self.before}” → “{self.after}”"


@dataclass(frozen=True)
class TextDiff:
    """The difference between two texts, as aligned unit runs with word-level changes.

    ``first`` says the old text was empty (a first record: everything is inserted).
    """

    segments: tuple[Segment, ...]
    coarse: bool
    elapsed: float
    first: bool = False
    old_units: tuple[Reading, ...] = ()
    new_units: tuple[Reading, ...] = ()
    """What a reader sees of each unit of both texts (:mod:`archive.diff.reading`)."""

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(s for s in self.segments if isinstance(s, Change))

    @property
    def wording(self) -> tuple[Change, ...]:
        """The changes a reader reads (the others are formatting only)."""
        return tuple(c for c in self.changes if not c.formatting_only)

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(e for c in self.changes for e in c.edits)

    @property
    def wording_changes(self) -> int:
        """Units whose words changed, appeared, went or moved."""
        return sum(e.wording for e in self.edits)

    @property
    def formatting_changes(self) -> int:
        """Units whose Markdown changed but not what a reader reads."""
        return sum(e.kind == FORMATTING for e in self.edits)

    @property
    def moves(self) -> int:
        return sum(e.kind == MOVED for e in self.edits)

    @property
    def words_added(self) -> int:
        return sum(c.words_added for c in self.changes)

    @property
    def words_removed(self) -> int:
        return sum(c.words_removed for c in self.changes)

    @property
    def sections(self) -> tuple[str, ...]:
        """Headings of the sections whose wording changed (of every change when only the
        formatting did), in document order, without repeats."""
        return _unique(h for c in (self.wording or self.changes) for h in c.sections)

    def excerpts(self, limit: int = MAX_EXCERPTS) -> tuple[Excerpt, ...]:
        """The ``limit`` edits that change the most words, in document order (none for a
        first record: everything is new)."""
        if self.first:
            return ()
        found = [x for e in self.edits if e.wording for x in _excerpts(e)]
        ranked = sorted(range(len(found)), key=lambda k: -found[k].weight)[:limit]
        return tuple(found[k] for k in sorted(ranked))

    def summary(self) -> dict[str, Any]:
        return {
            "changes": len(self.changes),
            "words_added": self.words_added,
            "words_removed": self.words_removed,
            "formatting_changes": self.formatting_changes,
            "sections": list(self.sections),
            "excerpts": [e.as_json() for e in self.excerpts()],
            "coarse": self.coarse,
        }

    def layout(self, context: int = DEFAULT_CONTEXT) -> list[LayoutItem]:
        """Changes with ``context`` unchanged units around them; the rest marked ``hidden``."""
        items: list[LayoutItem] = []
        last = len(self.segments) - 1
        numbers = {False: 0, True: 0}  # wording changes and formatting-only ones, apart
        for i, seg in enumerate(self.segments):
            if isinstance(seg, Change):
                numbers[seg.formatting_only] += 1
                items.append(
                    LayoutItem(
                        "change",
                        change=seg,
                        number=numbers[seg.formatting_only],
                        old_start=seg.old_start,
                        new_start=seg.new_start,
                    )
                )
                continue
            lines = seg.lines
            head = min(context, len(lines)) if i > 0 else 0
            tail = min(context, len(lines) - head) if i < last else 0
            if len(lines) - head - tail <= 1:
                head, tail = len(lines), 0
            parts = (
                ("context", 0, head),
                ("hidden", head, len(lines) - tail),
                ("context", len(lines) - tail, len(lines)),
            )
            for kind, a, b in parts:
                if b > a:
                    items.append(
                        LayoutItem(
                            kind,
                            lines=lines[a:b],
                            old_start=seg.old_start + a,
                            new_start=seg.new_start + a,
                        )
                    )
        return items

    def hunks(self, context: int = DEFAULT_CONTEXT) -> list[Hunk]:
        """Groups of nearby changes with their context, as flat spans (for JSON and email)."""
        groups: list[list[LayoutItem]] = [[]]
        for item in self.layout(context):
            if item.kind == "hidden":
                groups.append([])
            else:
                groups[-1].append(item)
        hunks = []
        for group in groups:
            changes = [it.change for it in group if it.change is not None]
            if not changes:
                continue
            spans: list[Span] = []
            for it in group:
                if spans:
                    spans.append(Span(EQUAL, UNIT_SEPARATOR))
                if it.change is not None:
                    spans.extend(it.change.spans)
                else:
                    spans.append(Span(EQUAL, UNIT_SEPARATOR.join(it.lines)))
            hunks.append(
                Hunk(
                    old_start=group[0].old_start,
                    new_start=group[0].new_start,
                    spans=tuple(_merge(spans)),
                    sections=_unique(h for c in changes for h in c.sections),
                    words_added=sum(c.words_added for c in changes),
                    words_removed=sum(c.words_removed for c in changes),
                    formatting_only=all(c.formatting_only for c in changes),
                )
            )
        return hunks

    def as_json(self, context: int = DEFAULT_CONTEXT) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "changes": [_edit_json(e) for e in self.edits],
            "hunks": [h.as_json() for h in self.hunks(context)],
        }


def _edit_json(edit: Edit) -> dict[str, Any]:
    """One unit's change: ``kind`` (replace, insert, delete, moved, moved-away, formatting),
    ``from``/``to`` (1-based unit positions, null on the side it is missing from), its
    reading-text spans, and for a table row its cells' spans."""
    body: dict[str, Any] = {
        "kind": edit.kind,
        "from": None if edit.old is None else edit.old + 1,
        "to": None if edit.new is None else edit.new + 1,
        "section": edit.section or "",
        "words_added": edit.words_added,
        "words_removed": edit.words_removed,
        "spans": [s.as_json() for s in edit.spans],
    }
    if edit.cells:
        body["cells"] = [[s.as_json() for s in cell] for cell in edit.cells]
    if edit.move:
        body["move"] = edit.move
    return body


# --------------------------------------------------------------------------- computing


def units(text: str) -> list[str]:
    """The non-blank lines of a text, without trailing white space: what lines are aligned on."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def units_and_titles(text: str) -> tuple[list[str], list[str | None]]:
    """:func:`units`, and for each the title of the heading it is part of (else None).

    Headings are found on the text's own lines, blank lines included (a setext underline
    only underlines the line right above it)."""
    lines = text.splitlines()
    titles = unit_headings(lines)
    kept = [k for k, line in enumerate(lines) if line.strip()]
    return [lines[k].rstrip() for k in kept], [titles[k] for k in kept]


def diff_texts(old: str, new: str, *, timeout: float = DEFAULT_TIMEOUT) -> TextDiff:
    """Diff two Markdown texts: units aligned first, then words inside changed runs.

    Takes about ``timeout`` seconds at most: diff-match-patch aligns words while the first
    share of the budget lasts, :mod:`difflib` (with the same semantic clean-up) after that,
    and once the budget is spent the remaining runs are whole replacements (``coarse``).
    """
    budget = _Budget(timeout)
    (a, titles_a), (b, titles_b) = units_and_titles(old), units_and_titles(new)
    heads_a, heads_b = in_force(titles_a), in_force(titles_b)
    read_a, read_b = reading_units(old), reading_units(new)
    rough_words = False

    def word_diff(x: str, y: str) -> list[Span]:
        nonlocal rough_words
        spans, rough = _word_diff([x], [y], budget)
        rough_words = rough_words or rough
        return spans

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    opcodes = matcher.get_opcodes()
    runs = [
        edits_of_run(read_a[i1:i2], read_b[j1:j2], i1, j1, word_diff, until=budget.dmp_until)
        for op, i1, i2, j1, j2 in opcodes
        if op != "equal"
    ]
    runs = find_moves(runs, read_a, read_b, word_diff, until=budget.dmp_until)
    segments: list[Segment] = []
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            segments.append(Equal(i1, j1, tuple(a[i1:i2])))
            continue
        spans, rough = _word_diff(a[i1:i2], b[j1:j2], budget)
        edits = tuple(_placed(e, heads_a, heads_b) for e in runs.pop(0))
        segments.append(
            Change(
                old_start=i1,
                old_end=i2,
                new_start=j1,
                new_end=j2,
                spans=tuple(spans),
                sections=_sections(titles_a, titles_b, heads_a, heads_b, i1, i2, j1, j2),
                words_added=sum(e.words_added for e in edits),
                words_removed=sum(e.words_removed for e in edits),
                coarse=rough,
                unit_sections=tuple(heads_b[j1:j2] if j2 > j1 else heads_a[i1:i2]),
                edits=edits,
            )
        )
    coarse = rough_words or any(isinstance(s, Change) and s.coarse for s in segments)
    return TextDiff(
        tuple(segments),
        coarse,
        time.monotonic() - budget.started,
        first=not a,
        old_units=tuple(read_a),
        new_units=tuple(read_b),
    )


def _placed(edit: Edit, heads_a: list[str | None], heads_b: list[str | None]) -> Edit:
    """The edit with the section in force where a reader finds it (new side first)."""
    if edit.new is not None:
        return replace(edit, section=heads_b[edit.new])
    assert edit.old is not None
    return replace(edit, section=heads_a[edit.old])


class _Budget:
    """Deadlines of one diff: diff-match-patch until ``dmp_until``, anything until ``until``."""

    def __init__(self, timeout: float) -> None:
        self.started = time.monotonic()
        self.call_limit = max(CALL_TIMEOUT, timeout * CALL_SHARE)
        self.dmp_until = self.started + timeout * DMP_SHARE
        self.until = self.started + timeout


def _word_diff(old: list[str], new: list[str], budget: _Budget) -> tuple[list[Span], bool]:
    """Word-level spans for one changed run; paired unit by unit when the counts match.

    Returns the spans and whether they are a rough whole replacement (budget spent).
    """
    if old and new and len(old) == len(new) and len(old) > 1:
        spans: list[Span] = []
        rough = False
        for k, (x, y) in enumerate(zip(old, new, strict=True)):
            if k:
                spans.append(Span(EQUAL, UNIT_SEPARATOR))
            part, part_rough = _word_diff([x], [y], budget)
            spans.extend(part)
            rough = rough or part_rough
        return _merge(spans), rough
    old_text, new_text = UNIT_SEPARATOR.join(old), UNIT_SEPARATOR.join(new)
    if not old_text or not new_text:
        return _replace(old_text, new_text), False
    if time.monotonic() >= budget.until:  # spent: no alignment would run (see _align)
        return _replace(old_text, new_text), True
    tokens_a, tokens_b = _tokens(old_text), _tokens(new_text)
    vocabulary: dict[str, str] = {}
    try:
        enc_a, enc_b = _encode(tokens_a, vocabulary), _encode(tokens_b, vocabulary)
    except OverflowError:
        return _replace(old_text, new_text), True
    diffs = _align(enc_a, enc_b, budget)
    if diffs is None:
        return _replace(old_text, new_text), True
    diff_match_patch().diff_cleanupSemantic(diffs)
    return _merge(_tidy(_decode(diffs, tokens_a, tokens_b))), False


def _align(a: str, b: str, budget: _Budget) -> list[tuple[int, str]] | None:
    """Token alignment as diff-match-patch tuples, or None when the budget does not allow one."""
    now = time.monotonic()
    if now < budget.dmp_until:
        limit = min(budget.call_limit, budget.dmp_until - now)
        dmp = diff_match_patch()
        dmp.Diff_Timeout = limit
        wall = time.time()
        diffs = dmp.diff_main(a, b, False, wall + limit)
        if time.time() - wall < limit:
            return diffs
        now = time.monotonic()  # timed out: its answer is rough; align again with difflib
    if now >= budget.until or len(a) * len(b) > DIFFLIB_MAX_CELLS:
        return None
    diffs = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            diffs.append((0, b[j1:j2]))
            continue
        if i2 > i1:
            diffs.append((-1, a[i1:i2]))
        if j2 > j1:
            diffs.append((1, b[j1:j2]))
    return diffs


Token = tuple[str, str]
"""A word or a run of punctuation, and the white space after it."""


def _tokens(text: str) -> list[Token]:
    """The text's tokens; white space before the first one is a token of its own."""
    lead = text[: len(text) - len(text.lstrip())]
    tokens = [("", lead)] if lead else []
    tokens += _TOKEN.findall(text)
    return tokens


def _encode(tokens: list[Token], vocabulary: dict[str, str]) -> str:
    """One character per distinct word or punctuation run; white space is compared apart."""
    out = []
    for word, _ in tokens:
        char = vocabulary.get(word)
        if char is None:
            if len(vocabulary) >= _MAX_TOKENS:
                raise OverflowError("too many distinct tokens")
            char = vocabulary[word] = chr(_TOKEN_BASE + len(vocabulary))
        out.append(char)
    return "".join(out)


def _decode(diffs: list[tuple[int, str]], old: list[Token], new: list[Token]) -> list[Span]:
    """Map encoded diffs back onto the original text, exactly, white space included."""
    spans = []
    i = j = 0
    for op, chars in diffs:
        n = len(chars)
        if op == 0:
            for (word, gap_a), (_, gap_b) in zip(old[i : i + n], new[j : j + n], strict=True):
                spans.append(Span(EQUAL, word))
                if gap_a == gap_b:
                    spans.append(Span(EQUAL, gap_b))
                else:  # same words, different spacing: keep both sides exact
                    spans += [Span(DELETE, gap_a), Span(INSERT, gap_b)]
            i, j = i + n, j + n
        elif op < 0:
            spans.append(Span(DELETE, "".join(w + g for w, g in old[i : i + n])))
            i += n
        else:
            spans.append(Span(INSERT, "".join(w + g for w, g in new[j : j + n])))
            j += n
    return spans


def _replace(old_text: str, new_text: str) -> list[Span]:
    return [Span(op, text) for op, text in ((DELETE, old_text), (INSERT, new_text)) if text]


def _tidy(spans: list[Span]) -> list[Span]:
    """Move white space that ends both sides of a replacement out of the highlight."""
    out: list[Span] = []
    for span in spans:
        prev = out[-1] if out else None
        if span.op == INSERT and prev is not None and prev.op == DELETE:
            old_ws = prev.text[len(prev.text.rstrip()) :]
            new_ws = span.text[len(span.text.rstrip()) :]
            if old_ws and old_ws == new_ws and prev.text.strip() and span.text.strip():
                out[-1] = Span(DELETE, prev.text[: -len(old_ws)])
                out.append(Span(INSERT, span.text[: -len(new_ws)]))
                out.append(Span(EQUAL, new_ws))
                continue
        out.append(span)
    return out


def _merge(spans: list[Span]) -> list[Span]:
    """Join neighbouring spans of the same kind and drop empty ones."""
    out: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if out and out[-1].op == span.op:
            out[-1] = Span(span.op, out[-1].text + span.text)
        else:
            out.append(span)
    return out


def _sections(
    titles_a: list[str | None],
    titles_b: list[str | None],
    heads_a: list[str | None],
    heads_b: list[str | None],
    i1: int,
    i2: int,
    j1: int,
    j2: int,
) -> tuple[str, ...]:
    """The section in force where a change starts, plus every heading the change touches."""
    if j2 > j1:
        where = heads_b[j1]
    elif j1 > 0:
        where = heads_b[j1 - 1]
    else:
        where = heads_a[i1] if i2 > i1 else None
    touched = (*titles_a[i1:i2], *titles_b[j1:j2])
    return _unique(h for h in (where, *touched) if h)


def _excerpts(edit: Edit) -> list[Excerpt]:
    """Each edit of a unit's reading text (a run of deleted and inserted spans) as a short
    excerpt, with a few unchanged words of the unit around it; edits of white space or
    punctuation only are left out."""
    out: list[Excerpt] = []
    spans = edit.spans
    k = 0
    while k < len(spans):
        if spans[k].op == EQUAL:
            k += 1
            continue
        end = k
        while end < len(spans) and spans[end].op != EQUAL:
            end += 1
        before = "".join(s.text for s in spans[k:end] if s.op == DELETE)
        after = "".join(s.text for s in spans[k:end] if s.op == INSERT)
        weight = len(_WORD.findall(before)) + len(_WORD.findall(after))
        if weight:
            lead = spans[k - 1].text if k else ""
            trail = spans[end].text if end < len(spans) else ""
            lead = "".join(_PIECE_AFTER.findall(lead)[-EXCERPT_CONTEXT:])
            trail = "".join(_PIECE_BEFORE.findall(trail)[:EXCERPT_CONTEXT])
            out.append(
                Excerpt(
                    edit.section or "",
                    _short(lead + before + trail) if before else "",
                    _short(lead + after + trail) if after else "",
                    weight,
                )
            )
        k = end
    return out


def _short(text: str) -> str:
    pieces = text.split()
    if len(pieces) > EXCERPT_WORDS:
        return " ".join(pieces[: EXCERPT_WORDS - 1]) + " …"
    return " ".join(pieces)


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------- caching


DIFF_BYTES = 64_000_000
"""Computed diffs kept in memory (a diff holds about both texts; the largest are ~2 MB)."""
SUMMARIES = 100_000
"""Change summaries kept in memory (a few hundred bytes each), beside the diffs."""


def diff_size(diff: TextDiff) -> int:
    """Roughly the bytes a diff holds: the text of its lines, spans and section names."""
    total = sys.getsizeof(diff)
    for seg in diff.segments:
        if isinstance(seg, Equal):
            total += sum(sys.getsizeof(line) for line in seg.lines)
        else:
            total += sum(sys.getsizeof(span.text) for span in seg.spans)
            total += sum(sys.getsizeof(name) for name in seg.sections)
            total += sum(sys.getsizeof(s.text) for e in seg.edits for s in e.spans)
    for unit in (*diff.old_units, *diff.new_units):
        total += sys.getsizeof(unit) + sys.getsizeof(unit.text) * (2 if unit.cells else 1)
    return total


class DiffCache(LRU[Hashable, TextDiff]):
    """The LRU of computed diffs, keyed by anything that names two fixed texts and bounded by
    the bytes the diffs hold. Key diffs by version ids: a diff between two commits never
    changes.

    ``summaries`` keeps the change summaries (:mod:`archive.diff.summary`) of the same
    diffs, far smaller and kept far longer, keyed like the diffs.
    """

    def __init__(
        self, maxsize: int = 256, max_bytes: int | None = DIFF_BYTES, summaries: int = SUMMARIES
    ) -> None:
        super().__init__(maxsize, max_bytes, size=diff_size)
        self.summaries: LRU[Hashable, ChangeSummary] = LRU(maxsize=summaries)


def diff_versions(
    versions: VersionStore,
    old: Version | None,
    new: Version,
    *,
    cache: DiffCache | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TextDiff:
    """Diff two versions of one policy (``old`` None: against an empty text), cached by ids."""

    def compute() -> TextDiff:
        old_text = "" if old is None else versions.text(old.service, old.type, old.id)
        return diff_texts(old_text, versions.text(new.service, new.type, new.id), timeout=timeout)

    if cache is None:
        return compute()
    key = (new.service, new.type, old.id if old else None, new.id)
    return cache.get(key, compute)


def predecessor(versions: VersionStore, version: Version) -> Version | None:
    """The version recorded just before ``version`` of the same policy, if any."""
    history = versions.history(version.service, version.type)
    for i, v in enumerate(history):
        if v.id == version.id:
            return history[i - 1] if i else None
    return None
