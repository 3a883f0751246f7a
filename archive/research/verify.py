"""``policy-archive verify``: is the archive whole, and does every version lead to its sources?

Six checks, each reported with what it looked at and every problem found:

1. ``git fsck --strict`` of the versions repository: any unparsable, missing or broken object
   and any dangling commit (a commit a killed writer wrote but never put on ``main``) is a
   problem; dangling blobs and trees are counted as harmless;
2. the same for the snapshots repository;
3. no commit on the versions ``main`` has the same tree as its parent (an empty commit);
4. the same for the snapshots repository;
5. every version's ``Snapshot`` trailer names a commit of the snapshots repository that holds
   a page of that policy (versions without one, e.g. bulk imports, are counted, not faulted);
6. the search index is caught up with git (it has indexed up to the versions HEAD, and holds
   as many versions and policies as git).

:func:`repair` (``verify --repair``) removes the garbage a killed writer leaves (unreachable
objects, stale temporary files); it never rewrites history, so empty commits stay reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archive.app import Archive
from store.git.snapshots import SnapshotStore
from store.git.versions import Version, VersionStore
from store.index import IndexDamagedError
from store.paths import safe_component

Repository = VersionStore | SnapshotStore

MAX_LISTED = 50
"""Problems listed one by one per check; the rest are counted."""
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.ok = False
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


@dataclass
class VerifyReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        """The report as text, one check per paragraph."""
        out = []
        for check in self.checks:
            out.append(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.summary}")
            out += [f"    - {p}" for p in check.problems]
            hidden = check.problem_count - len(check.problems)
            if hidden > 0:
                out.append(f"    … and {hidden} more")
        problems = sum(c.problem_count for c in self.checks)
        out.append(
            "Archive verified: no problems found."
            if self.ok
            else f"Archive NOT verified: {problems} problem(s)."
        )
        return out


def verify(archive: Archive) -> VerifyReport:
    """Run every check; never stops at the first problem."""
    repos: tuple[tuple[str, Repository], ...] = (
        ("versions repository", archive.versions),
        ("snapshots repository", archive.snapshots),
    )
    return VerifyReport(
        checks=[
            *(check_fsck(name, repo) for name, repo in repos),
            *(check_empty_commits(name, repo) for name, repo in repos),
            check_snapshot_links(archive),
            check_index(archive),
        ]
    )


def repair(archive: Archive) -> list[str]:
    """Remove what a killed writer left in both repositories; one line per thing done.

    ``archive`` must be open as the writer (``prune`` must not race a commit).
    """
    if not archive.writer:
        raise ValueError("repair needs the archive opened as the writer")
    return [*archive.versions.repair(), *archive.snapshots.repair()]


def check_fsck(name: str, repo: Repository) -> Check:
    path, report = repo.path, repo.fsck_report()
    check = Check(f"git fsck of the {name}", ok=True, summary=f"{path}: no problems")
    for line in report.problems:
        check.problem(line)
    dangling_commits = sum(1 for p in report.problems if p.startswith("dangling commit "))
    if not report.ok:
        check.summary = f"{path}: {len(report.problems)} problem(s)"
        if dangling_commits == len(report.problems):
            check.summary += (
                " (commits an interrupted write left off main: "
                "`policy-archive verify --repair` removes them)"
            )
    elif report.harmless:
        check.summary += f" ({len(report.harmless)} dangling objects, harmless)"
    return check


def check_empty_commits(name: str, repo: Repository) -> Check:
    """Commits whose tree equals their parent's record nothing: reported, never rewritten."""
    path, empty = repo.path, repo.empty_commits()
    check = Check(f"empty commits in the {name}", ok=True, summary=f"{path}: none")
    for sha in empty:
        check.problem(f"commit {sha[:12]} has the same tree as its parent")
    if empty:
        check.summary = (
            f"{path}: {len(empty)} commit(s) that change nothing. They lose no text, and "
            "policy-archive never rewrites history; to drop them, stop every writer, back up "
            f"the repository, run `git -C '{path}' filter-branch --prune-empty -- main`, then "
            "`policy-archive reindex` (every later commit id changes: clones must re-clone"
            + (
                ", and versions' Snapshot trailers would no longer resolve: better keep them)"
                if name.startswith("snapshots")
                else ")"
            )
        )
    return check


def _is_page_of(path: str, version: Version) -> bool:
    """Whether ``path`` in the snapshots repository is a page of ``version``'s policy."""
    base = f"{safe_component(version.service)}/{safe_component(version.type)}"
    return path.rsplit(".", 1)[0] == base or path.startswith(base + " #")


def check_snapshot_links(archive: Archive) -> Check:
    """Every ``Snapshot`` trailer resolves to a snapshot of the same policy."""
    check = Check("snapshot links", ok=True, summary="")
    snapshots = archive.snapshots.files_by_snapshot()
    versions = archive.versions.log()
    linked = unlinked = 0
    for version in versions:
        ref = version.snapshot
        label = f"{version.service} / {version.type} version {version.id[:12]}"
        if not ref:
            unlinked += 1
            continue
        if not _FULL_SHA.match(ref):
            check.problem(f"{label}: Snapshot trailer {ref[:60]!r} is not a commit id")
            continue
        paths = snapshots.get(ref)
        if paths is None:
            check.problem(f"{label}: snapshot {ref[:12]} is not in the snapshots repository")
            continue
        if not any(_is_page_of(p, version) for p in paths):
            # Snapshots are committed only when a page changes, and a version names the
            # commit that last wrote its pages: a commit that wrote none is someone else's.
            check.problem(f"{label}: snapshot {ref[:12]} is not a snapshot of this policy")
            continue
        linked += 1
    check.summary = (
        f"{len(versions)} versions: {linked} resolve to their snapshot, "
        f"{unlinked} have none (bulk imports)"
        + (f", {check.problem_count} broken" if check.problem_count else "")
    )
    return check


def check_index(archive: Archive) -> Check:
    """The search index has caught up with git: same HEAD, same policies, one entry per version."""
    head = archive.versions.head()
    versions = len(archive.versions.log())
    policies = len(archive.versions.policies())
    check = Check("search index", ok=True, summary="")
    fix = "run `policy-archive reindex`"
    try:
        stats = archive.index.stats()
    except IndexDamagedError as exc:  # the other checks still run
        check.problem(str(exc))
        check.summary = "damaged"
        return check
    if stats.head != head:
        check.problem(
            f"the index stops at commit {stats.head[:12] if stats.head else '(none)'} but git "
            f"is at {head[:12] if head else '(none)'}: {fix}"
        )
    elif (stats.versions, stats.policies) != (versions, policies):
        check.problem(
            f"the index holds {stats.versions} versions of {stats.policies} policies, git "
            f"{versions} of {policies}: {fix}"
        )
    if check.ok:
        check.summary = (
            f"{versions} versions of {policies} policies, up to {head[:12]}"
            if head
            else "empty archive, empty index"
        )
    else:
        check.summary = "out of step with git"
    return check
