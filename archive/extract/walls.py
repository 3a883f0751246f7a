"""Pages that are not the document: error pages, login walls and bot walls served with a 200.

A page is suspect when its ``<title>`` (or one of its `` | ``/`` - `` separated parts) or its
first ``<h1>`` *is* an error phrase ("404", "Page not found", "Access denied", "Just a
moment...", "Attention Required!", "Are you a robot?", ...), not when the text merely contains
one: a policy that says "if the data is not found" is fine. The challenge pages of the common
bot-protection services (Cloudflare, Imperva/Incapsula, DataDome, PerimeterX) are recognised by
markers in the HTML too.

Login walls are recognised by a sign-in title or heading ("Sign in", "Log in to Acme"), by the
phrases that ask for it ("Sign in to continue", "You must be logged in"), or by a password field;
captcha walls by the phrases they show ("Verify you are human", "unusual traffic from your
computer network", "Press & Hold"). A suspect page is only rejected when its extracted text is
short, so that a real policy whose template happens to match (a login box in the header, a
sentence about signing in) is never lost; the thresholds are below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

MAX_WORDS_WITH_ERROR_TITLE = 1000  # error pages are short; policies are long
MAX_WORDS_WITH_WALL_MARKER = 300
MAX_WORDS_WITH_LOGIN_PHRASE = 300
MAX_WORDS_WITH_PASSWORD_FIELD = 250  # policies with a login box in their header are longer

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
# Whole titles or headings of a sign-in page.
LOGIN_PHRASES = (
    r"(?:please\s+)?(?:sign|log)\s*-?\s*(?:in|on)(?:\s+(?:to|with|into)\b.*)?"
    r"(?:\s+or\s+(?:sign|register|create)\b.*)?",
    r"(?:please\s+)?login(?:\s+(?:to|required|page)\b.*)?",
    r"(?:authentication|login|sign[-\s]?in)\s+required",
    r"(?:welcome\s+back|access\s+your\s+account)\W*(?:sign|log)\s*-?\s*in.*",
)
_LOGIN_PHRASE = re.compile(r"(?:" + "|".join(LOGIN_PHRASES) + r")\W*", re.IGNORECASE)
# Phrases in the visible text of a login wall or a captcha wall (matched lower case, with
# whitespace collapsed).
LOGIN_TEXT_MARKERS = (
    "sign in to continue",
    "log in to continue",
    "login to continue",
    "sign in to view this",
    "log in to view this",
    "you must be logged in",
    "you need to be logged in",
    "you must sign in",
    "you need to sign in",
    "you must log in",
    "you need to log in",
)
CAPTCHA_TEXT_MARKERS = (
    "verify you are human",
    "verify that you are human",
    "verify you are a human",
    "confirm you are human",
    "confirm that you are human",
    "i'm not a robot",
    "i am not a robot",
    "unusual traffic from your computer network",
    "enter the characters you see below",
    "type the characters you see",
    "press & hold to confirm",
    "press and hold to confirm",
    "complete the security check to access",
    "solve the captcha",
    "complete the captcha",
    "checking if the site connection is secure",
    "checking your browser before accessing",
    "why have i been blocked",
    "this website is using a security service to protect itself",
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


def _is_login_phrase(text: str) -> bool:
    return bool(text) and len(text) <= 80 and _LOGIN_PHRASE.fullmatch(text) is not None


def _visible_text(doc: etree._Element) -> str:
    """The body's text without scripts and styles, lower case, whitespace collapsed."""
    parts = doc.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::template)]"
    )
    return " ".join(" ".join(str(p) for p in parts).split()).lower().replace("\u2019", "'")


def _has_password_field(doc: etree._Element) -> bool:
    return any(
        (field.get("type") or "").strip().lower() == "password" for field in doc.iter("input")
    )


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
    text = _visible_text(doc)
    return login_signal(doc, title, heading, text) or captcha_signal(text)


def login_signal(doc: etree._Element, title: str, heading: str, text: str) -> Signal | None:
    """Why the page looks like a login wall, or None (``text``: its visible text)."""
    wall = "it is a login wall (the document is behind a sign-in, which the archive cannot pass)"
    if _is_login_phrase(title) or any(_is_login_phrase(p) for p in _TITLE_PARTS.split(title)):
        return Signal(f'{wall}: its title is "{title}"', MAX_WORDS_WITH_LOGIN_PHRASE)
    if _is_login_phrase(heading):
        return Signal(f'{wall}: its main heading is "{heading}"', MAX_WORDS_WITH_LOGIN_PHRASE)
    for phrase in LOGIN_TEXT_MARKERS:
        if phrase in text:
            return Signal(f'{wall}: it says "{phrase}"', MAX_WORDS_WITH_LOGIN_PHRASE)
    if _has_password_field(doc):
        return Signal(f"{wall}: it has a password field", MAX_WORDS_WITH_PASSWORD_FIELD)
    return None


def captcha_signal(text: str) -> Signal | None:
    """Why the page looks like a captcha or bot wall by what it says (``text``), or None."""
    for phrase in CAPTCHA_TEXT_MARKERS:
        if phrase in text:
            return Signal(
                f'it is a captcha or bot wall: it says "{phrase}"', MAX_WORDS_WITH_WALL_MARKER
            )
    return None
