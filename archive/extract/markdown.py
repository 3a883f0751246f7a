"""An lxml tree to Markdown, close to what Open Terms Archive records with turndown + GFM.

Written for the hot path (one pass over the selected elements, no second parser) and for stable
output. Choices that differ from turndown's defaults, on purpose: ATX headings (``#``), ``-``
bullets, fenced code blocks, ``*`` for emphasis; ``<br>`` is a hard line break written as a
backslash at the end of the line (turndown writes two spaces, which normalise() strips);
elements that are not rendered (``hidden``, inline ``display:none``), scripts, styles, embedded
frames and form controls are dropped, but ``aria-hidden`` text is kept: it is on the screen;
links and images are absolute and without tracking parameters (in-page ``#anchors`` stay as they
are); Cloudflare-obfuscated e-mail addresses are decoded. Tables become GFM tables (an empty
header row when the table has none, as the GFM plugin Open Terms Archive uses does); one-column
tables and tables holding headings are layout, not data, and are converted as ordinary blocks so
that their headings survive.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Iterator

from lxml import etree

from archive.extract.text import escape_inline, escape_line_starts
from archive.extract.urls import absolute_url, markdown_url

# fmt: off
SKIP = frozenset({
    "script", "style", "noscript", "template", "svg", "iframe", "frame", "frameset", "object",
    "embed", "canvas", "audio", "video", "source", "track", "map", "area", "param", "head",
    "title", "meta", "link", "base", "input", "select", "textarea", "option", "optgroup",
    "datalist",
})
BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "output", "p",
    "section", "search", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
# fmt: on
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
MAX_DEPTH = 200  # deeper content is kept as plain text rather than overflowing the stack

PARA, HEADING, LIST, QUOTE, CODE, TABLE = range(6)

_WS = re.compile(r"\s+")
_SPACE_RUN = re.compile(r" {2,}")
_AROUND_NEWLINE = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\s*"
    r"(?:!\s*important\s*)?(?=;|$)",
    re.IGNORECASE,
)
_CF_EMAIL_PATH = "/cdn-cgi/l/email-protection"
# Inline runs hold a newline only where the page has a <br> (text nodes are collapsed). A lone
# one is a line break, written as a CommonMark hard break: a backslash before the newline,
# because normalise() strips trailing spaces (turndown writes two). Two or more <br> in a row
# already became a blank line, a paragraph break.
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")
HARD_BREAK = "\\\n"


def is_hidden(element: etree._Element) -> bool:
    """Not rendered: the ``hidden`` attribute (not ``until-found``, whose text the browser's
    find-in-page reveals) or an inline ``display:none`` / ``visibility:hidden|collapse`` style.

    ``aria-hidden="true"`` is not hiding: it hides an element from screen readers only, and
    its text is on the screen (Open Terms Archive records it too).
    """
    hidden = element.get("hidden")
    if hidden is not None and hidden.lower() != "until-found":
        return True
    style = element.get("style")
    return style is not None and _HIDDEN_STYLE.search(style) is not None


def _collapse(text: str) -> str:
    """Runs of whitespace (NBSP included) become one space, as a browser renders them."""
    words = text.split()
    if not words:
        return " "
    collapsed = " ".join(words)
    if text[0].isspace():
        collapsed = " " + collapsed
    if text[-1].isspace():
        collapsed += " "
    return collapsed


def _tidy(text: str) -> str:
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    if "\n" in text:
        text = _AROUND_NEWLINE.sub("\n", text)
        if "\n\n\n" in text:
            text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _surround(content: str, before: str, after: str) -> str:
    """``before`` + content + ``after``, with the content's outer whitespace kept outside."""
    stripped = content.strip()
    if not stripped:
        return content
    lead = content[: len(content) - len(content.lstrip())]
    trail = content[len(content.rstrip()) :]
    return f"{lead}{before}{stripped}{after}{trail}"


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0]] + [rest + line if line else line for line in lines[1:]])


def decode_cf_email(hex_string: str) -> str | None:
    """The address behind Cloudflare's e-mail obfuscation (a hex string XORed with its 1st byte)."""
    try:
        data = bytes.fromhex(hex_string)
        # Cloudflare encodes the address as written in the page, character references included.
        return html.unescape(bytes(b ^ data[0] for b in data[1:]).decode("utf-8")) or None
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


class _Out:
    """Finished blocks plus the inline run being built."""

    __slots__ = ("blocks", "generation", "inline")

    def __init__(self) -> None:
        self.blocks: list[tuple[int, str]] = []
        self.inline: list[str] = []
        self.generation = 0  # changes whenever inline text is moved into a block

    def flush(self, escape: bool = True) -> None:
        """Move the inline run into a paragraph block.

        With ``escape`` (the run becomes Markdown) line starts are escaped and each ``<br>``
        becomes a hard break; without (a heading or a table cell reuses the text) the
        ``<br>`` stays a bare newline for the caller to render.
        """
        if not self.inline:
            return
        text = _tidy("".join(self.inline))
        self.inline.clear()
        self.generation += 1
        if text:
            if escape:
                text = escape_line_starts(text)
                if "\n" in text:
                    text = _LINE_BREAK.sub(lambda _: HARD_BREAK, text)
            self.blocks.append((PARA, text))

    def add(self, kind: int, text: str) -> None:
        self.flush()
        self.generation += 1
        if text:
            self.blocks.append((kind, text))

    def mark(self) -> tuple[int, int]:
        return self.generation, len(self.inline)

    def take(self, mark: tuple[int, int]) -> str | None:
        """The inline text added since ``mark``, removed from the run; None if a block began."""
        generation, start = mark
        if generation != self.generation:
            return None
        text = "".join(self.inline[start:])
        del self.inline[start:]
        return text

    def joined(self, escape: bool = True) -> str:
        self.flush(escape)
        return "\n\n".join(text for _, text in self.blocks)


class Converter:
    """Converts elements of one page; ``base_url`` resolves relative links and images."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.depth = 0
        self.cell = 0  # inside a table cell
        self.form = 0  # inside a <form>
        self.strong = 0
        self.em = 0
        handlers: dict[str, Callable[[etree._Element, _Out], None]] = {
            "a": self._link,
            "b": self._strong,
            "strong": self._strong,
            "em": self._em,
            "i": self._em,
            "del": self._strike,
            "s": self._strike,
            "strike": self._strike,
            "code": self._code,
            "kbd": self._code,
            "samp": self._code,
            "tt": self._code,
            "pre": self._pre,
            "ul": self._list,
            "ol": self._list,
            "li": self._orphan_item,
            "blockquote": self._quote,
            "table": self._table,
            "img": self._img,
            "br": self._br,
            "hr": self._hr,
            "form": self._form,
        }
        handlers.update(dict.fromkeys(HEADINGS, self._heading))
        self._handlers = handlers

    # ------------------------------------------------------------------ walking

    def convert(self, roots: Iterable[etree._Element]) -> str:
        """Markdown for ``roots`` in order (the roots are kept even if marked hidden)."""
        out = _Out()
        for root in roots:
            self._element(root, out, check_hidden=False)
            out.flush()
        return out.joined()

    def _element(self, el: etree._Element, out: _Out, check_hidden: bool = True) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            return  # comment or processing instruction; the caller keeps its tail
        if tag[:1] == "{":
            tag = tag.rpartition("}")[2]
        if tag in SKIP or (check_hidden and is_hidden(el)):
            return
        if (tag == "dialog" and el.get("open") is None) or (tag == "button" and self.form):
            return
        cf_email = el.get("data-cfemail")
        if cf_email is not None and tag != "a":
            out.inline.append(escape_inline(decode_cf_email(cf_email) or "[email protected]"))
            return
        handler = self._handlers.get(tag)
        if handler is not None:
            handler(el, out)
        elif tag in BLOCK:
            out.flush()
            self._children(el, out)
            out.flush()
        else:
            self._children(el, out)

    def _children(self, el: etree._Element, out: _Out) -> None:
        if self.depth >= MAX_DEPTH:
            out.inline.append(escape_inline(_collapse("".join(el.itertext()))))
            return
        if el.text:
            out.inline.append(escape_inline(_collapse(el.text)))
        self.depth += 1
        for child in el:
            self._element(child, out)
            if child.tail:
                out.inline.append(escape_inline(_collapse(child.tail)))
        self.depth -= 1

    def _block(self, el: etree._Element, out: _Out) -> None:
        out.flush()
        self._children(el, out)
        out.flush()

    def _sub(self, el: etree._Element) -> _Out:
        sub = _Out()
        self._children(el, sub)
        return sub

    # ------------------------------------------------------------------ inline

    def _wrap(self, el: etree._Element, out: _Out, before: str, after: str) -> None:
        mark = out.mark()
        self._children(el, out)
        content = out.take(mark)
        if content is not None:  # None: the element held blocks; keep them unwrapped
            out.inline.append(_surround(content, before, after))

    def _strong(self, el: etree._Element, out: _Out) -> None:
        if self.strong:
            self._children(el, out)
            return
        self.strong += 1
        self._wrap(el, out, "**", "**")
        self.strong -= 1

    def _em(self, el: etree._Element, out: _Out) -> None:
        if self.em:
            self._children(el, out)
            return
        self.em += 1
        self._wrap(el, out, "*", "*")
        self.em -= 1

    def _strike(self, el: etree._Element, out: _Out) -> None:
        self._wrap(el, out, "~~", "~~")

    def _code(self, el: etree._Element, out: _Out) -> None:
        text = _WS.sub(" ", "".join(el.itertext()))
        if not text.strip():
            out.inline.append(text)
            return
        fence = "``" if "`" in text else "`"
        pad = " " if "`" in text else ""
        out.inline.append(_surround(text, fence + pad, pad + fence))

    def _link(self, el: etree._Element, out: _Out) -> None:
        href = el.get("href")
        address = None
        if href and _CF_EMAIL_PATH in href:
            address = decode_cf_email(el.get("data-cfemail") or href.partition("#")[2])
            href = f"mailto:{address}" if address else href.partition("#")[0]
        url = absolute_url(href, self.base)
        if url is None:
            self._children(el, out)
            return
        mark = out.mark()
        self._children(el, out)
        content = out.take(mark)
        if content is None:
            return
        if address and "protected" in content:  # Cloudflare's "[email protected]" placeholder
            content = escape_inline(address)
        if content.strip():
            content = _surround(content, "[", f"]({markdown_url(url)})")
        out.inline.append(content)

    def _img(self, el: etree._Element, out: _Out) -> None:
        src = absolute_url(el.get("src"), self.base)
        if src is not None and not src.startswith("#"):
            alt = escape_inline(_WS.sub(" ", el.get("alt") or "").strip())
            out.inline.append(f"![{alt}]({markdown_url(src)})")

    def _br(self, el: etree._Element, out: _Out) -> None:
        out.inline.append("\n")

    # ------------------------------------------------------------------ blocks

    def _hr(self, el: etree._Element, out: _Out) -> None:
        out.add(PARA, "* * *")

    def _form(self, el: etree._Element, out: _Out) -> None:
        self.form += 1
        self._block(el, out)
        self.form -= 1

    def _heading(self, el: etree._Element, out: _Out) -> None:
        if self.cell:
            self._block(el, out)
            return
        sub = self._sub(el)
        sub.flush(escape=False)
        text = _SPACE_RUN.sub(" ", " ".join(t for _, t in sub.blocks).replace("\n", " ")).strip()
        if text.endswith("#"):
            text = text[:-1] + "\\#"
        if text:
            out.add(HEADING, "#" * int(str(el.tag)[-1]) + " " + text)

    def _pre(self, el: etree._Element, out: _Out) -> None:
        text = "".join(el.itertext()).strip("\n").rstrip()
        if not text.strip():
            return
        fence = "```"
        while fence in text:
            fence += "`"
        out.add(CODE, f"{fence}\n{text}\n{fence}")

    def _quote(self, el: etree._Element, out: _Out) -> None:
        text = self._sub(el).joined()
        if text:
            out.add(QUOTE, "\n".join(f"> {line}" if line else ">" for line in text.split("\n")))

    def _item(self, li: etree._Element) -> str:
        sub = self._sub(li)
        sub.flush()
        parts: list[str] = []
        previous = None
        for kind, text in sub.blocks:
            if previous is not None:
                parts.append("\n" if kind == LIST and previous == PARA else "\n\n")
            parts.append(text)
            previous = kind
        return "".join(parts)

    def _items(self, el: etree._Element) -> Iterator[tuple[bool, str]]:
        """(is a nested list, Markdown) for each item of a list, wrappers looked through."""
        for child in el:
            if not isinstance(child.tag, str) or child.tag in SKIP or is_hidden(child):
                continue
            if child.tag == "li":
                yield False, self._item(child)
            elif child.tag in ("ul", "ol"):  # a list directly inside a list: nest it
                sub = _Out()
                self._list(child, sub)
                yield True, sub.joined()
            elif child.find(".//li") is not None:
                yield from self._items(child)
            else:
                yield False, self._sub(child).joined()

    def _list(self, el: etree._Element, out: _Out) -> None:
        ordered = el.tag == "ol"
        try:
            number = int(el.get("start", "1")) if ordered else 0
        except ValueError:
            number = 1
        items: list[str] = []
        for nested, text in self._items(el):
            if not text:
                continue
            if nested and items:
                items[-1] += "\n" + _indent(text, "  ", "  ")
                continue
            marker = f"{number}. " if ordered else "- "
            number += 1
            items.append(_indent(text, marker, " " * len(marker)))
        if items:
            loose = any("\n\n" in item for item in items)
            out.add(LIST, ("\n\n" if loose else "\n").join(items))

    def _orphan_item(self, el: etree._Element, out: _Out) -> None:
        text = self._item(el)
        if text:
            out.add(LIST, _indent(text, "- ", "  "))

    # ------------------------------------------------------------------ tables

    def _rows(self, table: etree._Element) -> Iterator[tuple[etree._Element, bool]]:
        for child in table:
            if child.tag == "tr":
                yield child, False
            elif child.tag in ("thead", "tbody", "tfoot") and not is_hidden(child):
                for row in child:
                    if row.tag == "tr":
                        yield row, child.tag == "thead"

    def _cell(self, cell: etree._Element) -> str:
        self.cell += 1
        sub = self._sub(cell)
        self.cell -= 1
        # GFM cells are one line: line breaks inside a cell are written <br>, as the GFM plugin
        # Open Terms Archive uses does, so that lists and paragraphs in a cell stay readable.
        return sub.joined(escape=False).replace("\n", "<br>").replace("|", "\\|")

    def _table(self, el: etree._Element, out: _Out) -> None:
        rows = []
        for tr, in_head in self._rows(el):
            if is_hidden(tr):
                continue
            cells = [c for c in tr if c.tag in ("td", "th") and not is_hidden(c)]
            rows.append((tr, cells, in_head or (bool(cells) and all(c.tag == "th" for c in cells))))
        width = max((len(cells) for _, cells, _ in rows), default=0)
        if width <= 1 or next(el.iter(*HEADINGS), None) is not None:
            self._block(el, out)  # a layout table
            return
        caption = el.find("caption")
        if caption is not None:
            self._block(caption, out)
        lines = []
        for _, cells, _ in rows:
            texts = []
            for cell in cells:
                texts.append(self._cell(cell))
                try:
                    span = min(max(int(cell.get("colspan", "1")), 1), 50)
                except ValueError:
                    span = 1
                texts.extend([""] * (span - 1))
            lines.append(texts)
        ncols = max(len(texts) for texts in lines)
        header_row = rows[0][2]
        header = lines.pop(0) if header_row else [""] * ncols
        body = [header, ["---"] * ncols, *lines]
        rendered = ["| " + " | ".join(row + [""] * (ncols - len(row))) + " |" for row in body]
        out.add(TABLE, "\n".join(rendered))
