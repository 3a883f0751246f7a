"""Webhooks: a signed JSON POST per alert (Standard Webhooks), sent through the SSRF guard.

Signing follows https://www.standardwebhooks.com: headers ``webhook-id`` (the alert's id, the
same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")). A secret
``whsec_<base64>`` is used as the base64-decoded key, any other string as its UTF-8 bytes.

The POST goes through the guarded client (:class:`~archive.fetch.client.GuardedClient`): the
receiver's host is resolved once and checked by the SSRF guard (refusing internal addresses
unless ``[notify] allow_private_addresses``), the request goes to that address, the whole
request must end within ``[notify] webhook_timeout`` and at most ``RESPONSE_LIMIT`` bytes of
the answer are read. Redirects are not followed; 410 disables the endpoint; 429/503
``Retry-After`` is honoured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from archive.alerts import content
from archive.alerts.content import AlertContent
from archive.alerts.errors import DeliveryError
from archive.config import NotifySettings
from archive.errors import FetchError
from archive.fetch.client import GuardedClient, Response, SettingNames
from archive.fetch.guard import AddressPolicy

USER_AGENT = "PolicyArchive-Webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix
MAX_RETRY_AFTER = 86400.0
RESPONSE_LIMIT = 64 * 1024  # bytes of a receiver's answer read (the rest is dropped)
NOTIFY_SETTINGS = SettingNames(
    timeout="[notify] webhook_timeout",
    total="[notify] webhook_timeout",
    allow_private="[notify] allow_private_addresses",
    doing="posting to",
)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret (``whsec_`` + base64, or any other string)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            pass
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    msg_id = headers.get("webhook-id", "")
    try:
        timestamp = int(headers.get("webhook-timestamp", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body).partition(",")[2]
    return any(
        hmac.compare_digest(sig.partition(",")[2], expected)
        for sig in headers.get("webhook-signature", "").split()
        if sig.startswith("v1,")
    )


def payload(alert: AlertContent) -> dict[str, Any]:
    """The JSON document POSTed for ``alert`` (built the same way on every retry)."""
    facts = alert.facts
    data: dict[str, Any] = {"service": alert.service, "type": alert.type}
    if alert.event in content.VERSION_EVENTS:
        data |= {
            "version": facts["version"],
            "previous_version": facts.get("previous"),
            "date": facts["date"],
            "previous_date": facts.get("previous_date"),
            "kind": facts["kind"],
        }
        if facts.get("query"):
            data["query"] = facts["query"]
        if alert.summary is not None:
            data["summary"] = {
                **alert.summary.as_json(),  # the diff engine's: as the page and the API say
                "passages": len(alert.passages) + alert.more_passages,
                "first_record": alert.summary.first,
            }
    else:
        data |= {k: v for k, v in facts.items() if k not in data}
    data["urls"] = dict(alert.links)
    return {"type": alert.event.replace("_", "."), "timestamp": alert.created, "data": data}


def body_of(alert: AlertContent) -> bytes:
    return json.dumps(payload(alert), ensure_ascii=False, sort_keys=True).encode("utf-8")


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)


def notify_client(settings: NotifySettings) -> GuardedClient:
    """The guarded client of a delivery run, shared by webhooks and Apprise's HTTP kinds."""
    return GuardedClient(
        AddressPolicy.build(settings.allow_private_addresses),
        timeout=settings.webhook_timeout,
        total=settings.webhook_timeout,
        max_body=RESPONSE_LIMIT,
        names=NOTIFY_SETTINGS,
    )


class WebhookSender:
    """POSTs signed alerts to webhook endpoints through a guarded client (not closed here)."""

    def __init__(self, settings: NotifySettings, client: GuardedClient) -> None:
        self.settings = settings
        self.client = client

    def send(self, url: str, secret: str, alert: AlertContent) -> int:
        """Deliver one alert; returns the HTTP status, or raises :class:`DeliveryError`."""
        body = body_of(alert)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": alert.alert_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, alert.alert_id, timestamp, body),
        }
        try:
            response = self.client.request("POST", url, body=body, headers=headers)
        except FetchError as exc:
            raise DeliveryError(f"webhook {url}: {exc.reason}", transient=exc.transient) from None
        return check_answer(response, f"webhook {url}")


def check_answer(response: Response, what: str) -> int:
    """The status of a 2xx answer; else the :class:`DeliveryError` it means (``what`` names
    the receiver, e.g. ``"webhook https://…"``)."""
    status = response.status
    if 200 <= status <= 299:
        return status
    if status == 410:
        raise DeliveryError(
            f"{what} answered 410 Gone: endpoint disabled",
            transient=False,
            status=status,
            disable=True,
        )
    if 300 <= status <= 399:
        where = response.headers.get("Location", "?")
        raise DeliveryError(
            f"{what} answered {status} redirecting to {where}; redirects are not "
            "followed: subscribe the final URL instead",
            transient=False,
            status=status,
        )
    wait = None
    if status in (429, 503):
        wait = retry_after(response.headers.get("Retry-After"), time.time())
    raise DeliveryError(
        f"{what} answered HTTP {status}", transient=True, status=status, retry_after=wait
    )
