"""Errors of the alerting feature.

Senders raise :class:`DeliveryError` to tell the delivery loop what to do next (retry later,
honour a ``Retry-After``, give up, or disable the endpoint); the loop records it in the delivery
log and never lets it reach tracking.
"""

from __future__ import annotations

from archive.errors import ArchiveError


class NotifyError(ArchiveError):
    """Base class of the alerting errors (bad subscription, bad token, unsafe header)."""


class HeaderInjectionError(NotifyError):
    """A value meant for an email header contains CR, LF or another control character."""


class TokenError(NotifyError):
    """A signed link's token is malformed, forged, for another action, or expired."""


class DeliveryError(NotifyError):
    """One delivery attempt failed.

    ``transient``: trying again later may work. ``retry_after``: seconds the receiver asked us
    to wait (429/503). ``disable``: the endpoint is gone for good (HTTP 410); stop sending to it.
    """

    def __init__(
        self,
        reason: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
        disable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.disable = disable
