"""Pages that are not the document: error pages and bot walls served with a 200 status.

A page is suspect when its ``<title>`` (or one of its `` | ``/`` - `` separated parts) or its
first ``<h1>`` *is* an error phrase ("404", "Page not found", "Access denied", "Just a
moment...", "Attention Required!", "Are you a robot?", ...), not when the text merely contains
one: a policy that says "if the data is not found" is fine. The challenge pages of the common
bot-protection services (Cloudflare, Imperva/Incapsula, DataDome, PerimeterX) are recognised by
markers in the HTML too. A suspect page is only rejected when its extracted text is short, so
that a real policy whose template happens to match is never lost; the thresholds are below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

MAX_WORDS_WITH_ERROR_TITLE = 1000  # error pages are short; policies are long
MAX_WORDS_WITH_WALL_MARKER = 300

# Whole titles or headings that an error page or a bot wall has; each must match all of a
# title part or heading, optionally after a status code ("404 - Page not found").
ERROR_PHRASES = (
    r"[45]\d\d",
    r"error",
    r"oops\b.*",
    r"sorry\b.*(?:found|exist|available|blocked).*",
    r"(?:the\s+)?(?:page|file|document|resource|content|url)\s+"
    r"(?:you\s+(?:requested|are\s+looking\s+for)\s+)?"
    r"(?:was\s+|could\s+not\s+be\s+|cannot\s+be\s+|can.t\s+be\s+)?not\s+(?:be\s+)?found.*",
    r"(?:page|file|document)\s+(?:does\s+not|doesn.t)\s+exist.*",
    r"not\s+found",
    r"forbidden",
    r"unauthori[sz]ed",
    r"gone",
    r"(?:access|permission)\s+denied.*",
    r"access\s+to\s+this\s+page\s+has\s+been\s+denied.*",
    r"(?:internal\s+)?server\s+error",
    r"service\s+(?:temporarily\s+)?unavailable",
    r"bad\s+gateway",
    r"gateway\s+time-?out",
    r"too\s+many\s+requests",
    r"site\s+(?:under\s+)?maintenance",
    r"just\s+a\s+moment.*",
    r"attention\s+required.*",
    r"one\s+more\s+step",
    r"checking\s+your\s+browser.*",
    r"please\s+wait.*",
    r"(?:please\s+)?verify(?:ing)?\s+(?:that\s+)?you\s+are\s+(?:a\s+)?human.*",
    r"are\s+you\s+(?:a\s+)?(?:robot|human).*",
    r"human\s+verification",
    r"security\s+check.*",
    r"robot\s+check",
    r"bot\s+(?:verification|detection)",
    r".*captcha.*",
    r"pardon\s+our\s+interruption.*",
    r"request\s+(?:blocked|rejected|unsuccessful).*",
    r"you\s+have\s+been\s+blocked.*",
    r"ddos[-\s]guard",
)
_ERROR_PHRASE = re.compile(
    r"(?:(?:error|http|status)\s*)?(?:[45]\d\d\s*)?(?:error\s*)?[:\-–—]?\s*(?:"
    + "|".join(ERROR_PHRASES)
    + r")\W*",
    re.IGNORECASE,
)
_TITLE_PARTS = re.compile(r"\s+[|\-–—:·]+\s+|\s*\|\s*")
# Challenge pages of Cloudflare, Imperva/Incapsula, DataDome and PerimeterX. Plain captcha
# widgets (g-recaptcha, Turnstile) are not markers: contact forms on short imprints use them.
_WALL_MARKERS = (
    b"_cf_chl_opt",
    b"cf-browser-verification",
    b"cf_captcha_kind",
    b"Incapsula incident ID",
    b"_Incapsula_Resource",
    b"captcha-delivery.com",
    b"px-captcha",
    b"Enable JavaScript and cookies to continue",
)


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _is_error_phrase(text: str) -> bool:
    return bool(text) and len(text) <= 120 and _ERROR_PHRASE.fullmatch(text) is not None


@dataclass(frozen=True)
class Signal:
    """Why a page looks like an error page, and the longest text such a page may have."""

    reason: str
    max_words: int

    def rejects(self, markdown: str) -> bool:
        return len(markdown.split()) <= self.max_words


def error_signal(doc: etree._Element, raw: bytes) -> Signal | None:
    """Why the page looks like an error page or a bot wall, or None."""
    title = _text(doc.find(".//title"))
    if _is_error_phrase(title) or any(_is_error_phrase(p) for p in _TITLE_PARTS.split(title)):
        return Signal(f'its title is "{title}"', MAX_WORDS_WITH_ERROR_TITLE)
    heading = _text(doc.find(".//h1"))
    if _is_error_phrase(heading):
        return Signal(f'its main heading is "{heading}"', MAX_WORDS_WITH_ERROR_TITLE)
    for marker in _WALL_MARKERS:
        if marker in raw:
            return Signal(
                f'it holds the bot-wall marker "{marker.decode()}"', MAX_WORDS_WITH_WALL_MARKER
            )
    return None
