"""Apprise: one URL reaches Slack, Matrix, Discord, ntfy, Telegram and ~100 other services.

The alert goes out as a title and a Markdown body. Apprise's plugins open their own
connections (with ``requests``), outside the SSRF guard, so the generic HTTP kinds
(``json://``, ``xml://``, ``form://`` and their ``s`` variants) are not sent by Apprise: Apprise
only parses the URL, and we build the same request its plugin would and send it through the
guarded client (:class:`~archive.fetch.client.GuardedClient`: SSRF guard, pinned address,
pool, deadline, capped answer; redirects not followed; certificates always verified). Every
other kind is refused unless ``[notify] allow_unguarded_apprise`` is on, which hands the URL
to Apprise as it is.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

from urllib3.util import make_headers

from archive.alerts import content
from archive.alerts.content import AlertContent
from archive.alerts.errors import DeliveryError
from archive.config import NotifySettings
from archive.diff.summary import render_text
from archive.errors import FetchError
from archive.fetch.client import GuardedClient

GENERIC_HTTP = {
    "json": "json",
    "jsons": "json",
    "xml": "xml",
    "xmls": "xml",
    "form": "form",
    "forms": "form",
}
"""The Apprise schemes sent through the guarded client, and the payload each one posts."""
"""The default of ``[notify] allow_unguarded_apprise``: other Apprise kinds are refused."""
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
        line = f"+{s.words_added} / -{s.words_removed} words, recorded {f['date'][:10]}"
        if s.sections:
            line += f"; sections: {', '.join(s.sections[:5])}"
        lines.append(line)
        lines += [f"- {excerpt}" for excerpt in s.excerpts]
        lines += [f"> {render_text(p)}" for p in alert.passages[:3]]
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


def unguarded_refusal(url: str) -> str | None:
    """Why the Apprise URL ``url`` cannot go through the SSRF guard, or None if it can."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in GENERIC_HTTP:
        return None
    guarded = ", ".join(f"{s}://" for s in GENERIC_HTTP)
    return (
        f"apprise {scheme or '(no scheme)'}:// URLs are refused: Apprise would send them with "
        f"its own HTTP client, outside the SSRF guard (only {guarded} go through it). Use one "
        "of those or a webhook, or set [notify] allow_unguarded_apprise = true to let Apprise "
        "send them unguarded"
    )


@dataclass(frozen=True)
class HttpNotification:
    """The request an Apprise generic-HTTP plugin would send, ready for the guarded client."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def http_notification(
    kind: str, plugin: Any, title: str, body: str, *, notify_type: str
) -> HttpNotification:
    """The request Apprise's ``kind`` (``json``, ``xml`` or ``form``) plugin ``plugin`` would
    send.

    Follows the plugin's URL options: ``method=``, ``+header``, ``-param``, ``:payload`` (extra
    fields, renamed or dropped ones), ``user:password@`` (basic auth) and ``format=``.
    """
    apprise = load_apprise()
    fmt = plugin.resolve_format(apprise.NotifyFormat.MARKDOWN)
    body = apprise.conversion.convert_between(apprise.NotifyFormat.MARKDOWN, fmt, body)
    headers = {"User-Agent": plugin.app_id}
    params = dict(plugin.params)
    data: bytes | None
    if kind == "json":
        headers["Content-Type"] = "application/json"
        data = json.dumps(_json_payload(plugin, title, body, notify_type)).encode("utf-8")
    elif kind == "xml":
        headers["Content-Type"] = "application/xml"
        data = _xml_payload(plugin, title, body, notify_type).encode("utf-8")
    else:
        fields = _form_payload(plugin, title, body, notify_type)
        if plugin.method == "GET":
            params, data = {**fields, **params}, None
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(fields).encode("ascii")
    headers.update(plugin.headers)
    if plugin.user:
        auth = f"{plugin.user}:{plugin.password or ''}"
        headers["Authorization"] = make_headers(basic_auth=auth)["authorization"]
    host = f"[{plugin.host}]" if ":" in plugin.host and "[" not in plugin.host else plugin.host
    url = f"{'https' if plugin.secure else 'http'}://{host}"
    if isinstance(plugin.port, int):
        url += f":{plugin.port}"
    url += plugin.fullpath or "/"
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    return HttpNotification(plugin.method, url, headers, data)


def _json_payload(plugin: Any, title: str, body: str, notify_type: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "version": plugin.json_version,
        "title": title,
        "message": body,
        "attachments": [],
        "type": notify_type,
    }
    for key, value in plugin.payload_extras.items():
        if key not in payload:
            payload[key] = value
        elif value:
            payload[value] = payload.pop(key)
        else:
            del payload[key]
    return payload


def _xml_payload(plugin: Any, title: str, body: str, notify_type: str) -> str:
    def escape(text: str) -> str:
        return str(plugin.escape_html(text, whitespace=False))

    values = {"Version": plugin.xsd_ver, "Subject": title, "Message": body}
    values["MessageType"] = notify_type
    fields = {}
    for key, name in plugin.payload_map.items():
        if name:
            value = values.get(key, "")
            fields[name] = value if key == "Version" else escape(value)
    fields |= {k: escape(v) for k, v in plugin.payload_extras.items()}
    parts = {
        "{{XSD_URL}}": f' xmlns:xsi="{plugin.xsd_url}"' if plugin.xsd_url else "",
        "{{ATTACHMENTS}}": "",
        "{{CORE}}": "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()),
    }
    pattern = re.compile("(" + "|".join(parts) + ")", re.IGNORECASE)
    return pattern.sub(lambda m: parts[m.group()], plugin.payload)


def _form_payload(plugin: Any, title: str, body: str, notify_type: str) -> dict[str, str]:
    values = {"version": plugin.form_version, "title": title, "message": body}
    values["type"] = notify_type
    fields = {name: values[key] for key, name in plugin.payload_map.items() if name}
    return {**fields, **plugin.payload_extras}


class AppriseSender:
    """Sends alerts to Apprise URLs: generic HTTP kinds through the guarded client, others
    through Apprise when ``allow_unguarded`` (``[notify] allow_unguarded_apprise``)."""

    def __init__(
        self,
        settings: NotifySettings,
        client: GuardedClient,
        *,
        allow_unguarded: bool = False,
    ) -> None:
        self.settings = settings
        self.client = client
        self.allow_unguarded = allow_unguarded

    def send(self, url: str, alert: AlertContent) -> None:
        """Deliver one alert, or raise :class:`DeliveryError`."""
        refusal = unguarded_refusal(url)
        if refusal is None:
            self._send_guarded(url, alert)
        elif self.allow_unguarded:
            self._send_with_apprise(url, alert)
        else:
            raise DeliveryError(refusal, transient=False)

    def _send_guarded(self, url: str, alert: AlertContent) -> None:
        apprise = load_apprise()
        scheme = urlsplit(url).scheme.lower()
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            raise DeliveryError("Apprise does not understand this URL", transient=False)
        request = http_notification(
            GENERIC_HTTP[scheme],
            plugin,
            alert.title,
            message_body(alert),
            notify_type=apprise.NotifyType.INFO.value,
        )
        try:
            response = self.client.request(
                request.method, request.url, body=request.body, headers=request.headers
            )
        except FetchError as exc:
            raise DeliveryError(
                f"apprise {scheme}:// {exc.reason}", transient=exc.transient
            ) from None
        status = response.status
        if 300 <= status <= 399:
            raise DeliveryError(
                f"apprise {scheme}:// {request.url} answered {status} redirecting to "
                f"{response.headers.get('Location', '?')}; redirects are not followed: use "
                "the final URL instead",
                transient=False,
                status=status,
            )
        if not 200 <= status <= 299:
            raise DeliveryError(
                f"apprise {scheme}:// {request.url} answered HTTP {status}",
                transient=True,
                status=status,
            )

    def _send_with_apprise(self, url: str, alert: AlertContent) -> None:
        apprise = load_apprise()
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
