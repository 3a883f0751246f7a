"""Reading an Open Terms Archive *versions* repository: its commits, oldest first, and blobs.

A read-only view of someone else's git repository (bare or not), kept apart from
:mod:`store`, which owns *our* repositories. ``git log --raw`` is streamed, so walking a
repository with hundreds of thousands of commits holds one commit at a time; blobs are read
through one long-lived ``git cat-file --batch`` (GitPython's), only for versions imported.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import git

from archive.errors import ArchiveError

# The engine's commit subject prefixes (src/archivist/recorder/repositories/git/dataMapper.js),
# current and deprecated, mapped to what the commit records.
FIRST_RECORD_PREFIXES = ("First record of ", "Start tracking ")
CHANGE_PREFIXES = ("Record new changes of ", "Update ")
TECHNICAL_PREFIXES = ("Apply technical or declaration upgrade on ", "Refilter ")

_REC, _FIELD = "\x1e", "\x1f"
_LOG_FORMAT = f"--format={_REC}%H{_FIELD}%aI{_FIELD}%B{_FIELD}"
_URL = re.compile(r"https?://\S+")
_SHA = re.compile(r"\b[0-9a-f]{40}\b")
_CHUNK = 1 << 16


class OtaRepoError(ArchiveError):
    """The path is not a readable git repository, or git failed while reading it."""


@dataclass(frozen=True)
class FileChange:
    """One file a commit added, modified or deleted (``status`` A, M, T or D)."""

    path: str
    blob: str
    status: str


@dataclass(frozen=True)
class OtaCommit:
    sha: str
    date: datetime
    message: str
    files: tuple[FileChange, ...]

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
            self._repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise OtaRepoError(
                f"{self.path} is not a git repository; clone an Open Terms Archive versions "
                "repository first (e.g. git clone https://github.com/OpenTermsArchive/"
                "demo-versions)"
            ) from None
        self.git_dir = Path(self._repo.git_dir)

    def _git(self, *args: str) -> list[str]:
        return ["git", f"--git-dir={self.git_dir}", *args]

    def head(self) -> str | None:
        """The commit the walk starts from (HEAD), None for an empty repository."""
        done = subprocess.run(
            self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() or None

    def label(self) -> str:
        """Where the history comes from: the ``origin`` URL if set, else the folder name."""
        try:
            url = self._repo.remotes.origin.url
        except (AttributeError, ValueError):
            url = ""
        name = self.path.resolve().name
        return url or (name[:-4] if name.endswith(".git") else name)

    def count_commits(self) -> int:
        if self.head() is None:
            return 0
        done = subprocess.run(
            self._git("rev-list", "--count", "--first-parent", "HEAD"),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise OtaRepoError(f"git rev-list failed in {self.path}: {done.stderr.strip()}")
        return int(done.stdout.strip() or 0)

    def commits(self) -> Iterator[OtaCommit]:
        """Every commit of HEAD's first-parent history, oldest first, with its file changes."""
        if self.head() is None:
            return
        args = self._git(
            "-c",
            "core.quotepath=false",
            "log",
            "--reverse",
            "--first-parent",
            "--diff-merges=first-parent",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "-z",
            _LOG_FORMAT,
            "HEAD",
        )
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            pending = b""
            try:
                while chunk := proc.stdout.read(_CHUNK):
                    records = (pending + chunk).split(_REC.encode())
                    pending = records.pop()
                    for record in records:
                        if record:
                            yield _parse_record(record)
                if pending:
                    yield _parse_record(pending)
            finally:
                if proc.poll() is None:
                    proc.kill()
                _, err = proc.communicate()
            if proc.returncode not in (0, -9):
                raise OtaRepoError(
                    f"git log failed in {self.path}: {err.decode('utf-8', 'replace').strip()}"
                )

    def blob(self, blob_id: str) -> bytes:
        """The bytes of one blob (a file's content at some commit)."""
        try:
            _, kind, _, data = self._repo.git.get_object_data(blob_id)
        except ValueError:
            raise OtaRepoError(f"{self.path} has no object {blob_id}") from None
        if kind != b"blob" and kind != "blob":
            raise OtaRepoError(f"{blob_id} in {self.path} is a {kind!r}, not a file")
        return data

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


def _parse_record(record: bytes) -> OtaCommit:
    text = record.decode("utf-8", "replace")
    sha, date, message, raw = text.split(_FIELD, 3)
    tokens = raw.lstrip("\0\n").split("\0")
    files = []
    i = 0
    while i < len(tokens):
        meta = tokens[i].lstrip("\n")
        if meta.startswith(":") and i + 1 < len(tokens):
            # ":<old mode> <new mode> <old blob> <new blob> <status>", then the path
            fields = meta[1:].split()
            files.append(FileChange(path=tokens[i + 1], blob=fields[3], status=fields[4][:1]))
            i += 2
        else:
            i += 1
    return OtaCommit(
        sha=sha.strip(),
        date=datetime.fromisoformat(date),
        message=message.strip(),
        files=tuple(files),
    )
