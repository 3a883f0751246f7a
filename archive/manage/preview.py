"""The extraction preview: a page fetched once, kept, and re-extracted on every selector change.

A kept page lives in ``data_dir/previews/<id>/`` (``meta.json`` and ``body``) under a random id,
for :data:`KEEP_FOR`; at most :data:`MAX_KEPT` are kept (the oldest go first). The page is
fetched through the same guarded :class:`~archive.fetch.Fetcher` as ``check`` (the SSRF guard
applies), or copied from a policy's latest snapshot when tuning it.

:func:`frame_document` makes the page safe to show in the admin UI's sandboxed frame: the
page's scripts, event handlers, frames, objects, ``<base>`` and ``<meta>`` (refresh) are
removed, links made absolute, and one script of ours (the element picker) put in, carrying the
nonce the frame's Content-Security-Policy allows.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import lxml.html
from lxml_html_clean import Cleaner

from archive.config import Selector, Source
from archive.errors import ExtractError
from archive.extract import extract
from archive.extract.charset import decode_html, sniff
from archive.extract.html import base_url, parse_html
from archive.extract.walls import error_signal
from archive.fetch import Fetcher
from archive.tracking.pipeline import finish_text

KEEP_FOR = timedelta(hours=6)
MAX_KEPT = 50
PREVIEW_DIR = "previews"
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_KEEP_LINKS = {"stylesheet", "icon"}


@dataclass(frozen=True)
class KeptPage:
    """A fetched page kept for the preview."""

    id: str
    url: str  # the URL asked for (the policy's)
    final_url: str  # after redirects: links resolve against it
    content_type: str
    body: bytes
    fetched_at: datetime
    js: bool = False


@dataclass(frozen=True)
class Preview:
    """What the archive would store with these selectors: its Markdown, or why it cannot."""

    markdown: str | None
    error: str | None
    words: int
    warnings: tuple[str, ...]
    seconds: float  # server time spent extracting


SHOWN_HEAD = 24_000
SHOWN_TAIL = 8_000


def excerpt(markdown: str, head: int = SHOWN_HEAD, tail: int = SHOWN_TAIL) -> str:
    """The Markdown the live preview renders: all of it when short, else its beginning and its
    end (where a wrong selector shows: a missing heading, a footer let in), cut between
    paragraphs, with a line saying how much is left out. Rendering a whole 150 KB text would
    take longer than extracting it."""
    if len(markdown) <= head + tail:
        return markdown
    start = markdown.rfind("\n\n", 0, head)
    start = start if start > head // 2 else head
    end = markdown.find("\n\n", len(markdown) - tail)
    end = end if end != -1 else len(markdown) - tail
    hidden = len(markdown[start:end].split())
    return f"{markdown[:start]}\n\n*[… {hidden:,} words not shown here …]*\n\n{markdown[end:]}"


class PreviewStore:
    """Kept pages in ``data_dir/previews`` (bounded in number and age)."""

    def __init__(self, data_dir: Path, *, keep_for: timedelta = KEEP_FOR, max_kept: int = MAX_KEPT):
        self.folder = Path(data_dir) / PREVIEW_DIR
        self.keep_for = keep_for
        self.max_kept = max_kept

    def keep(
        self,
        url: str,
        final_url: str,
        content_type: str,
        body: bytes,
        fetched_at: datetime,
        *,
        js: bool = False,
    ) -> KeptPage:
        self.prune()
        page_id = secrets.token_urlsafe(16)
        folder = self.folder / page_id
        folder.mkdir(parents=True)
        (folder / "body").write_bytes(body)
        meta = {
            "url": url,
            "final_url": final_url,
            "content_type": content_type,
            "fetched_at": fetched_at.isoformat(),
            "js": js,
        }
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        return KeptPage(page_id, url, final_url, content_type, body, fetched_at, js)

    def fetch(self, fetcher: Fetcher, url: str, *, js: bool = False) -> KeptPage:
        """Fetch ``url`` through the guarded fetcher and keep it (FetchError if it fails)."""
        fetched = fetcher.fetch(url, js=js)
        return self.keep(
            url,
            fetched.final_url or url,
            fetched.content_type,
            fetched.body,
            fetched.fetched_at,
            js=js,
        )

    def load(self, page_id: str) -> KeptPage | None:
        """The kept page, or None if the id is malformed, unknown or expired."""
        if not _ID.fullmatch(page_id):
            return None
        folder = self.folder / page_id
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            body = (folder / "body").read_bytes()
        except (OSError, ValueError):
            return None
        fetched_at = datetime.fromisoformat(meta["fetched_at"])
        if self._expired(folder):
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return KeptPage(
            page_id,
            meta["url"],
            meta["final_url"],
            meta["content_type"],
            body,
            fetched_at,
            bool(meta.get("js")),
        )

    def _expired(self, folder: Path) -> bool:
        try:
            age = time.time() - folder.stat().st_mtime
        except OSError:
            return True
        return age > self.keep_for.total_seconds()

    def prune(self) -> int:
        """Remove expired pages and the oldest beyond :attr:`max_kept` - 1; returns how many."""
        if not self.folder.is_dir():
            return 0
        entries = []
        for folder in self.folder.iterdir():
            try:
                entries.append((folder.stat().st_mtime, folder))
            except OSError:
                continue
        entries.sort(reverse=True)
        removed = 0
        for n, (_, folder) in enumerate(entries):
            if n >= self.max_kept - 1 or self._expired(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


# --------------------------------------------------------------------------- extraction


def preview(
    page: KeptPage,
    select: Sequence[Selector],
    remove: Sequence[Selector],
    *,
    min_chars: int = 0,
) -> Preview:
    """Extract ``page`` with these selectors, as a check would, and say what looks wrong."""
    started = time.perf_counter()
    source = Source(url=page.url, select=tuple(select), remove=tuple(remove), js=page.js)
    warnings: list[str] = []
    try:
        text = finish_text(extract(page.body, page.content_type, page.final_url, source))
    except ExtractError as exc:
        return Preview(None, str(exc), 0, (), time.perf_counter() - started)
    words = len(text.split())
    signal = _wall_signal(page)
    if signal is not None:
        warnings.append(
            f"This looks like an error page or a wall, not the document: {signal}. "
            "Check the URL in a browser; a check may refuse it."
        )
    if len(text.strip()) < min_chars:
        warnings.append(
            f"Only {len(text.strip())} characters: under the minimum of {min_chars} "
            "([fetch] min_text_chars), so a check would fail. Select more of the page."
        )
    return Preview(text, None, words, tuple(warnings), time.perf_counter() - started)


def _wall_signal(page: KeptPage) -> str | None:
    if sniff(page.body, page.content_type) != "html":
        return None
    try:
        doc = parse_html(decode_html(page.body, page.content_type), page.final_url)
    except ExtractError:
        return None
    signal = error_signal(doc, page.body)
    return signal.reason if signal is not None else None


# --------------------------------------------------------------------------- the frame


_CLEANER = Cleaner(
    scripts=True,
    javascript=True,
    comments=True,
    style=False,
    inline_style=False,
    links=False,
    meta=True,
    page_structure=False,
    processing_instructions=True,
    embedded=True,
    frames=True,
    forms=False,
    annoying_tags=True,
    remove_unknown_tags=False,
    safe_attrs_only=False,
    add_nofollow=False,
)


def _message_document(text: str, picker_src: str, nonce: str) -> str:
    doc = lxml.html.document_fromstring("<html><head></head><body><p></p></body></html>")
    for paragraph in doc.iter("p"):
        paragraph.text = text
    for head in doc.iter("head"):
        head.append(doc.makeelement("script", {"src": picker_src, "nonce": nonce}))
    return lxml.html.tostring(doc, encoding="unicode", doctype="<!doctype html>")


def frame_document(page: KeptPage, picker_src: str, nonce: str) -> str:
    """The page as HTML safe for the sandboxed preview frame, with our picker script."""
    kind = sniff(page.body, page.content_type)
    if kind != "html":
        return _message_document(
            f"This is a {kind.upper()} document: it is extracted whole, selectors do not apply.",
            picker_src,
            nonce,
        )
    try:
        doc = parse_html(decode_html(page.body, page.content_type), page.final_url)
    except ExtractError as exc:
        return _message_document(str(exc), picker_src, nonce)
    base = base_url(doc, page.final_url)
    kept_links = []
    for element in doc.xpath("//base|//link|//noscript"):
        rel = set((element.get("rel") or "").lower().split())
        if element.tag == "link" and rel & _KEEP_LINKS and not rel - _KEEP_LINKS:
            attributes = {"rel": " ".join(sorted(rel)), "href": element.get("href", "")}
            kept_links.append(doc.makeelement("link", attributes))
        element.drop_tree()
    # The cleaner drops stylesheets too (old browsers ran script in CSS); the frame's CSP allows
    # no script but our picker, so the page keeps its look.
    _CLEANER(doc)
    for element in doc.iter():  # what the cleaner leaves: srcdoc, form actions, targets
        if not isinstance(element.tag, str):
            continue
        for attribute in ("srcdoc", "formaction", "action", "target", "ping"):
            element.attrib.pop(attribute, None)
    head = doc.find("head")
    if head is None:
        head = doc.makeelement("head", {})
        doc.insert(0, head)
    for link in kept_links:
        head.append(link)
    doc.make_links_absolute(base, resolve_base_href=False, handle_failures="discard")
    head.insert(0, doc.makeelement("script", {"src": picker_src, "nonce": nonce}))
    return lxml.html.tostring(doc, encoding="unicode", doctype="<!doctype html>")
