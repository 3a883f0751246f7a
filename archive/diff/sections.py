"""Section headings of a Markdown policy, in the three styles extracted pages use.

- ATX: ``## 1. Data retention`` (closing ``#`` run allowed);
- setext: a line underlined with ``===`` (level 1) or ``---`` (level 2) right below it;
- bold-only lines used as headings: ``**1. Data retention**`` (a short line that is nothing
  but one bold run and does not end like a sentence).

Titles are the text a reader sees: links become their text, emphasis marks and Markdown
backslash escapes go (``[1\\. About](#x)`` → ``1. About``), and numbering is kept
(``11. Privacy Request Metrics``).
"""

from __future__ import annotations

import re

_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-{2,})[ \t]*$")
_BOLD_LINE = re.compile(r"^ {0,3}(\*\*|__)(?P<title>(?:(?!\1).)+?)\1[ \t]*:?[ \t]*$")
_NOT_A_TITLE_ABOVE = re.compile(r"^\s*(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|\||```|~~~|#)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_STRONG = re.compile(r"(\*\*|__)(.+?)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.I)
_WORDY = re.compile(r"\w")
MAX_BOLD_HEADING_WORDS = 12
"""Longest bold-only line read as a heading; longer bold lines are emphasised paragraphs."""


def clean_title(text: str) -> str:
    """Heading text as a reader sees it: no link targets, emphasis marks or escapes."""
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML_BREAK.sub(" ", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _ESCAPE.sub(r"\1", text)
    return " ".join(text.split())


def heading(line: str) -> str | None:
    """The title of a one-line heading (ATX ``## Title`` or a bold-only line), else None.

    Setext headings need the line below: see :func:`unit_headings`.
    """
    match = _ATX.match(line)
    if match:
        return clean_title(match.group(1)) or None
    match = _BOLD_LINE.match(line)
    if match:
        title = clean_title(match.group("title")).rstrip(":").rstrip()
        words = title.split()
        sentence = title.endswith((".", ",", ";", "!", "?"))
        if 0 < len(words) <= MAX_BOLD_HEADING_WORDS and _WORDY.search(title) and not sentence:
            return title
    return None


def _setext_title(above: str) -> str | None:
    if not above.strip() or _NOT_A_TITLE_ABOVE.match(above) or _UNDERLINE.match(above):
        return None
    return clean_title(above) or None


def unit_headings(lines: list[str]) -> list[str | None]:
    """For each line of a text (blank lines included), the title if it is part of a heading.

    A setext heading is two lines, its title and its underline: both carry the title, so a
    change to the underline alone names its section.
    """
    titles: list[str | None] = [heading(line) if line.strip() else None for line in lines]
    for k in range(1, len(lines)):
        if titles[k - 1] is None and _UNDERLINE.match(lines[k]):
            title = _setext_title(lines[k - 1])
            if title:
                titles[k - 1] = titles[k] = title
    return titles


def in_force(titles: list[str | None]) -> list[str | None]:
    """For each unit, the title of the heading in force there (the last one at or above)."""
    current: str | None = None
    out = []
    for title in titles:
        current = title or current
        out.append(current)
    return out


def sections_of(text: str) -> list[str]:
    """The titles of a text's headings, in order (every style)."""
    titles = [t for t in unit_headings(text.splitlines()) if t is not None]
    return [t for k, t in enumerate(titles) if not k or t != titles[k - 1]]
