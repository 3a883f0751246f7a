"""Dates typed by people: ``2024-06-01`` or a full ISO 8601 timestamp."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from archive.errors import ArchiveError


class DateError(ArchiveError):
    """A date could not be read."""


def parse_when(value: str, *, end_of_day: bool = True) -> datetime:
    """A bare date means the end of that day (UTC): "as it stood on 2024-06-01" includes
    changes observed that day. A timestamp without a zone is UTC. The result is in UTC, so a
    moment that UTC cannot hold (``9999-12-31T23:59:59-23:59``) is a :class:`DateError`."""
    text = (value or "").strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DateError(
            f"{value!r} is not a date: use YYYY-MM-DD or an ISO 8601 "
            "timestamp such as 2024-06-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise DateError(
            f"{value!r} is out of range: dates run from 0001-01-01 to 9999-12-31 (UTC)"
        ) from None
