"""Highlighting: the best window of a section's reading text for the matched words, escaped,
with those words in <mark> (both engines' snippets).

A section is stored as Markdown; a snippet is cut from what a reader of the rendered page sees
(:func:`reading_text`): no emphasis or heading markers, links as their text, no images, table
cells apart, no tags such as ``<br>``. So a word found only in a link target or an image never
gets highlighted, and a matched word that does show is the one marked. Highlighting re-analyses
the text it cuts from, so it only ever sees one section (a hundred words or so), never a whole
policy. The cut is the window of ``SNIPPET_CHARS`` with the most matched words (different words
first), widened to whole words.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from store.index.analysis import PolicyAnalyzer, fold, words

SNIPPET_CHARS = 240
CONTEXT_CHARS = 60
_SPACES = re.compile(r"\s+")

# Markdown → reading text. Backslash escapes are set aside first (as private-use characters)
# so that ``1\.`` or ``\*`` stay text while the syntax around them goes.
_ESCAPABLE = r"""!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~"""
_ESCAPE = re.compile(r"\\([" + re.escape(_ESCAPABLE) + "])")
_HIDDEN = 0xE000
_HIDDEN_CHAR = re.compile("[\ue000-\ue07f]")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_BREAK = re.compile(r"<br\s*/?>", re.I)
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^\s<>]+|mailto:[^\s<>]+|[^\s<>@]+@[^\s<>@]+)>")
# Tags a converter writes for layout; others (``<script>`` in a policy's text) show as text on
# the rendered page, which renders no raw HTML, and so they stay in the snippet, escaped.
_LAYOUT_TAG = re.compile(
    r"</?(?:a|abbr|b|big|blockquote|center|cite|code|dd|del|div|dl|dt|em|font|h[1-6]|hr|i|img"
    r"|ins|kbd|li|mark|ol|p|pre|q|s|small|span|strike|strong|sub|sup|table|tbody|td|tfoot|th"
    r"|thead|tr|tt|u|ul)\b[^<>]*>",
    re.I,
)
_TARGET = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
_IMAGE = re.compile(r"!\[[^\[\]]*\](?:" + _TARGET + r"|\[[^\[\]]*\])")
_LINK = re.compile(r"\[([^\[\]]*)\](?:" + _TARGET + r"|\[[^\[\]]*\])")
_LINK_TAIL = re.compile(r"\]\([^()\s]*\)?")  # what is left of a link cut in two
_DEFINITION = re.compile(r"^ {0,3}\[[^\[\]]+\]:\s*\S+.*$", re.M)
_RULE = re.compile(r"[\s|:=\-*_·]*")  # setext underlines, table separators, thematic breaks
_LINE_MARKERS = re.compile(r"^\s*(?:>\s*)*(?:#{1,6}(?=\s|$)|[*+\-](?=\s))?\s*")
_CLOSING_HASHES = re.compile(r"\s+#+\s*$")
_PIPES = re.compile(r"\s*\|(?:\s*\|)*\s*")
_EMPHASIS = re.compile(r"\*+|~~|`+|(?<![^\W_])_+|_+(?![^\W_])")
_ENDINGS = tuple(".!?:;,…")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.I)


@lru_cache(maxsize=1024)
def reading_text(markdown: str) -> str:
    """What a reader sees of a piece of policy Markdown, on one line: emphasis and heading
    markers, setext underlines, list markers and layout tags dropped; links as their text;
    images dropped whole; table cells apart (" · "); escapes and entities as their character.

    Works on pieces cut anywhere (a section may begin or end inside a link). Cached: it runs
    for every hit shown, and a section's text never changes.
    """
    text = _ESCAPE.sub(lambda m: chr(_HIDDEN + ord(m.group(1))), markdown)
    text = _COMMENT.sub(" ", text)
    text = _BREAK.sub("\n\n", text)  # a hard break, as a paragraph
    text = _AUTOLINK.sub(r" \1 ", text)
    text = _LAYOUT_TAG.sub(" ", text)
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _LINK_TAIL.sub("", text)
    text = _DEFINITION.sub("", text)
    return _restore(_join(text.split("\n")))


def _join(lines: list[str]) -> str:
    """The lines' text, with " · " before a table row and where the page breaks the line
    after no punctuation (around a heading or a list item, a new paragraph, a ``<br>``), else
    a space."""
    out: list[str] = []
    apart = gap = False
    for raw in lines:
        if _RULE.fullmatch(raw):
            apart = apart or bool(out and raw.strip())  # a setext underline: a heading above
            gap = True
            continue
        line = _LINE_MARKERS.sub("", raw, count=1)
        row = line.startswith("|")
        marked = row or len(line) < len(raw.lstrip())
        line = _CLOSING_HASHES.sub("", line)
        line = _PIPES.sub(" · ", line).strip(" ·")
        line = _EMPHASIS.sub("", line).replace("[", "").replace("]", "")
        line = html.unescape(line).strip()
        if not line:
            gap = True
            continue
        if out:
            broken = (apart or marked or gap) and not out[-1].endswith(_ENDINGS)
            out.append(" · " if row or broken else " ")
        out.append(line)
        apart, gap = marked, False
    return "".join(out)


def _restore(text: str) -> str:
    """Escaped characters back, spaces collapsed."""
    text = _HIDDEN_CHAR.sub(lambda m: chr(ord(m.group()) - _HIDDEN), text)
    return _SPACES.sub(" ", text).strip()


def _escape(text: str) -> str:
    return html.escape(_SPACES.sub(" ", text))


def highlight(
    markdown: str, terms: set[str], analyzer: PolicyAnalyzer, exact: frozenset[str] = frozenset()
) -> str:
    """The best window of the reading text of ``markdown`` for ``terms`` (index terms of
    ``analyzer``) and ``exact`` (folded words, matched word for word), as escaped HTML. Words
    inside a URL shown as text are not marked; with no word to mark, the start of the text."""
    text = reading_text(markdown)
    urls = [(m.start(), m.end()) for m in _URL.finditer(text)]
    found = [
        (m.start(), m.end(), term)
        for m in words(text)
        if ((term := analyzer.term(m.group())) in terms or fold(m.group()) in exact)
        and not any(a <= m.start() < b for a, b in urls)
    ]
    if not found:
        return cut(text)
    best, best_key = 0, (0, 0)
    for i, (start, _, _) in enumerate(found):
        inside = [f for f in found[i:] if f[1] <= start + SNIPPET_CHARS - CONTEXT_CHARS]
        key = (len({f[2] for f in inside}), len(inside))
        if key > best_key:
            best, best_key = i, key
    begin = max(0, found[best][0] - CONTEXT_CHARS)
    while begin > 0 and not text[begin - 1].isspace():
        begin -= 1
    end = min(len(text), begin + SNIPPET_CHARS)
    while end < len(text) and not text[end].isspace():
        end += 1
    out = ["… " if begin > 0 else ""]
    pos = begin
    for start, stop, _ in found:
        if start < begin or stop > end:
            continue
        out.append(_escape(text[pos:start]))
        out.append("<mark>" + _escape(text[start:stop]) + "</mark>")
        pos = stop
    out.append(_escape(text[pos:end]))
    out.append(" …" if end < len(text) else "")
    return "".join(out).strip()


def cut(text: str) -> str:
    """The start of ``text`` (reading text), escaped."""
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) <= SNIPPET_CHARS:
        return html.escape(flat)
    head = flat[:SNIPPET_CHARS].rsplit(" ", 1)[0]
    return html.escape(head) + " …"
