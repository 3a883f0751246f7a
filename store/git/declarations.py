"""The declarations repository: a git repository *with* a work tree, written by the admin UI.

Unlike the versions and snapshots repositories (bare, written object by object), this one is a
folder of Open Terms Archive declaration files that people and tools read and edit as files, so
it keeps a work tree: a save writes the files, then commits exactly those paths, authored by
the person who made the edit (the committer is Policy Archive). A folder that is not yet a
repository becomes one on the first save; files already in it are left as they are (and stay
untracked until someone commits them).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from store.errors import StoreError
from store.git.repository import BRANCH, COMMITTER_EMAIL, COMMITTER_NAME, git_date

_SEP = "\x1f"


@dataclass(frozen=True)
class Author:
    """Who made an edit: a user of the admin UI."""

    name: str
    email: str


@dataclass(frozen=True)
class DeclarationCommit:
    sha: str
    date: datetime
    author: str
    subject: str


def _check_relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
        raise StoreError(f"{path!r} is not a path inside the declarations repository")
    return path


class DeclarationsRepo:
    """The declarations folder as a git repository on branch ``main``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one save at a time here; git's index.lock across processes

    @property
    def exists(self) -> bool:
        return (self.path / ".git").is_dir()

    def _git(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        # only a search path from our environment: no user or system git config, hooks or
        # credentials reach the commits (every identity is passed in ``env``)
        full_env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            **(env or {}),
        }
        try:
            done = subprocess.run(
                ["git", "-C", str(self.path), *args],
                check=True,
                capture_output=True,
                env=full_env,
                timeout=60,
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode("utf-8", "replace").strip()
            raise StoreError(f"{self.path}: git {args[0]} failed: {detail}") from None
        except subprocess.TimeoutExpired:
            raise StoreError(f"{self.path}: git {args[0]} took over a minute") from None
        return done.stdout.decode("utf-8", "replace")

    def ensure(self) -> None:
        """Make the folder a repository if it is not one yet (existing files stay)."""
        if self.exists:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self._git("init", "-q", "-b", BRANCH)
        self._git("config", "core.quotepath", "false")

    def head(self) -> str | None:
        """The current commit id, None before the first commit or without a repository."""
        if not self.exists:
            return None
        try:
            return self._git("rev-parse", "--verify", "-q", "HEAD").strip() or None
        except StoreError:
            return None

    def read(self, path: str) -> bytes | None:
        """The bytes of ``path`` in the work tree (what the loader reads), or None."""
        target = self.path / _check_relative(path)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            return None

    def commit(
        self,
        files: Mapping[str, bytes | None],
        subject: str,
        author: Author,
        when: datetime,
    ) -> str | None:
        """Write ``files`` (path → bytes, None to delete) and commit those paths.

        Returns the new commit id, or None when the files already held these bytes. Other
        files of the work tree (hand edits in progress) are not part of the commit.
        """
        paths = [_check_relative(p) for p in files]
        with self._lock:
            self.ensure()
            for path, data in files.items():
                target = self.path / path
                if data is None:
                    target.unlink(missing_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            self._git("add", "-A", "--", *paths)
            staged = self._git("diff", "--cached", "--name-only", "-z", "--", *paths)
            if not staged.strip("\0"):
                return None
            date = git_date(when)
            env = {
                "GIT_AUTHOR_NAME": author.name,
                "GIT_AUTHOR_EMAIL": author.email,
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_NAME": COMMITTER_NAME,
                "GIT_COMMITTER_EMAIL": COMMITTER_EMAIL,
                "GIT_COMMITTER_DATE": date,
            }
            message = " ".join(subject.split()) + "\n"
            self._git("commit", "-q", "--no-verify", "-m", message, "--", *paths, env=env)
            head = self.head()
            if head is None:  # pragma: no cover - git just made the commit
                raise StoreError(f"{self.path}: the commit was not recorded")
            return head

    def log(self, path: str | None = None, limit: int = 100) -> list[DeclarationCommit]:
        """Commits (newest first), optionally only those touching ``path``."""
        if self.head() is None:
            return []
        args = ["log", f"-n{limit}", f"--format=%H{_SEP}%aI{_SEP}%an{_SEP}%s"]
        if path is not None:
            args += ["--", _check_relative(path)]
        commits = []
        for line in self._git(*args).splitlines():
            sha, date, author, subject = line.split(_SEP, 3)
            commits.append(DeclarationCommit(sha, datetime.fromisoformat(date), author, subject))
        return commits
