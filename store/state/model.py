"""What state holds about one policy: last checks, conditional-GET validators, failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Validators:
    """Conditional-GET validators of one source URL."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PolicyState:
    service: str
    type: str
    last_check: datetime | None = None
    last_success: datetime | None = None
    last_change: datetime | None = None
    validators: tuple[Validators, ...] = field(default=())
    body_hash: str | None = None
    text_hash: str | None = None
    failures: int = 0
    last_error: str | None = None
    last_error_transient: bool | None = None
    suspect_hash: str | None = None
    suspect_since: datetime | None = None
    failing_since: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def validator_for(self, url: str) -> Validators | None:
        return next((v for v in self.validators if v.url == url), None)
