"""The fetch layer: http(s) GETs and browser rendering behind an SSRF guard.

``Fetcher(settings).fetch(url)`` returns a :class:`Fetched` or raises
:class:`~archive.errors.FetchError`. :class:`GuardedClient` is the one guarded outbound HTTP
client (SSRF guard, pinned addresses, pools, caps, deadlines) that fetches and alerts
(webhooks, Apprise) share; :func:`check_url_allowed` is the guard itself.
"""

from archive.errors import FetchError
from archive.fetch.client import GuardedClient, Response, SettingNames
from archive.fetch.fetcher import Fetcher
from archive.fetch.guard import (
    AddressPolicy,
    BlockedAddressError,
    blocked_reason,
    check_host_allowed,
    check_url_allowed,
)
from archive.fetch.model import Fetched

__all__ = [
    "AddressPolicy",
    "BlockedAddressError",
    "FetchError",
    "Fetched",
    "Fetcher",
    "GuardedClient",
    "Response",
    "SettingNames",
    "blocked_reason",
    "check_host_allowed",
    "check_url_allowed",
]
