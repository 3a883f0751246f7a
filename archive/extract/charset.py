"""Bytes to text: the character encoding of a fetched page, and what kind of page it is.

The order follows the WHATWG encoding sniffing algorithm that browsers use: a byte order mark
wins (a server that contradicts its own BOM is misconfigured), then the charset of the
Content-Type header, then a ``<meta charset>`` or ``<meta http-equiv="Content-Type">`` in the
first 4 KB, then UTF-8 when the bytes are valid UTF-8, and only then detection with
charset-normalizer (slow, so it is the last resort).

One step comes before the labels: UTF-16 and UTF-32 without a BOM are recognised by their NUL
bytes (ASCII markup in UTF-16-LE is every other byte NUL), whatever the page is labelled, since
no page in an ASCII-compatible encoding has NULs in those places. Then a decoded text with more
than a trace of U+FFFD replacement characters or control characters is refused: it is not the
page's text, and storing it would record garbage as a version.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from archive.errors import ExtractError

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16-LE's
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_PRESCAN_BYTES = 4096
_NUL_SAMPLE_BYTES = 1024  # bytes looked at for the NUL pattern of UTF-16/32 without a BOM
_NUL_MOSTLY = 0.6  # share of NULs in the byte positions that are NUL in ASCII text
_NUL_RARELY = 0.05  # ... and in the position that holds the ASCII byte
# a decoded text may hold this many U+FFFD / control characters, or this share of its length
GARBLED_TRACE_CHARS = 8
GARBLED_TRACE_SHARE = 0.002
_GARBLED = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCRIPTS_AND_TAGS = re.compile(
    r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL
)
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


def _nul_shares(sample: bytes, width: int) -> list[float]:
    """For each byte position modulo ``width``, the share of NUL bytes there."""
    rows = len(sample) // width
    return [sample[i : rows * width : width].count(0) / rows for i in range(width)]


def nul_pattern_encoding(body: bytes) -> str | None:
    """UTF-16 or UTF-32 (with endianness) recognised by where the NUL bytes are, or None.

    Markup and Latin text encoded in UTF-16-LE have a NUL in every odd byte and none in the
    even ones (the reverse in big-endian); UTF-32 has three NULs in every four bytes. The
    pattern must hold in the first character and in most of the first kilobyte.
    """
    sample = body[:_NUL_SAMPLE_BYTES]
    if len(sample) < 16 or sample.count(0) < len(sample) // 4:
        return None
    # the first character must be ASCII too ("<", a space): a page starts with markup
    nuls = tuple(byte == 0 for byte in sample[:4])
    b0, b1, b2, b3 = _nul_shares(sample, 4)
    if nuls == (False, True, True, True) and min(b1, b2, b3) >= _NUL_MOSTLY and b0 <= _NUL_RARELY:
        return "utf-32-le"
    if nuls == (True, True, True, False) and min(b0, b1, b2) >= _NUL_MOSTLY and b3 <= _NUL_RARELY:
        return "utf-32-be"
    even, odd = _nul_shares(sample, 2)
    if nuls[:2] == (False, True) and odd >= _NUL_MOSTLY and even <= _NUL_RARELY:
        return "utf-16-le"
    if nuls[:2] == (True, False) and even >= _NUL_MOSTLY and odd <= _NUL_RARELY:
        return "utf-16-be"
    return None


def unicode_encoding(body: bytes) -> tuple[str, int] | None:
    """A UTF encoding the bytes themselves show (BOM, or the NUL pattern of UTF-16/32), and
    the length of the BOM to skip."""
    bom = bom_encoding(body)
    if bom:
        return bom
    found = nul_pattern_encoding(body)
    return (found, 0) if found else None


def check_decoded(text: str, encoding: str) -> str:
    """``text`` if it decoded cleanly; else an :class:`ExtractError`.

    Markup, scripts and styles are not counted: the visible text may hold at most
    :data:`GARBLED_TRACE_CHARS` U+FFFD replacement or control characters, or
    :data:`GARBLED_TRACE_SHARE` of its length if that is more.
    """
    if not _GARBLED.search(text):
        return text
    visible = _SCRIPTS_AND_TAGS.sub(" ", text) if "<" in text else text
    bad = len(_GARBLED.findall(visible))
    if bad <= max(GARBLED_TRACE_CHARS, GARBLED_TRACE_SHARE * len(visible)):
        return text
    raise ExtractError(
        f"the page's text does not decode cleanly: {bad:,} of its {len(visible):,} characters "
        f"are U+FFFD replacement or control characters when read as {encoding}. The server "
        "may send it in another encoding than it declares (e.g. UTF-16 without a byte order "
        "mark, or Latin-1 labelled UTF-8); check the page in a browser"
    )


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
    text, encoding = _decode_with(body, content_type, declared)
    return check_decoded(text, encoding)


def _decode_with(body: bytes, content_type: str, declared: str | None) -> tuple[str, str]:
    """The decoded text and the encoding used."""
    shown = unicode_encoding(body)
    if shown:
        return body[shown[1] :].decode(shown[0], "replace"), shown[0]
    encoding = header_encoding(content_type) or declared
    if encoding:
        return body.decode(encoding, "replace"), encoding
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(body).best()
    if best is None or best.encoding is None:
        return body.decode("utf-8", "replace"), "utf-8"
    return body.decode(best.encoding, "replace"), best.encoding


def decode_html(body: bytes, content_type: str) -> str:
    """Decode an HTML page: BOM or NUL pattern, then the header's charset, then ``<meta>``,
    then detection. Raises :class:`ExtractError` when the result is garbled."""
    return _decode(body, content_type, meta_encoding(body))


def decode_text(body: bytes, content_type: str) -> str:
    """Decode a plain-text or Markdown file: BOM or NUL pattern, then the header's charset,
    then detection. Raises :class:`ExtractError` when the result is garbled."""
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
    shown = unicode_encoding(head)
    if shown and shown[0] != "utf-8":
        head = head[shown[1] :].decode(shown[0], "replace").encode("utf-8", "replace")
    looks_html = bool(_HTML_START.match(head.removeprefix(codecs.BOM_UTF8)))
    if kind in HTML_TYPES or looks_html:
        return "html"
    if kind in TEXT_TYPES or kind.startswith("text/"):
        return "text"
    if not kind or kind == "application/octet-stream":
        return "text" if b"\0" not in head else ""
    return ""
