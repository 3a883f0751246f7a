"""A git repository used as an append-only store: commits with observation dates and trailers.

The only module (with :mod:`store.versions` and :mod:`store.snapshots` on top of it) that talks
to git. Everything above sees commit SHAs as opaque version ids.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import git

from store.errors import StoreError

BRANCH = "main"
COMMITTER_NAME = "Policy Archive"
COMMITTER_EMAIL = "archive@policy-archive.invalid"
SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
_SEP_REC, _SEP_FIELD = "\x1e", "\x1f"
# %(trailers) gives every trailer "Key: value" unfolded, one per line.
_SEP_END = "\x1d"
_LOG_FORMAT = _SEP_REC + _SEP_FIELD.join(["%H", "%aI", "%s", "%(trailers:only,unfold)"]) + "%x1d"


def blob_sha(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints), without calling git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def git_date(when: datetime) -> str:
    """``<unix seconds> <offset>``: git's internal date format, exact to the second."""
    if when.tzinfo is None:
        raise StoreError("commit dates must be timezone-aware")
    offset = when.utcoffset() or (when - when)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def clean_trailer(value: str) -> str:
    return " ".join(str(value).split())


def format_message(subject: str, trailers: Iterable[tuple[str, str]]) -> str:
    lines = [clean_trailer(subject), ""]
    lines += [f"{k}: {clean_trailer(v)}" for k, v in trailers if v not in (None, "")]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Commit:
    sha: str
    date: datetime
    subject: str
    trailers: Mapping[str, tuple[str, ...]]
    paths: tuple[str, ...] = field(default=())

    def trailer(self, key: str) -> str | None:
        values = self.trailers.get(key)
        return values[0] if values else None


def _parse_trailers(block: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out.setdefault(key.strip(), []).append(value.strip())
    return {k: tuple(v) for k, v in out.items()}


class GitRepo:
    """A non-bare repository on branch ``main`` whose files are written only by us."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not (self.path / ".git").is_dir():
            if not create:
                raise StoreError(
                    f"{self.path} is not an archive repository; run `policy-archive init` first"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            git.Repo.init(self.path, initial_branch=BRANCH)
        self.repo = git.Repo(self.path)
        if create:
            with self.repo.config_writer() as cw:
                cw.set_value("user", "name", COMMITTER_NAME)
                cw.set_value("user", "email", COMMITTER_EMAIL)
                cw.set_value("gc", "auto", "0")  # gc is scheduled, never in a commit's path
                cw.set_value("core", "quotepath", "false")
                cw.set_value("http", "receivepack", "false")
        self._lock = threading.RLock()  # GitPython's cat-file processes are not thread-safe

    # ------------------------------------------------------------------ reading

    def head(self) -> str | None:
        """The tip of main, read from the ref files (no process: called on every read)."""
        gitdir = self.path / ".git"
        try:
            value = (gitdir / "refs" / "heads" / BRANCH).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            value = ""
        if SHA_RE.match(value):
            return value
        try:
            packed = (gitdir / "packed-refs").read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            sha, _, ref = line.partition(" ")
            if ref == f"refs/heads/{BRANCH}":
                return sha
        return None

    def read(self, sha: str, path: str) -> bytes | None:
        """The bytes of ``path`` at commit ``sha``, or None if it did not exist there."""
        if not SHA_RE.match(sha):
            raise StoreError(f"{sha!r} is not a commit id")
        with self._lock:
            try:
                # one persistent `git cat-file --batch`: ~0.2 ms a read
                _, kind, _, data = self.repo.git.get_object_data(f"{sha}:{path}")
            except (ValueError, git.GitCommandError):
                return None
            return data if kind == b"blob" else None

    def log(
        self, *, paths: Iterable[str] = (), since: str | None = None, names: bool = False
    ) -> list[Commit]:
        """Commits oldest first, optionally only those after ``since`` or touching ``paths``."""
        if self.head() is None:
            return []
        args = ["--reverse", f"--format={_LOG_FORMAT}", "--no-renames"]
        if names:
            args.append("--name-only")
        args.append(f"{since}..{BRANCH}" if since else BRANCH)
        path_list = list(paths)
        if path_list:
            args += ["--", *path_list]
        with self._lock:
            out = self.repo.git.log(*args, stdout_as_string=False).decode("utf-8", "replace")
        return list(self._parse_log(out))

    @staticmethod
    def _parse_log(out: str) -> Iterator[Commit]:
        for record in out.split(_SEP_REC)[1:]:
            fields = record.split(_SEP_FIELD)
            if len(fields) < 4:
                continue
            sha, date, subject, rest = fields[0], fields[1], fields[2], fields[3]
            trailer_block, _, name_block = rest.partition(_SEP_END)
            paths = tuple(p for p in name_block.splitlines() if p.strip())
            yield Commit(
                sha=sha,
                date=datetime.fromisoformat(date),
                subject=subject,
                trailers=_parse_trailers(trailer_block),
                paths=paths,
            )

    def commit_info(self, sha: str) -> Commit | None:
        """One commit's date, subject and trailers; None if ``sha`` is not on main."""
        if not SHA_RE.match(sha) or not self.is_ancestor(sha):
            return None
        with self._lock:
            out = self.repo.git.log(
                "-1", f"--format={_LOG_FORMAT}", sha, stdout_as_string=False
            ).decode("utf-8", "replace")
        return next(self._parse_log(out), None)

    def list_files(self, sha: str, folder: str) -> list[str]:
        """Paths of the files directly in ``folder`` at commit ``sha``."""
        with self._lock:
            out = self.repo.git.ls_tree(
                "--name-only", "-z", sha, "--", folder + "/", stdout_as_string=False
            )
        return [p for p in out.decode("utf-8").split("\0") if p]

    def is_ancestor(self, sha: str) -> bool:
        try:
            self.repo.git.merge_base("--is-ancestor", sha, BRANCH)
        except git.GitCommandError:
            return False
        return True

    # ------------------------------------------------------------------ writing

    def recover(self) -> list[str]:
        """Clear what a writer killed mid-commit left behind. Call only holding the writer lock.

        Removes git lock files (ours: nobody else writes these repositories), then puts the
        index and work tree back to the last commit. Returns what it cleaned, for the log.
        """
        cleaned = []
        gitdir = self.path / ".git"
        for lock in sorted(gitdir.rglob("*.lock")):  # index, HEAD, refs, reflogs, config...
            if lock.is_file() and "objects" not in lock.relative_to(gitdir).parts:
                lock.unlink()
                cleaned.append(str(lock))
        for tmp in self.path.rglob(".tmp-*"):
            if ".git" not in tmp.relative_to(self.path).parts:
                tmp.unlink()
                cleaned.append(str(tmp))
        if self.head() is not None:
            status = self.repo.git.status("--porcelain")
            if status.strip():
                self.repo.git.reset("--hard", "-q", BRANCH)
                self.repo.git.clean("-fdq")
                cleaned.append("work tree restored to the last commit")
        return cleaned

    def commit_files(
        self,
        files: Mapping[str, bytes],
        subject: str,
        trailers: Iterable[tuple[str, str]],
        when: datetime,
    ) -> str:
        """Write ``files`` (relative path → bytes) and commit them dated ``when``."""
        message = format_message(subject, trailers)
        with self._lock:
            for rel, data in files.items():
                target = self.path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            actor = git.Actor(COMMITTER_NAME, COMMITTER_EMAIL)
            date = git_date(when)
            index = self.repo.index
            index.add(list(files))
            commit = index.commit(
                message,
                author=actor,
                committer=actor,
                author_date=date,
                commit_date=date,
                head=True,
                skip_hooks=True,
            )
            return commit.hexsha

    def fast_import(self, chunks: Iterable[bytes]) -> None:
        """Feed a ``git fast-import`` stream (bulk import), then sync index and work tree."""
        with self._lock:
            with tempfile.TemporaryFile() as errors:
                proc = subprocess.Popen(
                    ["git", "fast-import", "--quiet", "--done"],
                    cwd=self.path,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                )
                assert proc.stdin is not None
                try:
                    for chunk in chunks:
                        proc.stdin.write(chunk)
                    proc.stdin.write(b"done\n")
                except BrokenPipeError:
                    pass
                except BaseException:
                    proc.kill()  # the input failed: write nothing rather than a partial import
                    proc.wait()
                    raise
                finally:
                    proc.stdin.close()
                proc.wait()
                errors.seek(0)
                message = errors.read().decode("utf-8", "replace")
            if proc.returncode != 0:
                raise StoreError(f"git fast-import failed: {message.strip()}")
            if self.head() is not None:
                self.repo.git.reset("--hard", "-q", BRANCH)

    def gc(self) -> None:
        with self._lock:
            self.repo.git.gc("--quiet")

    def fsck(self) -> str:
        with self._lock:
            try:
                return self.repo.git.fsck("--no-progress", "--strict")
            except git.GitCommandError as exc:
                found = "\n".join(p for p in (exc.stdout, exc.stderr) if p and p.strip())
                raise StoreError(f"git fsck found problems in {self.path}: {found}") from None

    def close(self) -> None:
        with self._lock:
            self.repo.close()


def fast_import_commit(
    *,
    subject: str,
    trailers: Iterable[tuple[str, str]],
    when: datetime,
    files: Mapping[str, bytes],
    parent: str | None,
) -> bytes:
    """One commit of a ``git fast-import`` stream on branch main."""
    message = format_message(subject, trailers).encode("utf-8")
    who = f"{COMMITTER_NAME} <{COMMITTER_EMAIL}> {git_date(when)}".encode()
    out = [
        b"commit refs/heads/" + BRANCH.encode() + b"\n",
        b"author " + who + b"\n",
        b"committer " + who + b"\n",
        b"data %d\n" % len(message),
        message,
        b"\n",
    ]
    if parent:
        out.append(f"from {parent}\n".encode())
    for path, data in files.items():
        out.append(b"M 100644 inline " + _quote_path(path) + b"\n")
        out.append(b"data %d\n" % len(data))
        out.append(data)
        out.append(b"\n")
    out.append(b"\n")
    return b"".join(out)


def _quote_path(path: str) -> bytes:
    raw = path.encode("utf-8")
    if b"\n" in raw or raw.startswith(b'"') or b"\\" in raw:
        escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
        return b'"' + escaped + b'"'
    return raw


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
