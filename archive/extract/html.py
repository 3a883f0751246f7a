"""One HTML page to Markdown: decode, parse, remove, select, convert, check."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from archive.config import Source
from archive.errors import ExtractError
from archive.extract.charset import decode_html
from archive.extract.content import main_content_markdown
from archive.extract.markdown import Converter
from archive.extract.select import RangeMiss, apply_remove, apply_select, describe
from archive.extract.text import normalise
from archive.extract.walls import Signal, error_signal

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")


def parse_html(text: str, url: str) -> lxml.html.HtmlElement:
    # lxml refuses str input that carries an XML encoding declaration (XHTML pages).
    text = _XML_DECLARATION.sub("", text, count=1)
    if not text.strip():
        raise ExtractError(f"{url}: the page is empty (no bytes but whitespace)")
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractError(f"{url}: the page cannot be parsed as HTML ({exc})") from None


def base_url(doc: etree._Element, url: str) -> str:
    """The URL relative links resolve against: the page's ``<base href>`` if any."""
    base = doc.find(".//base[@href]")
    if base is None:
        return url
    try:
        return urljoin(url, base.get("href", "").strip())
    except ValueError:
        return url


def _page_summary(doc: etree._Element) -> str:
    """What the page looked like, for error messages: its title and its length in words."""
    title = " ".join((doc.findtext(".//title") or "").split())
    body = doc.find("body")
    words = len(" ".join(body.itertext()).split()) if body is not None else 0
    return f'titled "{title}", {words} words' if title else f"untitled, {words} words"


def _wall_error(url: str, signal: Signal) -> ExtractError:
    return ExtractError(
        f"not the document: {signal.reason} ({url}: an error page, a login or a bot wall). "
        "Check the URL in a browser; if a bot wall blocks us, try js = true "
        "(executeClientScripts) or a slower schedule"
    )


def _range_error(url: str, doc: etree._Element, role: str, problems: list[str]) -> ExtractError:
    consequence = (
        "the noise it should cut would be archived"
        if role == "remove"
        else "the document would be archived without that part"
    )
    return ExtractError(
        f"{url}: {'; '.join(problems)}, so {consequence}: the page is refused (page "
        f"{_page_summary(doc)}). The site may have changed its layout (update the "
        f"declaration's {role}) or need JavaScript (js = true)"
    )


def html_to_markdown(body: bytes, content_type: str, url: str, source: Source) -> str:
    doc = parse_html(decode_html(body, content_type), url)
    signal = error_signal(doc, body)
    base = base_url(doc, url)
    if source.remove:
        try:
            apply_remove(doc, source.remove)
        except RangeMiss as exc:
            if signal is not None:
                raise _wall_error(url, signal) from None
            raise _range_error(url, doc, "remove", [str(exc)]) from None
    if not source.select:
        markdown = main_content_markdown(doc, base)
    else:
        selection = apply_select(doc, source.select)
        roots = selection.roots
        if (not roots or selection.broken) and signal is not None:
            raise _wall_error(url, signal)
        if not roots:
            filters = (
                f"; the source also names custom filters we do not run "
                f"({', '.join(source.filters)}), which the selectors may rely on"
                if source.filters
                else ""
            )
            raise ExtractError(
                f"{url}: no select selector matched: "
                f"{'; '.join(selection.misses + selection.broken)} (page "
                f"{_page_summary(doc)}{filters}). The site may have changed its layout "
                "(update the declaration's select) or need JavaScript (js = true)"
            )
        if selection.broken:
            raise _range_error(url, doc, "select", selection.broken)
        markdown = normalise(Converter(base).convert(roots))
        if not markdown:
            names = ", ".join(describe(s) for s in source.select)
            raise ExtractError(
                f"{url}: select {names} matched {len(roots)} element(s) with no text in them; "
                "the content may be filled in by JavaScript (set js = true) or hidden"
            )
    if signal is not None and signal.rejects(markdown):
        raise _wall_error(url, signal)
    if not markdown:
        raise ExtractError(
            f"{url}: no text found in the page's main content (page {_page_summary(doc)}). "
            "Add a select selector for the policy's text"
        )
    return markdown
