"""Cut a policy text into sections that stay the same from one version to the next.

Consecutive versions of a policy share almost all their text, so the index stores each distinct
section once, with the run of versions in which it stood (see docs/decisions/0003). That only
pays if an edit changes the section it falls in and nothing else, so boundaries are
*content-defined*: a section ends after a paragraph whose own hash says so (once the section
has ``MIN_WORDS``), before a heading, or at ``MAX_WORDS``. Inserting a paragraph near the top
does not shift every boundary below it, as fixed-size chunks would.

Sections of about a hundred words also keep snippets cheap: highlighting re-analyses the text
it is cut from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIN_WORDS = 60
MAX_WORDS = 300
BOUNDARY_ONE_IN = 3

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SETEXT = re.compile(r"^\s*(=+|-+)\s*$")


@dataclass(frozen=True)
class Section:
    """One section of a version: its text and a key that is equal for equal text.

    ``key`` also counts earlier identical sections of the same version, so a paragraph that
    occurs twice is two sections. ``parts`` are the paragraphs (pieces) it is made of, joined
    by blank lines in ``text``: no word spans two of them, so a section's words are its parts'
    words in order (what lets :class:`SectionSplitter`'s callers analyse a part once).
    """

    key: str
    text: str
    words: int
    parts: tuple[str, ...] = ()


# A paragraph (a piece of at most MAX_WORDS words) as the cutting needs it: its text, words,
# whether it is a heading, and whether its hash says "cut after me".
Piece = tuple[str, int, bool, bool]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()


def _split_long(text: str) -> Iterator[str]:
    """Pieces of at most MAX_WORDS words: lines, then sentences, then word windows."""
    if len(text.split()) <= MAX_WORDS:
        yield text
        return
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        for line in lines:
            yield from _split_long(line)
        return
    piece: list[str] = []
    count = 0
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        if count and count + len(words) > MAX_WORDS:
            yield " ".join(piece)
            piece, count = [], 0
        while len(words) > MAX_WORDS:
            yield " ".join(words[:MAX_WORDS])
            words = words[MAX_WORDS:]
        piece += words
        count += len(words)
    if piece:
        yield " ".join(piece)


def _blocks(text: str) -> Iterator[str]:
    """The text's blocks between blank lines, stripped, empty ones left out."""
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n")):
        block = block.strip()
        if block:
            yield block


def paragraphs(text: str) -> Iterator[str]:
    """Blocks between blank lines; a block longer than MAX_WORDS is split further."""
    for block in _blocks(text):
        yield from _split_long(block)


def _is_heading(paragraph: str) -> bool:
    if paragraph.startswith("#"):
        return True
    lines = paragraph.split("\n")
    return len(lines) == 2 and bool(_SETEXT.match(lines[1]))


def _pieces(block: str) -> list[Piece]:
    return [
        (p, len(p.split()), _is_heading(p), _digest(p)[0] % BOUNDARY_ONE_IN == 0)
        for p in _split_long(block)
    ]


def _chunks(pieces: Iterable[Piece]) -> list[tuple[list[str], int]]:
    """Group pieces into sections (the rule in the module docstring): (parts, words)."""
    chunks: list[tuple[list[str], int]] = []
    buf: list[str] = []
    count = 0
    for para, words, heading, cut in pieces:
        if buf and count >= MIN_WORDS // 2 and heading:
            chunks.append((buf, count))
            buf, count = [], 0
        buf.append(para)
        count += words
        if count >= MAX_WORDS or (count >= MIN_WORDS and cut):
            chunks.append((buf, count))
            buf, count = [], 0
    if buf:
        chunks.append((buf, count))
    return chunks


def _keyed(chunks: Iterable[tuple[str, bytes, int, tuple[str, ...]]]) -> list[Section]:
    """Sections from (text, digest, words, parts), keyed by digest and occurrence."""
    seen: dict[bytes, int] = {}
    out = []
    for chunk, digest, words, parts in chunks:
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        out.append(Section(f"{digest.hex()}.{occurrence}", chunk, words, parts))
    return out


def split_sections(text: str) -> list[Section]:
    """The sections of ``text``, in order."""
    chunks = _chunks(piece for block in _blocks(text) for piece in _pieces(block))
    joined = ("\n\n".join(parts) for parts, _ in chunks)
    return _keyed(
        (chunk, _digest(chunk), words, tuple(parts))
        for chunk, (parts, words) in zip(joined, chunks, strict=True)
    )


class SectionSplitter:
    """:func:`split_sections` for many versions of the same policies: consecutive versions
    share almost all their paragraphs and sections, so each distinct block's pieces and
    each distinct section's text and digest are worked out once (bounded memories of those
    seen; the result is the same)."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._blocks: dict[str, list[Piece]] = {}
        self._chunks: dict[tuple[str, ...], tuple[str, bytes]] = {}

    def split(self, text: str) -> list[Section]:
        known, done = self._blocks, self._chunks
        if len(known) > self.limit or len(done) > self.limit:
            known.clear()
            done.clear()
        pieces: list[Piece] = []
        for block in _BLANK_LINES.split(text.replace("\r\n", "\n")):
            found = known.get(block)
            if found is None:
                stripped = block.strip()
                found = known[block] = _pieces(stripped) if stripped else []
            pieces += found
        out = []
        for parts, words in _chunks(pieces):
            key = tuple(parts)
            chunk = done.get(key)
            if chunk is None:
                joined = "\n\n".join(parts)
                chunk = done[key] = (joined, _digest(joined))
            out.append((chunk[0], chunk[1], words, key))
        return _keyed(out)
