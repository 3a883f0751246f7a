"""Policy text as safe HTML: Markdown rendered without raw HTML, then sanitised with nh3.

Nothing from a fetched page reaches a browser as markup: markdown-it-py runs with HTML
disabled (``<script>`` in a policy shows as text), and nh3 keeps only an allow-list of tags,
only http, https and mailto links, and marks every link ``rel="nofollow noopener"``.
"""

from __future__ import annotations

import nh3

from archive.diff.reading import new_parser

ALLOWED_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a", "em", "strong", "code",
        "pre", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "del", "s",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"


class Renderer:
    """Markdown → sanitised HTML; also cleans search snippets down to ``<mark>``."""

    def __init__(self) -> None:
        self._md = new_parser()

    def markdown(self, text: str) -> str:
        return sanitize(self._md.render(text))

    def snippet(self, html: str) -> str:
        return clean_snippet(html)


def sanitize(html: str) -> str:
    """Keep only the allowed tags, attributes and link schemes."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def clean_snippet(html: str) -> str:
    """A search snippet with nothing but text and ``<mark>`` (defence in depth)."""
    return nh3.clean(html, tags={"mark"}, attributes={}, link_rel=None)
