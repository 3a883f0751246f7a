"""The body of a policy's last failed fetch, kept for the operator to look at.

When a check fails with something to show (an HTTP error page, a login or bot wall, a page
whose extraction failed), the bytes are kept under ``data_dir/failed/``: one file per policy,
the newest failure only, each part capped at :data:`MAX_PART_BYTES` and at most
:data:`MAX_PARTS` parts (a policy combining several pages). They are evidence, never a version:
nothing reads them but the admin pages, and a recovered policy's file is removed.

A file is one JSON header line (when, why, and each part's URL, content type, length and
whether it was cut) followed by the parts' bytes back to back; it is replaced atomically, so a
reader sees the old failure or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

MAX_PART_BYTES = 256 * 1024
MAX_PARTS = 4
HEADER_LIMIT = 64 * 1024
"""Longest header line read back (a larger one means the file is not ours)."""


@dataclass(frozen=True)
class FailedPart:
    """One page of a failed fetch, as received (cut at :data:`MAX_PART_BYTES`)."""

    url: str
    content_type: str
    body: bytes
    truncated: bool = False


@dataclass(frozen=True)
class FailedFetch:
    """What the last failed check of a policy received, and why it failed."""

    at: datetime
    reason: str
    parts: tuple[FailedPart, ...]


def _key(service: str, type_: str) -> str:
    """A file name for the policy that needs no sanitising (its names can be anything)."""
    return hashlib.sha256(f"{service}\0{type_}".encode()).hexdigest()[:40]


FOLDER = "failed"


class FailedBodies:
    """The folder of last failed fetches (``data_dir/failed``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def of(cls, data_dir: Path) -> FailedBodies:
        """The folder of an archive's data directory."""
        return cls(Path(data_dir) / FOLDER)

    def _path(self, service: str, type_: str) -> Path:
        return self.folder / f"{_key(service, type_)}.failed"

    def keep(
        self,
        service: str,
        type_: str,
        parts: Sequence[FailedPart],
        *,
        at: datetime,
        reason: str,
    ) -> None:
        """Keep ``parts`` as the policy's last failed fetch (replacing the one before)."""
        kept = []
        for part in list(parts)[:MAX_PARTS]:
            cut = len(part.body) > MAX_PART_BYTES
            kept.append(
                FailedPart(
                    part.url, part.content_type, part.body[:MAX_PART_BYTES], cut or part.truncated
                )
            )
        header = {
            "service": service,
            "type": type_,
            "at": at.isoformat(),
            "reason": reason,
            "parts": [
                {
                    "url": p.url,
                    "content_type": p.content_type,
                    "length": len(p.body),
                    "truncated": p.truncated,
                }
                for p in kept
            ],
        }
        data = json.dumps(header, ensure_ascii=True).encode("ascii") + b"\n"
        data += b"".join(p.body for p in kept)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".failed")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self._path(service, type_))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, service: str, type_: str) -> FailedFetch | None:
        """The policy's last failed fetch, or None (none kept, or a file that is not ours)."""
        try:
            data = self._path(service, type_).read_bytes()
        except FileNotFoundError:
            return None
        line, newline, _ = data[:HEADER_LIMIT].partition(b"\n")
        if not newline:
            return None
        try:
            header = json.loads(line)
            at = datetime.fromisoformat(header["at"])
            if (header["service"], header["type"]) != (service, type_):
                return None  # a (vanishingly unlikely) collision of the file name
            body = data[len(line) + 1 :]
            parts, offset = [], 0
            for p in header["parts"]:
                length = int(p["length"])
                parts.append(
                    FailedPart(
                        str(p["url"]),
                        str(p["content_type"]),
                        body[offset : offset + length],
                        bool(p["truncated"]),
                    )
                )
                offset += length
        except (ValueError, KeyError, TypeError):
            return None
        return FailedFetch(at=at, reason=str(header["reason"]), parts=tuple(parts))

    def forget(self, service: str, type_: str) -> None:
        """Drop the policy's kept failure (it was fetched again)."""
        self._path(service, type_).unlink(missing_ok=True)
