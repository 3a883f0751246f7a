"""A read-only view of someone else's git repository (bare or not): its history and blobs.

Our own repositories are :class:`store.git.repository.GitRepo`; this reads one we never write, such
as an Open Terms Archive *versions* clone for ``import-ota-repo``. What its commits mean is
the caller's business (:mod:`archive.research.ota_repo`); this module only walks git.

``git log --raw`` is streamed, so walking a repository with hundreds of thousands of commits
holds one commit at a time; blobs are read through one long-lived ``git cat-file --batch``
(GitPython's), only for the blobs asked for.
"""

from __future__ import annotations

import subprocess
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import git

from store.errors import StoreError

_REC, _FIELD = "\x1e", "\x1f"
_LOG_FORMAT = f"--format={_REC}%H{_FIELD}%aI{_FIELD}%B{_FIELD}"
_CHUNK = 1 << 16


class ForeignRepositoryError(StoreError):
    """Git failed while reading a foreign repository, or an object is not what was asked."""


class NotARepositoryError(ForeignRepositoryError):
    """The path is not a git repository (no such folder, or no repository in it)."""


@dataclass(frozen=True)
class FileChange:
    """One file a commit added, modified or deleted (``status`` A, M, T or D)."""

    path: str
    blob: str
    status: str


@dataclass(frozen=True)
class ForeignCommit:
    """One commit of a foreign repository: its id, author date, message and file changes."""

    sha: str
    date: datetime
    message: str
    files: tuple[FileChange, ...]


class ForeignRepository:
    """A git repository on disk that we only read (a clone, bare or not)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotARepositoryError(f"{self.path} is not a git repository") from None
        self._git_dir = Path(self._repo.git_dir)

    def _git(self, *args: str) -> list[str]:
        return ["git", f"--git-dir={self._git_dir}", *args]

    @property
    def name(self) -> str:
        """The repository's folder name, without a ``.git`` suffix (``demo-versions``)."""
        name = self.path.resolve().name
        return name.removesuffix(".git")

    def origin_url(self) -> str | None:
        """The URL of the ``origin`` remote, None when there is none."""
        try:
            url = self._repo.remotes.origin.url
        except (AttributeError, ValueError):
            url = ""
        return url or None

    def head(self) -> str | None:
        """The commit HEAD names, None for an empty repository."""
        done = subprocess.run(
            self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}"),
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() or None

    def count_commits(self) -> int:
        """Commits in HEAD's first-parent history."""
        if self.head() is None:
            return 0
        done = subprocess.run(
            self._git("rev-list", "--count", "--first-parent", "HEAD"),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ForeignRepositoryError(
                f"git rev-list failed in {self.path}: {done.stderr.strip()}"
            )
        return int(done.stdout.strip() or 0)

    def commits(self) -> Generator[ForeignCommit, None, None]:
        """Every commit of HEAD's first-parent history, oldest first, with its file changes
        (a merge's are those against its first parent; renames are a delete and an add)."""
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
                raise ForeignRepositoryError(
                    f"git log failed in {self.path}: {err.decode('utf-8', 'replace').strip()}"
                )

    def blob(self, blob_id: str) -> bytes:
        """The bytes of one blob (a file's content at some commit)."""
        try:
            _, kind, _, data = self._repo.git.get_object_data(blob_id)
        except ValueError:
            raise ForeignRepositoryError(f"{self.path} has no object {blob_id}") from None
        if kind != b"blob" and kind != "blob":
            raise ForeignRepositoryError(f"{blob_id} in {self.path} is a {kind!r}, not a file")
        return data

    def close(self) -> None:
        self._repo.close()

    def __enter__(self) -> ForeignRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parse_record(record: bytes) -> ForeignCommit:
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
    return ForeignCommit(
        sha=sha.strip(),
        date=datetime.fromisoformat(date),
        message=message.strip(),
        files=tuple(files),
    )
