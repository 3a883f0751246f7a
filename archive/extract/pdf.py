"""PDF to Markdown paragraphs with pypdf's text layer.

PDF text comes as hard-wrapped lines. Lines are joined into paragraphs; a paragraph ends at an
empty line, at a line clearly shorter than the page's text width (the last line of a paragraph,
a heading, a list item), or before a line that starts a list item. Bullets become ``-`` items.
Pages are separated like paragraphs. A PDF without a text layer (a scan) is an error: OCR is out
of scope.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader
from pypdf.errors import DependencyError, PyPdfError

from archive.errors import ExtractError
from archive.extract.text import escape_inline, escape_line_starts

_BULLET = re.compile(r"^[•◦▪‣●○■□–-]\s+")
_ITEM_START = re.compile(r"^(?:[•◦▪‣●○■□–-]\s+|\(?(?:\d{1,3}|[a-z]|[ivx]{1,5})[.)]\s)")
_SHORT = 0.75  # a line under 75% of the usual width ends its paragraph


def _paragraphs(lines: list[str]) -> list[str]:
    lengths = sorted(len(line) for line in lines if line)
    if not lengths:
        return []
    width = lengths[int(len(lengths) * 0.9)] if len(lengths) > 1 else lengths[0]
    paragraphs: list[str] = []
    current: list[str] = []

    def end() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for line in lines:
        if not line:
            end()
            continue
        if _ITEM_START.match(line):
            end()
        if current and current[-1].endswith("-") and line[:1].islower():
            current[-1] = current[-1] + line  # a word broken across lines: keep its hyphen
        else:
            current.append(line)
        if len(line) < _SHORT * width:
            end()
    end()
    return paragraphs


def _markdown(paragraph: str) -> str:
    bullet = _BULLET.match(paragraph)
    if bullet:
        return "- " + escape_inline(paragraph[bullet.end() :])
    return escape_line_starts(escape_inline(paragraph))


def pdf_to_markdown(body: bytes, url: str) -> str:
    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
    # pypdf reports some malformed files with KeyError/TypeError rather than its own errors.
    except (PyPdfError, DependencyError, ValueError, KeyError, TypeError) as exc:
        raise ExtractError(
            f"{url}: the PDF cannot be read ({exc}); check that the URL serves the document"
        ) from None
    lines = [" ".join(line.split()) for text in pages for line in [*text.splitlines(), ""]]
    paragraphs = _paragraphs(lines)
    if not paragraphs:
        raise ExtractError(
            f"{url}: the PDF ({len(pages)} page(s)) has no text layer: it is probably a scan. "
            "OCR is not supported; track an HTML version of the document instead"
        )
    return "\n\n".join(_markdown(p) for p in paragraphs)
