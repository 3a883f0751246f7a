"""Domain errors. Library code raises these; the CLI and the HTTP layer turn them into messages."""

from store.errors import StoreError

__all__ = ["ArchiveError", "ConfigError", "ExtractError", "FetchError", "StoreError"]


class ArchiveError(Exception):
    """Base class of the domain errors raised by ``archive``."""


class ConfigError(ArchiveError):
    """The configuration is invalid. The message names the file, the policy and the fix."""


class FetchError(ArchiveError):
    """A document could not be fetched.

    ``transient`` says whether trying again later may succeed (timeouts, 5xx, connection
    refused) or whether a person has to act (404, a blocked address, a body over the size cap).
    ``body`` and ``content_type``: the start of what the server answered when it is worth
    showing the operator (an HTTP error page), else None and "".
    """

    def __init__(
        self, reason: str, *, transient: bool, url: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.url = url
        self.status = status
        self.body: bytes | None = None
        self.content_type = ""


class ExtractError(ArchiveError):
    """Text could not be extracted from a fetched document (nothing matched, empty, error page)."""
