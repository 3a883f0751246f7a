"""Signed tokens for the links in alert emails (unsubscribe, confirm a subscription).

A token is ``base64url(json payload) "." base64url(HMAC-SHA256(key, action "." payload))``:
it names the action and the subscription, and cannot be forged or reused for another action
without the archive's secret key. Confirmation tokens expire; unsubscribe tokens do not (an old
email's unsubscribe link must keep working).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from archive.alerts.errors import TokenError
from archive.config import Config

UNSUBSCRIBE, CONFIRM = "unsubscribe", "confirm"
CONFIRM_TTL = 7 * 86400
SECRET_FILE = "secret_key"  # noqa: S105 - a file name


def secret_key(config: Config) -> bytes:
    """The archive's signing key: ``[web] secret_key`` (which the config loader fills from
    ``$POLICY_ARCHIVE_SECRET_KEY`` when the file leaves it empty), else a random key generated
    once and kept in ``<data_dir>/secret_key`` (mode 0600).
    """
    if config.web.secret_key:
        return config.web.secret_key.encode("utf-8")
    path = Path(config.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(32))
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise TokenError(f"{path} is empty; delete it to generate a new secret key")
    return key.encode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, action: str, body: str) -> str:
    return _b64(hmac.new(key, f"{action}.{body}".encode("ascii"), hashlib.sha256).digest())


def make_token(key: bytes, action: str, subscription_id: int, *, now: float | None = None) -> str:
    """A token allowing ``action`` on subscription ``subscription_id``."""
    issued = int(time.time() if now is None else now)
    body = _b64(json.dumps({"s": subscription_id, "t": issued}, separators=(",", ":")).encode())
    return f"{body}.{_mac(key, action, body)}"


def read_token(
    key: bytes,
    action: str,
    token: str,
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> int:
    """The subscription id a valid ``token`` names for ``action``; raise :class:`TokenError`."""
    body, sep, mac = (token or "").partition(".")
    if not sep or not body or not mac:
        raise TokenError("this link is incomplete; copy the whole link from the email")
    if not hmac.compare_digest(mac, _mac(key, action, body)):
        raise TokenError("this link is not valid (it was altered, or is for another action)")
    try:
        payload = json.loads(_unb64(body))
        sub_id, issued = int(payload["s"]), int(payload["t"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise TokenError("this link is not valid") from None
    current = time.time() if now is None else now
    if max_age is not None and current - issued > max_age:
        raise TokenError("this link has expired; subscribe again to get a new one")
    return sub_id
