"""Extraction: one fetched page (HTML, PDF or text) to clean, normalised Markdown.

The public interface used by the pipeline and the CLI::

    extract(body, content_type, url, source) -> str
    extract_document([(source, body, content_type, final_url), ...]) -> str
    decode_html(body, content_type) -> str
    normalise(markdown) -> str
    ignored_filters(sources) -> tuple[str, ...]
    EXTRACTOR_VERSION, DOCUMENT_SEPARATOR

Every failure is an :class:`~archive.errors.ExtractError` whose message says what the page
looked like and what to change. Whether a text is suspiciously shorter than the last version is
the pipeline's business, not this package's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from archive.config import Source
from archive.errors import ExtractError
from archive.extract.charset import decode_html, decode_text, sniff
from archive.extract.html import html_to_markdown
from archive.extract.pdf import pdf_to_markdown
from archive.extract.text import normalise

__all__ = [
    "DOCUMENT_SEPARATOR",
    "EXTRACTOR_VERSION",
    "decode_html",
    "extract",
    "extract_document",
    "ignored_filters",
    "normalise",
]

EXTRACTOR_VERSION = "2"
"""Bump whenever the output for the same input changes: it is recorded with every version,
and a bump lets the pipeline re-extract stored snapshots (``Re-extract`` commits).
2: ``<br>`` is a Markdown hard break; ``aria-hidden`` text is kept; a range selector whose start
or end matches nothing refuses the page."""

DOCUMENT_SEPARATOR = "\n\n- - -\n\n"
"""Between the pieces of a document combined from several sources: a thematic break, as
Open Terms Archive writes it (``- - -``; a ``<hr>`` inside a page is written ``* * *``)."""


def extract(body: bytes, content_type: str, url: str, source: Source) -> str:
    """Normalised Markdown of one fetched page.

    ``content_type`` is the response's Content-Type header (may be empty); ``url`` the final URL
    after redirects, against which links are made absolute. HTML gets ``source.remove`` then
    ``source.select`` (or main-content detection when there is no ``select``); PDF and plain
    text ignore the selectors. ``source.filters`` (Open Terms Archive JavaScript filters) are
    not run: see :func:`ignored_filters`.
    """
    kind = sniff(body, content_type)
    if kind == "html":
        return html_to_markdown(body, content_type, url, source)
    if kind == "pdf":
        markdown = normalise(pdf_to_markdown(body, url))
    elif kind == "text":
        markdown = normalise(decode_text(body, content_type))
    else:
        raise ExtractError(
            f"{url}: cannot extract text from a {content_type or 'binary'} response; "
            "point the source at the HTML, PDF or text version of the document"
        )
    if not markdown:
        raise ExtractError(f"{url}: the {kind.upper()} document has no text")
    return markdown


def extract_document(pieces: Sequence[tuple[Source, bytes, str, str]]) -> str:
    """One document from its sources, in order: ``(source, body, content_type, final_url)``.

    The pieces' Markdown is joined with :data:`DOCUMENT_SEPARATOR`. Every piece is tried; if
    any fails, one ExtractError names each failing source.
    """
    if not pieces:
        raise ValueError("extract_document needs at least one (source, body, type, url) piece")
    texts: list[str] = []
    errors: list[str] = []
    for number, (source, body, content_type, url) in enumerate(pieces, 1):
        try:
            texts.append(extract(body, content_type, url, source))
        except ExtractError as exc:
            errors.append(f"source {number} of {len(pieces)}: {exc}")
    if errors:
        raise ExtractError("; ".join(errors))
    return DOCUMENT_SEPARATOR.join(texts)


def ignored_filters(sources: Iterable[Source]) -> tuple[str, ...]:
    """The Open Terms Archive custom filters these sources name, which we cannot run.

    Their JavaScript is not part of a declaration and we do not execute it, so the text we
    extract may keep content the filter would have removed. Listed once each, in order.
    """
    return tuple(dict.fromkeys(name for source in sources for name in source.filters))
