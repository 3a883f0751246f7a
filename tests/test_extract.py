"""Extraction: one fetched page to Markdown (archive.extract).

Most behaviours are data: tests/extract_cases/cases.toml holds (page, rules, expected Markdown)
cases, urlwatch style. The tests below cover what data cannot: PDFs built here, combined
documents, real seed policies wrapped in a realistic page, and the small public helpers.
"""

from __future__ import annotations

import codecs
import html
import io
import re
import tomllib
from pathlib import Path

import pytest
from pypdf import PdfWriter

from archive.config import Source, parse_selectors
from archive.errors import ExtractError
from archive.extract import (
    DOCUMENT_SEPARATOR,
    EXTRACTOR_VERSION,
    decode_html,
    extract,
    extract_document,
    ignored_filters,
    normalise,
)
from archive.extract.urls import TRACKING_PARAMETERS, strip_tracking

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED_POLICIES = SHARED / "fixtures" / "seed-policies"
CASES = tomllib.loads((HERE / "extract_cases" / "cases.toml").read_text(encoding="utf-8"))["case"]
DEFAULT_URL = "https://example.com/legal/privacy"


def _body(case: dict) -> bytes:
    encoding = case.get("encoding", "utf-8")
    body = case["html"].encode(encoding)
    if case.get("bom"):
        bom = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE}[encoding]
        body = bom + body
    return body


def _source(case: dict) -> Source:
    url = case.get("url", DEFAULT_URL)
    return Source(
        url=url,
        select=parse_selectors(case.get("select"), case["name"]),
        remove=parse_selectors(case.get("remove"), case["name"]),
    )


def test_case_names_are_unique():
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case):
    url = case.get("url", DEFAULT_URL)
    content_type = case.get("content_type", "text/html; charset=utf-8")
    run = lambda: extract(_body(case), content_type, url, _source(case))  # noqa: E731
    if "error" in case:
        with pytest.raises(ExtractError) as caught:
            run()
        for part in case["error"]:
            assert part.lower() in str(caught.value).lower(), str(caught.value)
        return
    markdown = run()
    if "expected" in case:
        assert markdown == case["expected"].strip()
    for part in case.get("contains", []):
        assert part in markdown
    for part in case.get("absent", []):
        assert part not in markdown


# --------------------------------------------------------------------------- PDF


def _text_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with a real text layer (Helvetica), built byte by byte."""
    text = " T* ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"
        for line in lines
    )
    stream = f"BT /F1 11 Tf 14 TL 72 740 Td {text} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


PDF_LINES = [
    "Privacy Policy",
    "We collect your e-mail address to send you the alerts that you asked for and to",
    "answer your questions; we keep it until you close your account.",
    "- Right of access",
    "- Right to erasure",
    "Contact: dpo@example.com",
]


def test_pdf_text_becomes_paragraphs():
    markdown = extract(_text_pdf(PDF_LINES), "application/pdf", DEFAULT_URL, Source(DEFAULT_URL))
    assert markdown == (
        "Privacy Policy\n\n"
        "We collect your e-mail address to send you the alerts that you asked for and to "
        "answer your questions; we keep it until you close your account.\n\n"
        "- Right of access\n\n"
        "- Right to erasure\n\n"
        "Contact: dpo@example.com"
    )


def test_pdf_is_sniffed_whatever_the_content_type():
    body = _text_pdf(PDF_LINES)
    markdown = extract(body, "application/octet-stream", DEFAULT_URL, Source(DEFAULT_URL))
    assert markdown.startswith("Privacy Policy")


def test_pdf_without_text_layer_raises():
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ExtractError, match="no text layer"):
        extract(buffer.getvalue(), "application/pdf", DEFAULT_URL, Source(DEFAULT_URL))


def test_broken_pdf_raises():
    with pytest.raises(ExtractError, match="PDF cannot be read"):
        extract(b"%PDF-1.4\nnot really", "application/pdf", DEFAULT_URL, Source(DEFAULT_URL))


# --------------------------------------------------------------------------- documents


def test_extract_document_joins_pieces_in_order():
    one = Source("https://example.com/terms", select=("#t",))
    two = Source("https://example.com/annex")
    pieces = [
        (one, b'<div id="t"><h1>Terms</h1></div>', "text/html", one.url),
        (two, b"Annex text", "text/plain", two.url),
        (one, b'<div id="t"><p>Third</p></div>', "text/html", one.url),
    ]
    assert extract_document(pieces) == DOCUMENT_SEPARATOR.join(["# Terms", "Annex text", "Third"])
    assert DOCUMENT_SEPARATOR == "\n\n- - -\n\n"


def test_extract_document_names_every_failing_source():
    good = Source("https://example.com/a", select=("p",))
    bad = Source("https://example.com/b", select=("#missing",))
    pieces = [
        (good, b"<p>ok</p>", "text/html", good.url),
        (bad, b"<p>x</p>", "text/html", bad.url),
        (bad, b"", "text/html", bad.url),
    ]
    with pytest.raises(ExtractError) as caught:
        extract_document(pieces)
    message = str(caught.value)
    assert "source 2 of 3" in message and '"#missing" matches nothing' in message
    assert "source 3 of 3" in message and "empty" in message
    assert "source 1" not in message


def test_extract_document_needs_pieces():
    with pytest.raises(ValueError):
        extract_document([])


# --------------------------------------------------------------------------- real policies


def _policy_html(text: str) -> tuple[str, list[str]]:
    """A seed policy as a site would serve it: headings, lists, paragraphs. Returns the
    policy's HTML and its headings. Short lines without final punctuation are headings."""
    parts: list[str] = []
    headings: list[str] = []
    items: list[str] = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if index == 0:
            parts.append(f"<h1>{html.escape(line)}</h1>")
            headings.append(f"# {line}")
        elif len(line) < 60 and not line.endswith((".", ";", ":", ",")):
            parts.append(f"<h2>{html.escape(line)}</h2>")
            headings.append(f"## {line}")
        else:
            parts.append(f"<p>{html.escape(line)}</p>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(parts), headings


NAV = """<header class="site-header"><a href="/"><img src="/logo.svg" alt="BackOffice"></a>
<nav><ul><li><a href="/services">Teenused</a></li><li><a href="/hinnad">Hinnakiri</a></li>
<li><a href="/kontakt?utm_source=nav">Kontakt</a></li></ul></nav></header>"""
BANNER = """<div id="cookie-consent-banner" class="cookie-banner"><p>Kasutame küpsiseid, et
parandada teie kogemust.</p><button>Nõustun</button><a href="/cookies">Loe lähemalt</a></div>"""
FOOTER = """<footer><p>© 2024 BackOffice Services OÜ · Registrikood 12345678</p>
<ul><li><a href="/privaatsus">Privaatsus</a></li><li><a href="/tingimused">Tingimused</a></li></ul>
</footer>"""
NOISE = ["Teenused", "Hinnakiri", "Kasutame küpsiseid", "Nõustun", "Registrikood"]


def _page(policy: str, layout: str) -> bytes:
    if layout == "main":
        content = f'<main><div class="policy-body">{policy}</div></main>'
    else:  # no <main> and no <article>: main-content detection has to find it
        policy = f'<div class="policy-body">{policy}</div>'
        content = f'<div class="wrap"><div class="col">{policy}</div></div>'
    return (
        "<!DOCTYPE html><html lang='et'><head><meta charset='utf-8'><title>Üldtingimused</title>"
        f"<script>dataLayer=[]</script></head><body>{NAV}{BANNER}{content}"
        f"<aside><h3>Uudised</h3><p>Uus kontor Tartus</p></aside>{FOOTER}</body></html>"
    ).encode()


SEED_FILES = sorted(p.name for p in SEED_POLICIES.glob("*.txt"))


@pytest.mark.parametrize("name", SEED_FILES)
@pytest.mark.parametrize(
    ("layout", "select"),
    [("main", ".policy-body"), ("main", None), ("div-soup", None)],
    ids=["selector", "no-selector-main", "no-selector-div-soup"],
)
def test_seed_policy_in_a_realistic_page(name, layout, select):
    text = (SEED_POLICIES / name).read_text(encoding="utf-8")
    policy, headings = _policy_html(text)
    url = "https://www.backoffice.ee/uldtingimused"
    source = Source(url, select=(select,) if select else ())
    markdown = extract(_page(policy, layout), "text/html; charset=utf-8", url, source)
    lines = set(markdown.split("\n"))
    missing = [h for h in headings if h not in lines]
    assert not missing, f"headings lost: {missing}"
    for noise in NOISE:
        assert noise not in markdown
    words = re.findall(r"[^\W_]+", text.lower())
    assert len(re.findall(r"[^\W_]+", markdown.lower())) >= 0.98 * len(words)


# --------------------------------------------------------------------------- helpers


def test_decode_html_order():
    latin = "é".encode("latin-1")
    meta = b'<meta charset="windows-1252">'
    assert decode_html(latin, "text/html; charset=latin-1") == "é"
    assert decode_html(codecs.BOM_UTF8 + "é".encode(), "text/html; charset=latin-1") == "é"
    assert decode_html(meta + b"\x93x\x94", "text/html").endswith("“x”")
    assert decode_html(meta + b"\x93x\x94", "text/html; charset=utf-8").endswith("\ufffdx\ufffd")
    assert decode_html("ü".encode(), "text/html") == "ü"
    assert decode_html(b"<p>x</p>", "text/html; charset=no-such-charset") == "<p>x</p>"


def test_normalise():
    text = "\r\n\n  A\u00a0b  \r\nc\u200bd\u00ad\t\n\n\n\n\ne \n\n"
    assert normalise(text) == "A b\ncd\n\ne"
    assert normalise(normalise(text)) == normalise(text)


def test_br_hard_breaks_survive_normalise_and_render_as_line_breaks():
    """A <br> must stay a line break in the archive's own Markdown renderer (markdown-it,
    CommonMark), not run the lines of an address together."""
    from markdown_it import MarkdownIt

    page = b"<main><p>Acme SAS<br>12 rue de la Paix<br>75002 Paris</p><p>Next</p></main>"
    markdown = extract(page, "text/html", DEFAULT_URL, Source(DEFAULT_URL, select=("main",)))
    assert normalise(markdown) == markdown
    rendered = MarkdownIt("commonmark").render(markdown)
    assert rendered == "<p>Acme SAS<br />\n12 rue de la Paix<br />\n75002 Paris</p>\n<p>Next</p>\n"


def test_tracking_parameters_documented_list():
    assert {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid"} <= (
        TRACKING_PARAMETERS
    )
    assert {"_hsenc", "_hsmi", "igshid", "yclid", "twclid", "ref_src"} <= TRACKING_PARAMETERS
    assert (
        strip_tracking("https://e.com/p?a=1&utm_x=2&b=%20&gclid=3") == "https://e.com/p?a=1&b=%20"
    )
    assert strip_tracking("https://e.com/p?utm_source=x") == "https://e.com/p"
    assert strip_tracking("https://e.com/p?q=utm_source") == "https://e.com/p?q=utm_source"


def test_ignored_filters_lists_custom_filters_once():
    sources = [
        Source("https://e.com/a", filters=("addIDsToAllowSelection", "removeDates")),
        Source("https://e.com/b", filters=("removeDates",)),
        Source("https://e.com/c"),
    ]
    assert ignored_filters(sources) == ("addIDsToAllowSelection", "removeDates")
    assert ignored_filters([]) == ()


def test_filters_are_ignored_not_fatal():
    source = Source(DEFAULT_URL, select=("p",), filters=("someCustomFilter",))
    assert extract(b"<p>Text</p>", "text/html", DEFAULT_URL, source) == "Text"


def test_extractor_version_is_a_string():
    assert isinstance(EXTRACTOR_VERSION, str) and EXTRACTOR_VERSION
    assert EXTRACTOR_VERSION != "1"  # <br> hard breaks and aria-hidden text changed the output
