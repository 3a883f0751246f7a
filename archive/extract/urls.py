"""Link clean-up: absolute URLs and no tracking parameters.

``TRACKING_PARAMETERS`` is the documented list of query parameters removed from every link
and image URL: they identify a campaign or a click, never the document, and they change from one
fetch to the next, which would record noise as changes. Any parameter starting with ``utm_`` is
removed too. The list follows Firefox's query stripping list and the ClearURLs rules for the
common ad and mail platforms.
"""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMETERS = frozenset(
    {
        # Google Ads / Analytics
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "_ga", "_gl", "srsltid",
        # Meta, Microsoft, X/Twitter, Instagram, TikTok, LinkedIn, Yandex
        "fbclid", "msclkid", "twclid", "ref_src", "ref_url", "igshid", "igsh", "ttclid",
        "li_fat_id", "yclid", "ysclid", "_openstat",
        # Mailchimp, HubSpot, Marketo, Vero, Olytics, Wicked Reports, Adobe, Oracle Eloqua
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp", "hsctatracking",
        "mkt_tok", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id", "wickedid", "s_cid",
        "elqtrackid", "elqtrack",
    }
)  # fmt: skip

_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")


def is_tracking_parameter(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def strip_tracking(url: str) -> str:
    """``url`` without tracking query parameters; other parameters keep their order and bytes."""
    if "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    pairs = parts.query.split("&")
    kept = [p for p in pairs if p and not is_tracking_parameter(unquote(p.split("=", 1)[0]))]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query="&".join(kept)))


def absolute_url(href: str | None, base: str) -> str | None:
    """The URL a link or image points to, for Markdown; ``None`` when there is nothing to keep.

    In-page anchors (``#section``) stay relative, as Open Terms Archive records them: they do not
    depend on where the page is served from. Script and data URLs are dropped.
    """
    if href is None:
        return None
    href = href.strip()
    if not href or href.lower().startswith(_UNSAFE_SCHEMES):
        return None
    if href.startswith("#"):
        return href
    try:
        href = urljoin(base, href)
    except ValueError:
        return href
    return strip_tracking(href)


def markdown_url(url: str) -> str:
    """Escape a URL for use inside Markdown's ``(...)`` (spaces encoded, parentheses escaped)."""
    return url.replace(" ", "%20").replace("(", "\\(").replace(")", "\\)")
