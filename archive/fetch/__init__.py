"""The fetch layer: http(s) GETs and browser rendering behind an SSRF guard.

``Fetcher(settings).fetch(url)`` returns a :class:`Fetched` or raises
:class:`~archive.errors.FetchError`; :func:`check_url_allowed` is the guard, for any other
outbound request (webhooks).
"""

from archive.errors import FetchError
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
    "blocked_reason",
    "check_host_allowed",
    "check_url_allowed",
]
