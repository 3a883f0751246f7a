"""Integrity of an archive repository: empty commits, ``git fsck --strict``, and crash garbage.

Functions take a repository's path (the folder holding its ``.git``, bare or not) and run git
as a process. They
back ``policy-archive verify`` and ``verify --repair``; none of them rewrites history.

What a writer killed mid-commit can leave (ours is the only writer of these repositories):
loose objects that no ref reaches (a commit written but never put on ``main``, sometimes a
half-written, unparsable one), git's temporary files (``objects/??/tmp_obj_*``,
``objects/pack/tmp_pack_*``, ``tmp_idx_*``...) and GitPython's (``objects/obj????????``).
:func:`repair` removes exactly those.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from store.errors import StoreError

BRANCH = "main"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
HARMLESS_DANGLING = ("dangling blob ", "dangling tree ", "dangling tag ")
"""Unreachable objects that hold no history of their own; only commits matter."""
_GITPYTHON_TMP = re.compile(r"^obj[A-Za-z0-9_]{8}$")
"""``tempfile.mkstemp(prefix="obj")`` in gitdb's loose object database."""


@dataclass
class FsckReport:
    """``git fsck --strict`` of one repository, sorted into problems and harmless lines."""

    problems: list[str] = field(default_factory=list)
    """Every line that means damage: unparsable, missing or broken objects, dangling commits."""
    harmless: list[str] = field(default_factory=list)
    """Dangling blobs and trees (content of an interrupted write; no history is lost)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _git(repo_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["git", f"--git-dir={Path(repo_path) / '.git'}", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as exc:
        raise StoreError(f"cannot run git in {repo_path}: {exc}") from None
    if check and done.returncode != 0:
        raise StoreError(
            f"git {args[0]} failed in {repo_path}: {(done.stderr or done.stdout).strip()}"
        )
    return done


def _has_commits(repo_path: Path) -> bool:
    found = _git(repo_path, "rev-parse", "-q", "--verify", f"{BRANCH}^{{commit}}", check=False)
    return found.returncode == 0


def empty_commits(repo_path: Path) -> list[str]:
    """Commits on ``main``, oldest first, whose tree equals their parent's (a root commit:
    the empty tree). Merge commits are never ours and are not counted."""
    if not _has_commits(repo_path):
        return []
    out = _git(repo_path, "log", "--reverse", "--format=%H %T %P", BRANCH).stdout
    trees: dict[str, str] = {}
    empty = []
    for line in out.splitlines():
        sha, tree, *parents = line.split()
        trees[sha] = tree
        if len(parents) > 1:
            continue
        # oldest first: a parent's line always comes before its child's
        if tree == (trees.get(parents[0]) if parents else EMPTY_TREE):
            empty.append(sha)
    return empty


def fsck(repo_path: Path) -> FsckReport:
    """``git fsck --strict`` of the repository, every line sorted (nothing is raised)."""
    done = _git(repo_path, "fsck", "--strict", "--no-progress", check=False)
    report = FsckReport()
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        line = line.strip()
        if not line or line.startswith("notice:"):
            continue
        if line.startswith(HARMLESS_DANGLING):
            report.harmless.append(line)
        else:
            report.problems.append(line)
    if done.returncode != 0 and not report.problems and not report.harmless:
        report.problems.append(f"git fsck exited with code {done.returncode}")
    return report


def stale_temporary_files(repo_path: Path) -> list[Path]:
    """Temporary files that git or GitPython write in ``.git/objects`` and rename when done:
    any still there were left by a process that died. Call only holding the writer lock."""
    objects = Path(repo_path) / ".git" / "objects"
    if not objects.is_dir():
        return []
    found = [p for p in objects.iterdir() if p.is_file() and _GITPYTHON_TMP.match(p.name)]
    found += [p for p in objects.glob("??/tmp_*") if p.is_file()]
    found += [p for p in objects.glob("pack/tmp_*") if p.is_file()]
    found += [p for p in objects.glob("pack/.tmp-*") if p.is_file()]
    return sorted(found)


def repair(repo_path: Path) -> list[str]:
    """Remove the garbage a killed writer leaves; return one line per thing done.

    Drops reflog entries that no longer lead to ``main`` (``git reflog expire
    --expire-unreachable=now``), removes every unreachable loose object (``git prune
    --expire=now``: dangling commits, unparsable ones, orphaned blobs and trees) and stale
    temporary files. Never touches a commit on ``main``. Call only holding the writer lock:
    ``prune --expire=now`` would delete the objects of a commit being written.
    """
    repo_path = Path(repo_path)
    done = []
    for tmp in stale_temporary_files(repo_path):
        tmp.unlink(missing_ok=True)
        done.append(f"removed stale temporary file {tmp}")
    _git(repo_path, "reflog", "expire", "--expire-unreachable=now", "--all")
    pruned = _git(repo_path, "prune", "--expire=now", "-v").stdout.split("\n")
    removed: dict[str, list[str]] = {}
    for line in pruned:
        sha, _, kind = line.strip().partition(" ")
        if kind:
            removed.setdefault(kind, []).append(sha)
    for kind, shas in sorted(removed.items()):
        listed = ", ".join(s[:12] for s in shas[:10]) + (" …" if len(shas) > 10 else "")
        done.append(f"removed {len(shas)} unreachable {kind} object(s) from {repo_path}: {listed}")
    return done
