"""Webhooks: a signed JSON POST per alert (Standard Webhooks), sent through the SSRF guard.

Signing follows https://www.standardwebhooks.com: headers ``webhook-id`` (the alert's id, the
same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")). A secret
``whsec_<base64>`` is used as the base64-decoded key, any other string as its UTF-8 bytes.

The receiver's host is resolved once and checked by :mod:`archive.fetch.guard` (refusing
internal addresses unless ``[notify] allow_private_addresses``); the request goes to that
address. Redirects are not followed; 410 disables the endpoint; 429/503 ``Retry-After`` is
honoured.
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

import urllib3
from urllib3.exceptions import HTTPError, LocationValueError, NewConnectionError
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context

from archive.config import NotifySettings
from archive.errors import FetchError
from archive.fetch.guard import IPAddress, Target, check_url_allowed, parse_target
from archive.notify import content
from archive.notify.content import AlertContent
from archive.notify.errors import DeliveryError

USER_AGENT = "PolicyArchive-Webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix
MAX_RETRY_AFTER = 86400.0
RESPONSE_LIMIT = 64 * 1024


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
            data["summary"] = alert.summary.as_json()
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


class WebhookSender:
    """POSTs alerts to webhook endpoints; keeps connections for one delivery run."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._pools: dict[tuple[str, IPAddress, int, str], urllib3.HTTPConnectionPool] = {}
        self._timeout = urllib3.Timeout(total=settings.webhook_timeout)
        self._tls = None

    def send(self, url: str, secret: str, alert: AlertContent) -> int:
        """Deliver one alert; returns the HTTP status, or raises :class:`DeliveryError`."""
        body = body_of(alert)
        try:
            target = parse_target(url)
            addresses = check_url_allowed(url, self.settings.allow_private_addresses)
            path = parse_url(url).request_uri
        except FetchError as exc:
            raise DeliveryError(f"webhook {url}: {exc.reason}", transient=exc.transient) from None
        except LocationValueError as exc:
            raise DeliveryError(
                f"webhook {url} is not a valid URL ({exc})", transient=False
            ) from None
        timestamp = int(time.time())
        headers = {
            "Host": target.authority,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": alert.alert_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, alert.alert_id, timestamp, body),
        }
        response = self._post(target, addresses, path, headers, body, url)
        return self._check(response, url)

    def _post(
        self,
        target: Target,
        addresses: list[IPAddress],
        path: str,
        headers: dict[str, str],
        body: bytes,
        url: str,
    ) -> urllib3.BaseHTTPResponse:
        failure: Exception | None = None
        for address in addresses:  # the next address only when connecting failed
            try:
                response = self._pool(target, address).urlopen(
                    "POST",
                    path,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                    release_conn=False,
                )
                response.read(RESPONSE_LIMIT)
                response.release_conn()
                return response
            except NewConnectionError as exc:
                failure = exc
            except (HTTPError, OSError) as exc:
                raise DeliveryError(f"webhook {url}: {exc}", transient=True) from None
        raise DeliveryError(f"webhook {url}: could not connect ({failure})", transient=True)

    def _check(self, response: urllib3.BaseHTTPResponse, url: str) -> int:
        status = response.status
        if 200 <= status <= 299:
            return status
        if status == 410:
            raise DeliveryError(
                f"webhook {url} answered 410 Gone: endpoint disabled",
                transient=False,
                status=status,
                disable=True,
            )
        if 300 <= status <= 399:
            where = response.headers.get("Location", "?")
            raise DeliveryError(
                f"webhook {url} answered {status} redirecting to {where}; redirects are not "
                "followed: subscribe the final URL instead",
                transient=False,
                status=status,
            )
        wait = None
        if status in (429, 503):
            wait = retry_after(response.headers.get("Retry-After"), time.time())
        raise DeliveryError(
            f"webhook {url} answered HTTP {status}", transient=True, status=status, retry_after=wait
        )

    def _pool(self, target: Target, address: IPAddress) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        pool = self._pools.get(key)
        if pool is None:
            common = {"timeout": self._timeout, "maxsize": 1, "block": False, "retries": False}
            if target.scheme == "https":
                if self._tls is None:
                    self._tls = create_urllib3_context()
                    self._tls.load_default_certs()
                pool = urllib3.HTTPSConnectionPool(
                    str(address),
                    target.port,
                    ssl_context=self._tls,
                    cert_reqs="CERT_REQUIRED",
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    **common,
                )
            else:
                pool = urllib3.HTTPConnectionPool(str(address), target.port, **common)
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
