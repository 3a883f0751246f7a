"""The main content of a page that declares no ``select`` selector.

In order: the page's ``<main>`` (or ``[role=main]``), else its ``<article>`` (the one with the
most text when there are several), converted by our own converter so every heading survives.
Pages without either go through trafilatura; because trafilatura can drop headings (it lost all
seven of an Estonian policy's headings in our measurements), its output is only kept when it has
at least half of the page's content headings. Otherwise the page's ``<body>`` is used, without
its navigation, header, footer, asides, forms and cookie banners.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

from archive.extract.markdown import HEADINGS, Converter, is_hidden
from archive.extract.select import drop
from archive.extract.text import normalise

BOILERPLATE_TAGS = ("nav", "header", "footer", "aside", "form")
BOILERPLATE_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
)
INSIDE_MAIN_TAGS = ("nav", "aside")  # noise that sites put inside <main> too
_COOKIE_BANNER = re.compile(
    r"cookie[-_ ]?(?:banner|bar|notice|consent|popup|modal|dialog|overlay|wall|message|box"
    r"|alert|disclaimer|law)|consent[-_ ]?(?:banner|bar|manager|popup|modal|dialog|notice)"
    r"|gdpr[-_ ]?(?:banner|popup|consent|notice)|onetrust|cookiebot|didomi|usercentrics"
    r"|truste-consent|\bcc-(?:window|banner)\b|qc-cmp|\bsp_message|osano|iubenda-cs|cmplz"
    r"|borlabs-cookie|moove_gdpr",
    re.IGNORECASE,
)
_WITH_ID_OR_CLASS = etree.XPath("//*[@id or @class]")


def _text_length(element: etree._Element) -> int:
    return sum(len(t.strip()) for t in element.itertext())


def drop_cookie_banners(doc: etree._Element) -> None:
    banners = [
        el
        for el in _WITH_ID_OR_CLASS(doc)
        if el.tag not in ("html", "body", "main", "article")
        and _COOKIE_BANNER.search(f"{el.get('id', '')} {el.get('class', '')}")
    ]
    for element in banners:
        drop(element)


def _drop_all(root: etree._Element, tags: tuple[str, ...], roles: frozenset[str]) -> None:
    doomed = [el for el in root.iter(*tags) if el is not root]
    if roles:
        doomed += [el for el in root.iter() if el.get("role") in roles and el is not root]
    for element in doomed:
        drop(element)


def main_element(doc: etree._Element) -> etree._Element | None:
    for path in ("//main", "//*[@role='main']", "//article"):
        found = [el for el in doc.xpath(path) if not is_hidden(el)]
        if found:
            return max(found, key=_text_length) if len(found) > 1 else found[0]
    return None


def _content_headings(body: etree._Element) -> int:
    return sum(
        1
        for h in body.iter(*HEADINGS)
        if not is_hidden(h)
        and not any(
            a.tag in BOILERPLATE_TAGS or a.get("role") in BOILERPLATE_ROLES
            for a in h.iterancestors()
        )
    )


def _trafilatura(html: str, url: str) -> str | None:
    import trafilatura  # slow to import; only pages without <main> or <article> need it

    return trafilatura.extract(
        html,
        url=url,
        output_format="html",
        include_links=True,
        include_tables=True,
        include_formatting=True,
        include_images=False,
        include_comments=False,
        favor_recall=True,
    )


def main_content_markdown(doc: lxml.html.HtmlElement, base: str) -> str:
    """Markdown of the main content of a page (``doc`` is modified)."""
    drop_cookie_banners(doc)
    root = main_element(doc)
    if root is not None:
        _drop_all(root, INSIDE_MAIN_TAGS, frozenset({"navigation"}))
        return normalise(Converter(base).convert([root]))
    body = doc.body if doc.find("body") is not None else None
    if body is None:
        body = doc
    wanted = _content_headings(body)
    extracted = _trafilatura(lxml.html.tostring(doc, encoding="unicode"), base)
    if extracted:
        markdown = normalise(Converter(base).convert([lxml.html.fromstring(extracted)]))
        kept = sum(1 for line in markdown.split("\n") if line.startswith("#"))
        if markdown and (wanted < 2 or kept * 2 >= wanted):
            return markdown
    _drop_all(body, BOILERPLATE_TAGS, BOILERPLATE_ROLES)
    return normalise(Converter(base).convert([body]))
