"""HTTP statuses and content types turned into :class:`FetchError` with an actionable reason."""

from __future__ import annotations

from collections.abc import Callable

from archive.errors import FetchError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NOT_DOCUMENTS = ("image/", "audio/", "video/", "font/", "model/", "multipart/")


def status_error(status: int, url: str, header: Callable[[str], str | None]) -> FetchError:
    """The error for a response ``status`` that is neither success, 304 nor a redirect.

    ``header(name)`` returns a response header (used for Retry-After).
    """
    retry_after = header("Retry-After")
    wait = f"; the site asks to wait (Retry-After: {retry_after})" if retry_after else ""
    if status in (404, 410):
        return FetchError(
            f"{url} was not found (HTTP {status}) — check the URL",
            transient=False,
            url=url,
            status=status,
        )
    if status in (401, 403, 451):
        return FetchError(
            f"{url} refused access (HTTP {status}); the site may block automated clients — "
            "open it in a browser to check, or mark the policy js = true",
            transient=False,
            url=url,
            status=status,
        )
    if status == 429:
        return FetchError(
            f"{url} is rate-limiting us (HTTP 429){wait or '; no Retry-After'}; "
            "it will be retried later",
            transient=True,
            url=url,
            status=status,
        )
    if status == 408:
        return FetchError(
            f"{url} timed out waiting for our request (HTTP 408); it will be retried later",
            transient=True,
            url=url,
            status=status,
        )
    if 500 <= status <= 599:
        return FetchError(
            f"{url} had a server error (HTTP {status}){wait}; it will be retried later",
            transient=True,
            url=url,
            status=status,
        )
    if 400 <= status <= 499:
        return FetchError(
            f"{url} rejected the request (HTTP {status}); check the URL",
            transient=False,
            url=url,
            status=status,
        )
    return FetchError(
        f"{url} answered with an unexpected HTTP status {status}",
        transient=False,
        url=url,
        status=status,
    )


def content_type_error(content_type: str, url: str, status: int) -> FetchError | None:
    """An error if ``content_type`` cannot be a policy document (an image, a video...)."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith(_NOT_DOCUMENTS):
        return FetchError(
            f"{url} serves {mime}, not a document (HTML, text or PDF); check the URL",
            transient=False,
            url=url,
            status=status,
        )
    return None
