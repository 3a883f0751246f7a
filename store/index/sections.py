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
from collections.abc import Iterator
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
    occurs twice is two sections.
    """

    key: str
    text: str
    words: int


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


def paragraphs(text: str) -> Iterator[str]:
    """Blocks between blank lines; a block longer than MAX_WORDS is split further."""
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n")):
        block = block.strip()
        if block:
            yield from _split_long(block)


def _is_heading(paragraph: str) -> bool:
    if paragraph.startswith("#"):
        return True
    lines = paragraph.split("\n")
    return len(lines) == 2 and bool(_SETEXT.match(lines[1]))


def split_sections(text: str) -> list[Section]:
    """The sections of ``text``, in order."""
    chunks: list[tuple[str, int]] = []
    buf: list[str] = []
    count = 0
    for para in paragraphs(text):
        words = len(para.split())
        if buf and count >= MIN_WORDS // 2 and _is_heading(para):
            chunks.append(("\n\n".join(buf), count))
            buf, count = [], 0
        buf.append(para)
        count += words
        if count >= MAX_WORDS or (count >= MIN_WORDS and _digest(para)[0] % BOUNDARY_ONE_IN == 0):
            chunks.append(("\n\n".join(buf), count))
            buf, count = [], 0
    if buf:
        chunks.append(("\n\n".join(buf), count))
    seen: dict[bytes, int] = {}
    out = []
    for chunk, words in chunks:
        digest = _digest(chunk)
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        out.append(Section(f"{digest.hex()}.{occurrence}", chunk, words))
    return out
