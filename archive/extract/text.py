"""Whitespace normalisation and Markdown escaping shared by every extractor."""

from __future__ import annotations

import re

# Characters that render as nothing (zero-width space, BOM, soft hyphen, word joiner) are
# removed; no-break spaces become spaces. ZWNJ/ZWJ are kept: they change how some scripts render.
_REPLACEMENTS = (
    ("\u200b", ""),
    ("\ufeff", ""),
    ("\u00ad", ""),
    ("\u2060", ""),
    ("\u00a0", " "),
    ("\u202f", " "),
    ("\u2007", " "),
)

_BLANKS = re.compile(r"\n{3,}")

# Escapes, as turndown does: characters that would otherwise become Markdown syntax.
_INLINE_CHARS = "\\*_`[]"
_INLINE_SPECIAL = re.compile(r"[\\*_`\[\]]")
_LINE_START_CHARS = "#>-+=~0123456789"
_LINE_START = re.compile(
    r"^(#{1,6}[ \t]|>|[-+][ \t]|=+[ \t]*$|-+[ \t]*$|~~~|(\d+)([.)])[ \t])", re.MULTILINE
)


def normalise(markdown: str) -> str:
    """The whitespace normalisation used for storing and comparing versions.

    Line endings become ``\\n``; no-break spaces become spaces; zero-width characters and soft
    hyphens are removed; trailing spaces are stripped from every line; runs of blank lines become
    one blank line; leading and trailing blank lines are removed. The result has no final newline.
    """
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    for old, new in _REPLACEMENTS:
        if old in text:  # str.replace is fast; str.translate with a dict is not
            text = text.replace(old, new)
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANKS.sub("\n\n", text)
    return text.strip()


def escape_inline(text: str) -> str:
    """Escape the characters that are Markdown syntax anywhere in a line."""
    for char in _INLINE_CHARS:  # most text has none of them: skip the regex
        if char in text:
            return _INLINE_SPECIAL.sub(r"\\\g<0>", text)
    return text


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(2):  # "1. " or "1) " would start an ordered list
        return f"{match.group(2)}\\{match.group(3)} "
    return "\\" + match.group(0)


def escape_line_starts(text: str) -> str:
    """Escape what would start a heading, quote, list or setext underline at a line start."""
    if "\n" not in text and text[:1] not in _LINE_START_CHARS:
        return text
    return _LINE_START.sub(_escape_line_start, text)
