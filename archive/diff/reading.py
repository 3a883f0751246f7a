"""What a reader sees of each unit of a Markdown text: its element and its reading text.

The diff aligns *units* (non-blank lines, :func:`archive.diff.units`); this module says, for
each of them, what the policy page shows there: the element its Markdown block becomes
(``p``, ``h2``, ``li``, ``tr``, ``pre``, ``hr``, or nothing: a setext underline, a table's
delimiter row) and its reading text — links as their text, emphasis marks, escapes, list
markers and table pipes gone, anchor ids (``{#id}``, ``<a id=…></a>``) dropped. Table rows
keep their cells apart, so tables diff cell by cell.

The Markdown is parsed by markdown-it-py with the options of the policy page's renderer
(:data:`MARKDOWN_PRESET`, :data:`MARKDOWN_OPTIONS`, :data:`MARKDOWN_RULES`, as in
``webui/render.py``): the diff reads the text the way the page renders it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

MARKDOWN_PRESET = "commonmark"
MARKDOWN_OPTIONS = {"html": False, "linkify": False, "typographer": False, "breaks": True}
MARKDOWN_RULES = ["table", "strikethrough"]

HIDDEN = ""
"""The element of a unit that shows nothing by itself (setext underline, table delimiter)."""

_ANCHOR = re.compile(r"\s*\{#[\w.:-]+\}|<a\s+(?:name|id)=[^>]*>\s*(?:</a>)?|</a>", re.I)
_NUMBERING = re.compile(
    r"^\(?(?:\d+(?:\.\d+)*[.)]|\d+(?:\.\d+)+|[ivxlc]+[.)]|[a-z][.)])\s+(?=\S)", re.I
)
_HEADING_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*[.)]?|[ivxlc]+[.)]|[a-z][.)])\s+(?=\S)", re.I)


@dataclass(frozen=True)
class Reading:
    """One unit as a reader sees it.

    ``tag`` is the element (``HIDDEN`` for none); ``cells`` the reading text of each cell of
    a table row (``text`` is then the cells joined by `` | ``); ``header`` a row of ``th``;
    ``list``/``depth``/``number`` place a list item; ``first`` says the unit opens its
    block (a paragraph's later lines, shown with a line break, have it False).
    """

    tag: str
    text: str
    cells: tuple[str, ...] = ()
    header: bool = False
    list: str = ""
    depth: int = 0
    number: int | None = None
    quote: bool = False
    first: bool = True

    @property
    def heading(self) -> bool:
        return len(self.tag) == 2 and self.tag[0] == "h" and self.tag[1].isdigit()

    @property
    def key(self) -> str:
        """What a reader can tell apart: the words and their order, white space folded."""
        if self.tag == "tr":
            return "\x1f".join(" ".join(c.split()) for c in self.cells)
        return " ".join(self.text.split())

    @property
    def unnumbered(self) -> str:
        """:attr:`key` without a leading section number (``4. Cookies`` → ``Cookies``; a
        bare ``4 Cookies`` in headings only: ``30 days`` in a paragraph is not a number)."""
        numbering = _HEADING_NUMBER if self.heading else _NUMBERING
        return numbering.sub("", self.key, count=1)


def new_parser() -> MarkdownIt:
    """A parser with the archive's Markdown options: the one home of those options (the web
    UI's renderer builds its own from here, so the diff reads blocks as the page shows them)."""
    return MarkdownIt(MARKDOWN_PRESET, dict(MARKDOWN_OPTIONS)).enable(MARKDOWN_RULES)


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    return new_parser()


def reading_units(text: str) -> list[Reading]:
    """A :class:`Reading` for each unit of ``text`` (each non-blank line), in order."""
    lines = text.splitlines()
    found: dict[int, Reading] = {}
    _read(parser().parse("\n".join(lines)), lines, found)
    return [
        found.get(k) or Reading("p", _clean(line.strip()))
        for k, line in enumerate(lines)
        if line.strip()
    ]


def _read(tokens: list[Token], lines: list[str], found: dict[int, Reading]) -> None:
    lists: list[tuple[str, int]] = []  # open lists: (ul/ol, next number)
    item_open = False  # the next paragraph is a list item's first one
    quote = 0
    header = False
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append((tok.tag, int(tok.attrGet("start") or 1)))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            item_open = True
        elif kind == "list_item_close":
            item_open = False
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "thead_open":
            header = True
        elif kind == "thead_close":
            header = False
        elif kind == "table_open" and tok.map:
            for line in range(*tok.map):  # the delimiter row: no row of its own
                found[line] = Reading(HIDDEN, "")
        elif kind in ("heading_open", "paragraph_open") and tok.map:
            inline = tokens[k + 1]
            block = Reading(tok.tag, "", quote=bool(quote), depth=len(lists))
            if kind == "paragraph_open" and item_open and lists:
                block = replace(block, tag="li", list=lists[-1][0], number=_item_number(tokens, k))
                item_open = False
            start, end = tok.map
            pieces = _pieces(inline.children or [])
            for n, line in enumerate(range(start, end)):
                if not lines[line].strip():
                    continue
                if n < len(pieces):
                    found[line] = replace(block, text=pieces[n], first=n == 0)
                else:  # a setext underline
                    found[line] = Reading(HIDDEN, "")
        elif kind == "tr_open" and tok.map:
            cells = []
            j = k + 1
            while tokens[j].type != "tr_close":
                if tokens[j].type == "inline":
                    cells.append(" ".join(_pieces(tokens[j].children or [])))
                j += 1
            found[tok.map[0]] = Reading(
                "tr", " | ".join(cells), cells=tuple(cells), header=header, depth=len(lists)
            )
        elif kind in ("fence", "code_block") and tok.map:
            for line in range(*tok.map):
                found[line] = Reading("pre", lines[line].rstrip())
        elif kind == "hr" and tok.map:
            found[tok.map[0]] = Reading("hr", "")
        k += 1


def _item_number(tokens: list[Token], k: int) -> int | None:
    """The number of the ordered list item whose paragraph opens at ``tokens[k]``."""
    opener = tokens[k - 1]
    if opener.type == "list_item_open" and opener.info.isdigit():
        return int(opener.info)
    return None


def _pieces(children: list[Token]) -> list[str]:
    """An inline run's reading text, one piece per source line."""
    pieces = [""]
    for child in children:
        if child.type in ("softbreak", "hardbreak"):
            pieces.append("")
        elif child.type in ("text", "code_inline"):
            pieces[-1] += child.content
    return [_clean(p) for p in pieces]


def _clean(text: str) -> str:
    return _ANCHOR.sub("", text).strip()
