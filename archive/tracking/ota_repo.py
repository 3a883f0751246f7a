"""Reading an Open Terms Archive *versions* repository: what its commits record.

The engine's commit subjects (first records, changes, technical upgrades), the snapshots a
commit body names, and which files are documents (``<Service>/<Terms type>.md``). Git itself
is read through :class:`store.foreign.ForeignRepository` (read-only, streamed); this module
only gives its commits their Open Terms Archive meaning.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from archive.errors import ArchiveError
from store.git.foreign import (
    FileChange,
    ForeignCommit,
    ForeignRepository,
    ForeignRepositoryError,
    NotARepositoryError,
)

__all__ = [
    "FileChange",
    "OtaCommit",
    "OtaRepoError",
    "OtaRepository",
    "split_document_path",
]

# The engine's commit subject prefixes (src/archivist/recorder/repositories/git/dataMapper.js),
# current and deprecated, mapped to what the commit records.
FIRST_RECORD_PREFIXES = ("First record of ", "Start tracking ")
CHANGE_PREFIXES = ("Record new changes of ", "Update ")
TECHNICAL_PREFIXES = ("Apply technical or declaration upgrade on ", "Refilter ")

_URL = re.compile(r"https?://\S+")
_SHA = re.compile(r"\b[0-9a-f]{40}\b")


class OtaRepoError(ArchiveError):
    """The path is not a readable git repository, or git failed while reading it."""


@dataclass(frozen=True)
class OtaCommit(ForeignCommit):
    """A commit of an Open Terms Archive versions repository, read as the engine wrote it."""

    @classmethod
    def of(cls, commit: ForeignCommit) -> OtaCommit:
        return cls(sha=commit.sha, date=commit.date, message=commit.message, files=commit.files)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0].strip()

    @property
    def kind(self) -> str | None:
        """'first_record', 'change', 'technical_upgrade', or None for other commits."""
        for kind, prefixes in (
            ("first_record", FIRST_RECORD_PREFIXES),
            ("change", CHANGE_PREFIXES),
            ("technical_upgrade", TECHNICAL_PREFIXES),
        ):
            if self.subject.startswith(prefixes):
                return kind
        return None

    def snapshot_refs(self) -> tuple[str, ...]:
        """The snapshots the version was extracted from, as written in the message body:
        URLs when the engine wrote them, else bare commit ids."""
        body = self.message.split("\n", 1)[1] if "\n" in self.message else ""
        urls = tuple(u.rstrip(".,;)") for u in _URL.findall(body))
        return urls or tuple(_SHA.findall(body))


def split_document_path(path: str) -> tuple[str, str] | None:
    """``Service/Terms type.md`` → (service, terms type); None for any other file."""
    parts = path.split("/")
    if len(parts) != 2 or not parts[1].endswith(".md") or len(parts[1]) <= 3:
        return None
    if parts[0].startswith("."):
        return None
    return parts[0], parts[1][:-3]


class OtaRepository:
    """An Open Terms Archive versions repository on disk (a clone, bare or not)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._repo = ForeignRepository(self.path)
        except NotARepositoryError:
            raise OtaRepoError(
                f"{self.path} is not a git repository; clone an Open Terms Archive versions "
                "repository first (e.g. git clone https://github.com/OpenTermsArchive/"
                "demo-versions)"
            ) from None

    def head(self) -> str | None:
        """The commit the walk starts from (HEAD), None for an empty repository."""
        return self._repo.head()

    def label(self) -> str:
        """Where the history comes from: the ``origin`` URL if set, else the folder name."""
        return self._repo.origin_url() or self._repo.name

    def count_commits(self) -> int:
        with _reading():
            return self._repo.count_commits()

    def commits(self) -> Iterator[OtaCommit]:
        """Every commit of HEAD's first-parent history, oldest first, with its file changes."""
        commits = self._repo.commits()
        with _reading(), contextlib.closing(commits):  # closing stops git's log at once
            for commit in commits:
                yield OtaCommit.of(commit)

    def blob(self, blob_id: str) -> bytes:
        """The bytes of one blob (a file's content at some commit)."""
        with _reading():
            return self._repo.blob(blob_id)

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> OtaRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Git's failures while reading, as this importer's error (same message)."""
    try:
        yield
    except ForeignRepositoryError as exc:
        raise OtaRepoError(str(exc)) from None
