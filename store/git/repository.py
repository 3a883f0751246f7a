"""A git repository used as an append-only store: commits with observation dates and trailers.

The only module (with :mod:`store.versions` and :mod:`store.snapshots` on top of it) that talks
to git. Everything above sees commit SHAs as opaque version ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import git

from store.errors import StoreError
from store.git import integrity
from store.git.trees import Tree

log = logging.getLogger(__name__)

BRANCH = "main"
COMMITTER_NAME = "Policy Archive"
COMMITTER_EMAIL = "archive@policy-archive.invalid"
SHA_RE = re.compile(r"[0-9a-f]{7,40}")
_COMPRESS_TREES_BELOW = 16 * 1024
GC_AUTO_THRESHOLD = 6700  # git's default gc.auto
PACK_AFTER_BYTES = 64 * 1024 * 1024
MAX_PACKS = 20
_SEP_REC, _SEP_FIELD = "\x1e", "\x1f"
# %(trailers) gives every trailer "Key: value" unfolded, one per line.
_SEP_END = "\x1d"
_LOG_FORMAT = _SEP_REC + _SEP_FIELD.join(["%H", "%aI", "%s", "%(trailers:only,unfold)"]) + "%x1d"


def is_repository(folder: Path) -> bool:
    """Whether ``folder`` holds one of our repositories (its ``.git``), without opening it."""
    return (Path(folder) / ".git").is_dir()


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
    """A repository on branch ``main`` written only by us, with no work tree.

    The repository lives in ``<path>/.git`` and is bare (``core.bare = true``): commits are
    written with git's object format directly (blobs, trees and the commit as loose objects,
    then a compare-and-swap of ``refs/heads/main``), never through an index file, so the cost
    of a commit does not grow with the number of files in the index. Reads go through one
    long-lived ``git cat-file --batch`` (GitPython) and ``git log``.
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self.gitdir = self.path / ".git"
        self._objects = str(self.gitdir / "objects")
        self._folders: set[str] = set()  # objects/xx folders known to exist
        if not (self.gitdir / "HEAD").is_file():
            if not create:
                raise StoreError(
                    f"{self.path} is not an archive repository; run `policy-archive init` first"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "-q", "--bare", "-b", BRANCH, str(self.gitdir)],
                check=True,
                capture_output=True,
            )
        self.repo = git.Repo(self.gitdir)
        if create:
            self._configure()
        self._lock = threading.RLock()  # GitPython's cat-file processes are not thread-safe
        self._tree: Tree | None = None  # HEAD's tree, loaded for the first write
        self._written = 0  # loose objects written by this process since the last pack
        self._written_bytes = 0  # and their size

    def _configure(self) -> None:
        """Settings we rely on; written only when they differ (a writer holds the lock)."""
        wanted = {
            ("user", "name"): COMMITTER_NAME,
            ("user", "email"): COMMITTER_EMAIL,
            ("gc", "auto"): "0",  # packing is scheduled (see ``maybe_pack``), never implicit
            ("core", "quotepath"): "false",
            ("core", "bare"): "true",
            ("http", "receivepack"): "false",
        }
        with self.repo.config_reader() as cr:
            missing = {
                k: v for k, v in wanted.items() if str(cr.get_value(*k, default="")).lower() != v
            }
        if not missing:
            return
        with self.repo.config_writer() as cw:
            for (section, option), value in missing.items():
                cw.set_value(section, option, value)
        if ("core", "bare") in missing:
            self._drop_work_tree()

    def _drop_work_tree(self) -> None:
        """Archives made before the repositories were bare: remove the index and the checked-out
        copies of committed files (every byte of them is in git)."""
        (self.gitdir / "index").unlink(missing_ok=True)
        head = self.head()
        if head is None:
            return
        out = self.repo.git.ls_tree("--name-only", "-z", head, stdout_as_string=False)
        for name in out.decode("utf-8").split("\0"):
            target = self.path / name
            if not name or name == ".git" or not target.exists():
                continue
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()

    # ------------------------------------------------------------------ reading

    def head(self) -> str | None:
        """The tip of main, read from the ref files (no process: called on every read)."""
        gitdir = self.path / ".git"
        try:
            value = (gitdir / "refs" / "heads" / BRANCH).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            value = ""
        if SHA_RE.fullmatch(value):
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
        if not SHA_RE.fullmatch(sha):
            raise StoreError(f"{sha!r} is not a commit id")
        with self._lock:
            try:
                # one persistent `git cat-file --batch`: ~0.2 ms a read
                _, kind, _, data = self.repo.git.get_object_data(f"{sha}:{path}")
            except (ValueError, git.GitCommandError):
                return None
            return data if kind == b"blob" else None

    def read_many(self, items: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """:meth:`read` of each (commit, path), in order, from one ``git cat-file --batch``
        run (a few ms to start; then no round trip per file)."""
        for sha, _ in items:
            if not SHA_RE.fullmatch(sha):
                raise StoreError(f"{sha!r} is not a commit id")
        if not items:
            return []
        names = "".join(f"{sha}:{path}\n" for sha, path in items).encode("utf-8")
        done = subprocess.run(
            ["git", "--git-dir", str(self.gitdir), "cat-file", "--batch"],
            input=names,
            capture_output=True,
            check=False,
        )
        if done.returncode:
            raise StoreError(f"git cat-file failed: {done.stderr.decode('utf-8', 'replace')}")
        out, at = done.stdout, 0
        found: list[bytes | None] = []
        for _ in items:
            end = out.index(b"\n", at)
            header = out[at:end].split(b" ")
            at = end + 1
            if len(header) != 3 or not header[2].isdigit():  # "<name> missing", "ambiguous"
                found.append(None)
                continue
            size = int(header[2])
            found.append(out[at : at + size] if header[1] == b"blob" else None)
            at += size + 1
        return found

    def log(
        self,
        *,
        paths: Iterable[str] = (),
        since: str | None = None,
        names: bool = False,
        until: str | None = None,
    ) -> list[Commit]:
        """Commits oldest first, up to ``until`` (default: HEAD), optionally only those after
        ``since`` or touching ``paths``."""
        tip = until or self.head()
        if tip is None:
            return []
        args = ["--reverse", f"--format={_LOG_FORMAT}", "--no-renames"]
        if names:
            args.append("--name-only")
        args.append(f"{since}..{tip}" if since else tip)
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
        if not SHA_RE.fullmatch(sha) or not self.is_ancestor(sha):
            return None
        with self._lock:
            out = self.repo.git.log(
                "-1", f"--format={_LOG_FORMAT}", sha, stdout_as_string=False
            ).decode("utf-8", "replace")
        return next(self._parse_log(out), None)

    def last_commit_touching(self, paths: list[str]) -> str | None:
        """The newest commit on main that changed any of ``paths``."""
        if self.head() is None:
            return None
        with self._lock:
            out = self.repo.git.log("-1", "--format=%H", BRANCH, "--", *paths)
        return out.strip() or None

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

    @staticmethod
    def recover_path(path: Path) -> list[str]:
        """Clear what a writer killed mid-write left in the repository at ``path``.

        Call only holding the data directory's writer lock, and before anything else opens the
        repository for writing: git lock files (ours: nobody else writes these repositories),
        half-written objects and packs, and work-tree files of the old layout. Our commits are
        written object by object and published by one rename of ``refs/heads/main``, so a kill
        leaves at worst unreachable objects, never a half commit (``git gc`` prunes them after
        two weeks; ``policy-archive verify --repair`` at once).
        Returns what it cleaned, for the log.
        """
        gitdir = Path(path) / ".git"
        cleaned: list[str] = []
        if not gitdir.is_dir():
            return cleaned
        for lock in sorted(gitdir.rglob("*.lock")):  # config, index, HEAD, refs, packed-refs
            if lock.is_file() and "objects" not in lock.relative_to(gitdir).parts:
                lock.unlink()
                cleaned.append(f"removed stale lock {lock}")
        objects = gitdir / "objects"
        for tmp in [*objects.glob("??/tmp_obj_*"), *objects.glob("pack/tmp_*")]:
            tmp.unlink(missing_ok=True)
            cleaned.append(f"removed half-written object {tmp}")
        for tmp in Path(path).rglob(".tmp-*"):
            if ".git" not in tmp.relative_to(path).parts:
                tmp.unlink()
                cleaned.append(f"removed half-written file {tmp}")
        return cleaned

    def recover(self) -> list[str]:
        with self._lock:
            self._tree = None
            return self.recover_path(self.path)

    def _loaded_tree(self) -> Tree:
        """HEAD's tree in memory (loaded once; reloaded if HEAD moved under us)."""
        head = self.head()
        if self._tree is None or self._tree.head != head:
            self._tree = Tree.load(self, head)
        return self._tree

    def blob_at_head(self, path: str) -> str | None:
        """The blob id of ``path`` in HEAD's tree (from memory: no process, no file read)."""
        with self._lock:
            return self._loaded_tree().blob(path)

    def files_at_head(self, folder: str) -> dict[str, str]:
        """``{name: blob id}`` of the files directly in ``folder`` in HEAD's tree."""
        with self._lock:
            return self._loaded_tree().files(folder)

    def write_object(self, kind: bytes, body: bytes) -> str:
        """Store one git object as a loose object file (atomically: temp file, then rename)."""
        header = b"%s %d\0" % (kind, len(body))
        digest = hashlib.sha1(header, usedforsecurity=False)
        digest.update(body)
        sha = digest.hexdigest()
        folder = f"{self._objects}/{sha[:2]}"
        target = f"{folder}/{sha[2:]}"
        if os.path.exists(target):
            return sha
        if sha[:2] not in self._folders:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
            self._folders.add(sha[:2])
        # Level 1 (git's core.looseCompression). Trees are mostly object ids, which do not
        # compress, and a folder of 10,000 services is a 460 KB tree rewritten by every
        # commit: large ones are stored uncompressed, and packing stores them as deltas.
        level = 0 if kind == b"tree" and len(body) > _COMPRESS_TREES_BELOW else 1
        compressor = zlib.compressobj(level)
        data = compressor.compress(header) + compressor.compress(body) + compressor.flush()
        tmp = f"{folder}/tmp_obj_{os.getpid()}_{threading.get_ident()}"  # noqa: S108
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        except FileNotFoundError:  # the folder was emptied and removed by a pack
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        self._written += 1
        self._written_bytes += len(data)
        return sha

    def commit_files(
        self,
        files: Mapping[str, bytes],
        subject: str,
        trailers: Iterable[tuple[str, str]],
        when: datetime,
        *,
        remove: Iterable[str] = (),
    ) -> str | None:
        """Commit ``files`` (relative path → bytes), dated ``when``, on top of HEAD.

        Returns the new commit id, or None when the result would be the parent's tree (a
        commit that changes nothing is never written). The branch moves by compare-and-swap:
        if another writer moved it since we read it, nothing is published.
        """
        message = format_message(subject, trailers).encode("utf-8")
        with self._lock:
            tree = self._loaded_tree()
            parent = tree.head
            try:
                root = tree.apply(
                    {p: self.write_object(b"blob", d) for p, d in files.items()},
                    remove,
                    self.write_object,
                )
                if root == tree.parent_root:
                    return None
                who = f"{COMMITTER_NAME} <{COMMITTER_EMAIL}> {git_date(when)}".encode()
                body = b"tree " + root.encode() + b"\n"
                if parent:
                    body += b"parent " + parent.encode() + b"\n"
                body += b"author " + who + b"\ncommitter " + who + b"\n\n" + message
                sha = self.write_object(b"commit", body)
                self._update_ref(sha, parent)
            except BaseException:
                self._tree = None  # the in-memory tree may be ahead of HEAD: reload it
                raise
            tree.commit(sha, root)
            return sha

    def _update_ref(self, new: str, old: str | None) -> None:
        """Move ``refs/heads/main`` from ``old`` to ``new`` the way git does: an exclusive
        ``main.lock`` file, a check that the ref still holds ``old``, then a rename."""
        ref = self.gitdir / "refs" / "heads" / BRANCH
        ref.parent.mkdir(parents=True, exist_ok=True)
        lock = ref.with_name(BRANCH + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise StoreError(
                f"{lock} exists: another git process is writing {self.path} (if none is, "
                "the next policy-archive command removes it)"
            ) from None
        try:
            if self.head() != old:
                raise StoreError(
                    f"the branch of {self.path} moved while a commit was being written "
                    "(another writer?); nothing was recorded"
                )
            os.write(fd, new.encode("ascii") + b"\n")
            os.close(fd)
            fd = -1
            os.replace(lock, ref)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ upkeep

    def count_loose_objects(self) -> int:
        """Loose objects in the repository (what ``git count-objects`` counts)."""
        objects = self.gitdir / "objects"
        count = 0
        for folder in objects.glob("??"):
            with os.scandir(folder) as entries:
                count += sum(1 for e in entries if not e.name.startswith("tmp_"))
        return count

    def maybe_pack(self, threshold: int = GC_AUTO_THRESHOLD) -> bool:
        """Pack loose objects once there are more than git's own ``gc.auto`` threshold, or once
        this process wrote more than :data:`PACK_AFTER_BYTES` of them (the root tree of a large
        archive is rewritten by every commit). Cheap to call after every write. Packing is
        upkeep: a failure (a full disk) is logged and retried later, never the writer's error,
        since the commit before it is already safe."""
        with self._lock:
            if self._written_bytes < PACK_AFTER_BYTES:
                if self._written < threshold // 4:
                    return False
                if self.count_loose_objects() <= threshold:
                    self._written = 0
                    return False
            try:
                self.pack()
            except StoreError as exc:
                log.warning("%s", exc)
                self._written = self._written_bytes = 0  # try again after as many writes
                return False
            return True

    def pack(self) -> None:
        """Move loose objects into a new pack, as deltas of each other (a root tree that
        differs from the previous one by one entry costs a few bytes), drop the loose copies;
        past :data:`MAX_PACKS` packs, merge them into one (reusing their deltas)."""
        with self._lock:
            try:
                self.repo.git.repack("-d", "-q", "--window=4", "--depth=50")
                if len(list((self.gitdir / "objects" / "pack").glob("*.pack"))) > MAX_PACKS:
                    self.repo.git.repack("-a", "-d", "-q")
                self.repo.git.prune_packed("-q")
            except git.GitCommandError as exc:
                raise StoreError(
                    f"packing {self.path} failed ({_git_error(exc)}); the archive is intact: "
                    "free disk space, then run `policy-archive verify --repair`"
                ) from None
            finally:
                self._folders.clear()
            self._written = self._written_bytes = 0

    def gc(self) -> None:
        with self._lock:
            try:
                self.repo.git.gc("--quiet")
            except git.GitCommandError as exc:
                raise StoreError(
                    f"git gc of {self.path} failed ({_git_error(exc)}); the archive is intact: "
                    "free disk space and it runs again on schedule"
                ) from None
            finally:
                self._folders.clear()
            self._written = self._written_bytes = 0

    def fsck(self) -> str:
        with self._lock:
            try:
                return self.repo.git.fsck("--no-progress", "--strict")
            except git.GitCommandError as exc:
                found = "\n".join(p for p in (exc.stdout, exc.stderr) if p and p.strip())
                raise StoreError(f"git fsck found problems in {self.path}: {found}") from None

    # ------------------------------------------------------------------ integrity

    def fsck_report(self) -> integrity.FsckReport:
        """``git fsck --strict``, every line sorted into problems and harmless ones (never
        raises for what it finds; see :func:`store.integrity.fsck`)."""
        return integrity.fsck(self.path)

    def empty_commits(self) -> list[str]:
        """Commits on main, oldest first, whose tree equals their parent's."""
        return integrity.empty_commits(self.path)

    def repair(self) -> list[str]:
        """Remove what a killed writer left (unreachable objects, stale temporary files); one
        line per thing done. Call only as the writer (see :func:`store.integrity.repair`)."""
        with self._lock:
            try:
                return integrity.repair(self.path)
            finally:
                self._folders.clear()  # prune may remove emptied objects/xx folders

    def close(self) -> None:
        with self._lock:
            self.repo.close()


def _git_error(exc: git.GitCommandError) -> str:
    text = " ".join(str(exc.stderr or exc.stdout or exc).split())
    return text.removeprefix("stderr: ").strip("'") or f"exit code {exc.status}"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class GitStore:
    """What the versions and snapshots stores share: one :class:`GitRepo`, its lifetime,
    upkeep (packing, gc) and integrity checks, so that nothing above ``store`` reaches for git.
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.git = GitRepo(path, create=create)

    @property
    def path(self) -> Path:
        return self.git.path

    def head(self) -> str | None:
        """The newest commit id (an opaque version or snapshot id), None when empty."""
        return self.git.head()

    def close(self) -> None:
        self.git.close()

    def count_loose_objects(self) -> int:
        return self.git.count_loose_objects()

    def pack(self) -> None:
        self.git.pack()

    def gc(self) -> None:
        self.git.gc()

    def fsck_report(self) -> integrity.FsckReport:
        return self.git.fsck_report()

    def empty_commits(self) -> list[str]:
        return self.git.empty_commits()

    def repair(self) -> list[str]:
        return self.git.repair()
