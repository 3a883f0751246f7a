"""What changed between two versions, for alerts: word counts and the changed passages.

Paragraphs (lines) are compared first, then the words inside changed paragraphs (difflib, as
measured in MEASUREMENTS.md: fast on large rewrites, readable whole-word output). A passage is a
run of segments (``equal`` context, ``delete``, ``insert``), long unchanged stretches trimmed,
so an email shows what changed without the whole document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

EQUAL, INSERT, DELETE = "equal", "insert", "delete"
ELLIPSIS = "…"
_TOKEN = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Segment:
    op: str
    text: str


@dataclass(frozen=True)
class ChangeSummary:
    """Counts and passages of one change (``first`` when there is no previous version)."""

    words_added: int
    words_removed: int
    passages: tuple[tuple[Segment, ...], ...] = field(default=())
    more_passages: int = 0
    first: bool = False

    def as_json(self) -> dict[str, int | bool]:
        return {
            "words_added": self.words_added,
            "words_removed": self.words_removed,
            "passages": len(self.passages) + self.more_passages,
            "first_record": self.first,
        }


def count_words(text: str) -> int:
    return len(_TOKEN.findall(text))


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        if out and out[-1].op == seg.op:
            out[-1] = Segment(seg.op, out[-1].text + seg.text)
        else:
            out.append(seg)
    return out


def _trim_equal(tokens: list[str], context: int, *, lead: bool, tail: bool) -> str:
    """Unchanged tokens between changes: keep ``context`` words next to each change."""
    keep_start = context if lead else 0
    keep_end = context if tail else 0
    if len(tokens) <= keep_start + keep_end + 1:
        return "".join(tokens)
    start = "".join(tokens[:keep_start])
    end = "".join(tokens[len(tokens) - keep_end :]) if keep_end else ""
    return f"{start}{ELLIPSIS} {end}" if start or end else ""


def _word_segments(old: list[str], new: list[str], context: int) -> tuple[list[Segment], int, int]:
    """Word-level segments of one changed block, with counts of added and removed words."""
    matcher = SequenceMatcher(
        None, [t.strip() for t in old], [t.strip() for t in new], autojunk=False
    )
    segments: list[Segment] = []
    added = removed = 0
    opcodes = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            text = _trim_equal(new[j1:j2], context, lead=n > 0, tail=n < len(opcodes) - 1)
            segments.append(Segment(EQUAL, text))
            continue
        if tag in ("delete", "replace"):
            segments.append(Segment(DELETE, "".join(old[i1:i2])))
            removed += i2 - i1
        if tag in ("insert", "replace"):
            segments.append(Segment(INSERT, "".join(new[j1:j2])))
            added += j2 - j1
    return segments, added, removed


def _cap(segments: list[Segment], max_words: int) -> list[Segment]:
    """Cut a passage after ``max_words`` words (a rewritten chapter stays readable)."""
    out, seen = [], 0
    for seg in segments:
        tokens = _TOKEN.findall(seg.text)
        if seen + len(tokens) > max_words:
            room = max(max_words - seen, 0)
            out.append(Segment(seg.op, "".join(tokens[:room]) + ELLIPSIS))
            break
        out.append(seg)
        seen += len(tokens)
    return out


def summarize(
    old: str | None,
    new: str,
    *,
    context: int = 12,
    max_passages: int = 12,
    max_passage_words: int = 200,
) -> ChangeSummary:
    """Compare two texts (``old`` None for a first record)."""
    if old is None:
        return ChangeSummary(words_added=count_words(new), words_removed=0, first=True)
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    opcodes = SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes()
    passages: list[tuple[Segment, ...]] = []
    added = removed = more = 0
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            continue
        old_tokens = _TOKEN.findall("".join(old_lines[i1:i2]))
        new_tokens = _TOKEN.findall("".join(new_lines[j1:j2]))
        segments, plus, minus = _word_segments(old_tokens, new_tokens, context)
        added, removed = added + plus, removed + minus
        if not plus and not minus:
            continue  # only whitespace moved
        if n > 0 and opcodes[n - 1][0] == "equal":
            _, _, _, pj1, pj2 = opcodes[n - 1]
            before = _TOKEN.findall("".join(new_lines[pj1:pj2]))[-context:]
            segments.insert(0, Segment(EQUAL, "".join(before)))
        if n + 1 < len(opcodes) and opcodes[n + 1][0] == "equal":
            _, _, _, nj1, nj2 = opcodes[n + 1]
            after = _TOKEN.findall("".join(new_lines[nj1:nj2]))[:context]
            segments.append(Segment(EQUAL, "".join(after)))
        if len(passages) < max_passages:
            passages.append(tuple(_merge(_cap(_merge(segments), max_passage_words))))
        else:
            more += 1
    return ChangeSummary(added, removed, tuple(passages), more)


def render_text(passage: tuple[Segment, ...]) -> str:
    """A passage as plain text: ``[-deleted-]`` and ``{+inserted+}`` (git's word-diff marks)."""
    parts = []
    for seg in passage:
        text = " ".join(seg.text.split())
        if seg.op == DELETE:
            parts.append(f"[-{text}-]")
        elif seg.op == INSERT:
            parts.append(f"{{+{text}+}}")
        else:
            parts.append(text)
    return " ".join(p for p in parts if p)
