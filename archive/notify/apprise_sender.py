"""Apprise: one URL reaches Slack, Matrix, Discord, ntfy, Telegram and ~100 other services.

The alert goes out as a title and a Markdown body. Apprise opens its own connections, so the
SSRF guard can only check the URLs whose host we know is a plain web server (the generic
``json://``, ``xml://`` and ``form://`` kinds) before handing over; the other services post to
their providers' fixed hosts.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from types import ModuleType
from urllib.parse import urlsplit

from archive.config import NotifySettings
from archive.errors import FetchError
from archive.fetch.guard import check_url_allowed
from archive.notify import content
from archive.notify.changes import render_text
from archive.notify.content import AlertContent
from archive.notify.errors import DeliveryError

GENERIC_HTTP = {
    "json": "http",
    "jsons": "https",
    "xml": "http",
    "xmls": "https",
    "form": "http",
    "forms": "https",
}
MAX_CHAT_LINES = 5  # of each side of a flapping notice


def load_apprise() -> ModuleType:
    """Import Apprise and its plugins (on first use: it takes a while), hiding their
    import-time deprecation warnings (its PGP helper imports the stdlib ``imghdr``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise.instantiate("json://localhost")  # loads every plugin module now
    return apprise


def message_body(alert: AlertContent) -> str:
    """A short Markdown body: the facts, a few changed passages, the links."""
    f, lines = alert.facts, []
    if alert.event in content.VERSION_EVENTS and alert.summary is not None:
        s = alert.summary
        lines.append(f"+{s.words_added} / -{s.words_removed} words, recorded {f['date'][:10]}")
        lines += [f"> {render_text(p)}" for p in s.passages[:3]]
    elif alert.event == content.POLICY_FAILING:
        lines.append(f"{f['failures']} failed checks in a row: {f['reason']}")
    elif alert.event == content.POLICY_FLAPPING:
        lines += _flap_body(f)
    lines += [f"{name}: {url}" for name, url in alert.links.items() if name in ("diff", "policy")]
    return "\n\n".join(lines)


def _flap_body(facts: dict) -> list[str]:
    """A flapping notice: what the page went back to, the lines that differ, what to do."""
    removed, added = facts.get("lines_removed") or [], facts.get("lines_added") or []
    when = facts.get("returned_to_date")
    back = (
        datetime.fromisoformat(when).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "?"
    )
    diff = [f"- {x}" for x in removed[:MAX_CHAT_LINES]] + [f"+ {x}" for x in added[:MAX_CHAT_LINES]]
    more = max(len(removed) - MAX_CHAT_LINES, 0) + max(len(added) - MAX_CHAT_LINES, 0)
    if more:
        diff.append(f"…and {more} more lines")
    return [
        f"Back to the text it served at {back}: alerts for this policy are held "
        f"(lines removed: {len(removed)}, lines added: {len(added)}).",
        "```\n" + ("\n".join(diff) or "(no lines differ besides whitespace)") + "\n```",
        "If this is noise, add an `ignore` pattern or a `remove` selector to the policy "
        "(docs/noise.md).",
    ]


def check_apprise_target(url: str, settings: NotifySettings) -> None:
    """Refuse a generic-HTTP Apprise URL whose host is internal (unless allowed)."""
    parts = urlsplit(url)
    scheme = GENERIC_HTTP.get(parts.scheme.lower())
    if scheme is None:
        return
    http_url = parts._replace(scheme=scheme).geturl()
    try:
        check_url_allowed(http_url, settings.allow_private_addresses)
    except FetchError as exc:
        raise DeliveryError(
            f"apprise {parts.scheme}:// {exc.reason}", transient=exc.transient
        ) from None


class AppriseSender:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def send(self, url: str, alert: AlertContent) -> None:
        apprise = load_apprise()
        check_apprise_target(url, self.settings)
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryError("Apprise does not understand this URL", transient=False)
        messages: list[str] = []
        result = notifier.notify(
            body=message_body(alert),
            title=alert.title,
            body_format=apprise.NotifyFormat.MARKDOWN,
            log_callback=lambda entry, plugin: messages.append(str(entry.message)),
        )
        if not result:
            reason = "; ".join(messages[-3:]) or "the service did not accept the message"
            raise DeliveryError(f"apprise: {reason}", transient=True)
