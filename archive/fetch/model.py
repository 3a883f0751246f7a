"""What a fetch returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Fetched:
    """One fetched document: the raw (decompressed) bytes and the response metadata."""

    url: str
    """The URL requested."""
    final_url: str
    """The URL after redirects."""
    status: int
    """The HTTP status: 2xx, or 304 when ``not_modified``."""
    body: bytes = field(repr=False)
    """The raw bytes as received, decompressed; ``b""`` when ``not_modified``."""
    content_type: str
    """The Content-Type header, e.g. ``"text/html; charset=utf-8"`` (``""`` if none)."""
    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    """When the response arrived (timezone-aware UTC)."""
    not_modified: bool
    """True when the server answered 304 to a conditional request."""
    rendered: bool = False
    """True when the page was rendered by the browser (``js=True``)."""
