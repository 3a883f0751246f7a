"""Bytes to text: the character encoding of a fetched page, and what kind of page it is.

The order follows the WHATWG encoding sniffing algorithm that browsers use: a byte order mark
wins (a server that contradicts its own BOM is misconfigured), then the charset of the
Content-Type header, then a ``<meta charset>`` or ``<meta http-equiv="Content-Type">`` in the
first 4 KB, then UTF-8 when the bytes are valid UTF-8, and only then detection with
charset-normalizer (slow, so it is the last resort).
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_PRESCAN_BYTES = 4096
# Labels that browsers decode with a superset: ISO-8859-1 and ASCII pages are read as
# windows-1252, as every browser does (C1 bytes are curly quotes and dashes in practice);
# the same for the other legacy labels that the WHATWG Encoding Standard maps to a superset.
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}

HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
PDF_TYPES = ("application/pdf", "application/x-pdf")


def media_type(content_type: str) -> str:
    """``'text/html; charset=utf-8'`` -> ``'text/html'``."""
    return content_type.split(";", 1)[0].strip().lower()


def _codec(label: str | bytes | None) -> str | None:
    """Python's codec name for an encoding label, or None if Python does not know it."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


def bom_encoding(body: bytes) -> tuple[str, int] | None:
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name, len(bom)
    return None


def header_encoding(content_type: str) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return _codec(match.group(1)) if match else None


def meta_encoding(body: bytes) -> str | None:
    match = _META_CHARSET.search(body, 0, _PRESCAN_BYTES)
    name = _codec(match.group(1)) if match else None
    if name and name.startswith("utf-16"):
        return "utf-8"  # a page that can declare itself in ASCII bytes is not UTF-16 (WHATWG)
    return name


def _decode(body: bytes, content_type: str, declared: str | None) -> str:
    bom = bom_encoding(body)
    if bom:
        return body[bom[1] :].decode(bom[0], "replace")
    encoding = header_encoding(content_type) or declared
    if encoding:
        return body.decode(encoding, "replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(body).best()
    if best is None or best.encoding is None:
        return body.decode("utf-8", "replace")
    return body.decode(best.encoding, "replace")


def decode_html(body: bytes, content_type: str) -> str:
    """Decode an HTML page: BOM, then the header's charset, then ``<meta>``, then detection."""
    return _decode(body, content_type, meta_encoding(body))


def decode_text(body: bytes, content_type: str) -> str:
    """Decode a plain-text or Markdown file: BOM, then the header's charset, then detection."""
    return _decode(body, content_type, None)


_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title)\b",
    re.IGNORECASE | re.DOTALL,
)


def sniff(body: bytes, content_type: str) -> str:
    """``'html'``, ``'pdf'``, ``'text'`` or ``''`` (unsupported) for a fetched body.

    The bytes win over the header where they are unambiguous: a PDF served as
    ``application/octet-stream`` is a PDF, and an HTML page served as ``text/plain`` is HTML.
    """
    head = body[:1024]
    if head.lstrip().startswith(b"%PDF-"):
        return "pdf"
    kind = media_type(content_type)
    if kind in PDF_TYPES:
        return "pdf"
    bom = bom_encoding(head)
    if bom and bom[0].startswith("utf-16"):
        head = head[bom[1] :].decode(bom[0], "replace").encode("utf-8", "replace")
    looks_html = bool(_HTML_START.match(head.removeprefix(codecs.BOM_UTF8)))
    if kind in HTML_TYPES or looks_html:
        return "html"
    if kind in TEXT_TYPES or kind.startswith("text/"):
        return "text"
    if not kind or kind == "application/octet-stream":
        return "text" if b"\0" not in head else ""
    return ""
