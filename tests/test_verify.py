"""``policy-archive verify``: fsck of both repositories, snapshot links, index against git."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.app import Archive
from archive.research.verify import repair, verify
from store.git.versions import CHANGE, FIRST_RECORD
from tests.conftest import seed_text
from tests.reliability.harness import git as harness_git
from tests.reliability.harness import run_cli
from tests.support import URL, Cli, record_fetched, record_version

TEXT = seed_text("workoptima-privacy-policy.txt")
ESTONIAN = seed_text("backoffice-ee-uldtingimused-et.txt")


@pytest.fixture
def tracked(archive: Archive) -> Archive:
    record_fetched(
        archive, "WorkOptima", "Privacy Policy", TEXT, "2023-01-02T03:04:05+00:00", FIRST_RECORD
    )
    record_fetched(
        archive,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nMore.\n",
        "2023-06-02T03:04:05+00:00",
        CHANGE,
    )
    record_fetched(
        archive,
        "Backoffice.ee",
        "General Terms",
        ESTONIAN,
        "2023-02-01T00:00:00+00:00",
        FIRST_RECORD,
    )
    record_version(
        archive,
        "Imported",
        "Terms",
        "Imported text.\n",
        "2020-01-01T00:00:00+00:00",
        FIRST_RECORD,
        urls=(URL,),
        snapshot=None,
    )
    archive.catch_up()
    return archive


def by_name(report, name: str):
    return next(c for c in report.checks if c.name == name)


def test_a_whole_archive_verifies(tracked: Archive):
    report = verify(tracked)
    assert report.ok, report.lines()
    assert [c.name for c in report.checks] == [
        "git fsck of the versions repository",
        "git fsck of the snapshots repository",
        "empty commits in the versions repository",
        "empty commits in the snapshots repository",
        "snapshot links",
        "search index",
    ]
    links = by_name(report, "snapshot links")
    assert links.summary == "4 versions: 3 resolve to their snapshot, 1 have none (bulk imports)"
    assert report.lines()[-1] == "Archive verified: no problems found."


def test_broken_snapshot_links_are_listed(tracked: Archive):
    other = tracked.snapshots.latest_id("Backoffice.ee", "General Terms")
    wrong = record_version(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nWrong page.\n",
        "2023-07-01T00:00:00+00:00",
        CHANGE,
        urls=(URL,),
        snapshot=other,
    )
    lost = record_version(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nLost.\n",
        "2023-08-01T00:00:00+00:00",
        CHANGE,
        urls=(URL,),
        snapshot="ab" * 20,
    )
    garbled = record_version(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nGarbled.\n",
        "2023-09-01T00:00:00+00:00",
        CHANGE,
        urls=(URL,),
        snapshot="see the archive",
    )
    tracked.catch_up()
    report = verify(tracked)
    assert not report.ok
    links = by_name(report, "snapshot links")
    assert links.problem_count == 3
    assert links.problems == [
        f"WorkOptima / Privacy Policy version {wrong.id[:12]}: snapshot {other[:12]} is not a "
        "snapshot of this policy",
        f"WorkOptima / Privacy Policy version {lost.id[:12]}: snapshot {'ab' * 6} is not in the "
        "snapshots repository",
        f"WorkOptima / Privacy Policy version {garbled.id[:12]}: Snapshot trailer 'see the "
        "archive' is not a commit id",
    ]
    assert by_name(report, "git fsck of the versions repository").ok
    assert "[FAIL] snapshot links: 7 versions: 3 resolve to their snapshot" in "\n".join(
        report.lines()
    )
    assert report.lines()[-1].startswith("Archive NOT verified: ")


def test_a_damaged_repository_fails_fsck(tracked: Archive):
    snapshots = tracked.snapshots.path
    blob = tracked.snapshots.git.repo.git.rev_parse("main:Backoffice.ee/General Terms.html")
    loose = snapshots / ".git" / "objects" / blob[:2] / blob[2:]
    assert loose.is_file()
    loose.chmod(0o644)
    loose.unlink()
    report = verify(tracked)
    fsck = by_name(report, "git fsck of the snapshots repository")
    assert not fsck.ok
    assert str(snapshots) in fsck.summary
    assert any(blob in p and "missing" in p for p in fsck.problems), fsck.problems
    assert by_name(report, "git fsck of the versions repository").ok


def test_an_index_behind_git_is_reported(tracked: Archive):
    record_fetched(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nNewer.\n",
        "2024-01-01T00:00:00+00:00",
        CHANGE,
    )  # committed, not yet indexed
    index = by_name(verify(tracked), "search index")
    assert not index.ok and "policy-archive reindex" in index.problems[0]
    tracked.catch_up()
    assert by_name(verify(tracked), "search index").ok


def test_cli_verify_prints_the_report_and_sets_the_exit_code(tracked: Archive):
    config = Path(tracked.config.data_dir).parent / "config.toml"
    config.write_text(f'data_dir = "{tracked.config.data_dir}"\n', encoding="utf-8")
    good = Cli(config)("verify")
    assert "[ok] snapshot links" in good.output and "no problems found" in good.output

    record_version(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nLost.\n",
        "2023-08-01T00:00:00+00:00",
        CHANGE,
        urls=(URL,),
        snapshot="cd" * 20,
    )
    tracked.catch_up()
    bad = Cli(config)("verify", code=1)
    assert "[FAIL] snapshot links" in bad.output and "not in the snapshots repository" in bad.output


IDENTITY = ("-c", "user.name=Someone", "-c", "user.email=someone@example.invalid")


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return harness_git(repo, *args, stdin=stdin).strip()


def empty_commit(repo: Path) -> str:
    """Put on main a commit with its parent's tree (what the old pipeline wrote after a kill)."""
    message = "Record change to WorkOptima Privacy Policy"
    sha = git(repo, *IDENTITY, "commit-tree", "main^{tree}", "-p", "main", "-m", message)
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


def test_an_empty_commit_is_reported_and_never_rewritten(tracked: Archive):
    repo = tracked.versions.path
    empty = empty_commit(repo)
    later = empty_commit(repo)
    tracked.catch_up()
    report = verify(tracked)
    check = by_name(report, "empty commits in the versions repository")
    assert not check.ok
    assert check.problems == [
        f"commit {sha[:12]} has the same tree as its parent" for sha in (empty, later)
    ]
    assert "filter-branch --prune-empty" in check.summary and str(repo) in check.summary
    assert by_name(report, "empty commits in the snapshots repository").ok
    assert by_name(report, "git fsck of the versions repository").ok

    assert repair(tracked) == []  # nothing unreachable: the empty commits are history
    assert git(repo, "rev-parse", "main") == later
    assert not by_name(verify(tracked), "empty commits in the versions repository").ok


def test_crash_garbage_is_reported_then_removed_by_repair(tracked: Archive):
    versions, snapshots = tracked.versions.path, tracked.snapshots.path
    heads = (git(versions, "rev-parse", "main"), git(snapshots, "rev-parse", "main"))
    # what a kill leaves: a 17-byte commit object with no body, a commit never put on main,
    # an orphaned blob, and temporary files of git and of GitPython
    bogus = git(versions, "hash-object", "-t", "commit", "--literally", "-w", "/dev/null")
    tree = git(snapshots, "rev-parse", "main^{tree}")
    dangling = git(snapshots, *IDENTITY, "commit-tree", tree, "-p", "main", "-m", "never on main")
    orphan = git(snapshots, "hash-object", "-w", "--stdin", stdin="half a page\n")
    temporary = [
        versions / ".git" / "objects" / "objAbC_9xyz",
        versions / ".git" / "objects" / "pack" / "tmp_pack_Q1w2E3",
        snapshots / ".git" / "objects" / bogus[:2] / "tmp_obj_Zz9Yy8",
    ]
    for path in temporary:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x\x9c partial")

    report = verify(tracked)
    assert not report.ok
    fsck_v = by_name(report, "git fsck of the versions repository")
    assert any(f"bogus commit object {bogus}" in p for p in fsck_v.problems), fsck_v.problems
    fsck_s = by_name(report, "git fsck of the snapshots repository")
    assert fsck_s.problems == [f"dangling commit {dangling}"]
    assert "verify --repair" in fsck_s.summary

    done = repair(tracked)
    assert f"removed 1 unreachable commit object(s) from {versions}: {bogus[:12]}" in done
    assert f"removed 1 unreachable commit object(s) from {snapshots}: {dangling[:12]}" in done
    assert any(orphan[:12] in line and "blob" in line for line in done), done
    for path in temporary:
        assert f"removed stale temporary file {path}" in done
        assert not path.exists()
    assert (git(versions, "rev-parse", "main"), git(snapshots, "rev-parse", "main")) == heads
    after = verify(tracked)
    assert after.ok, after.lines()
    assert repair(tracked) == []


def test_repair_needs_the_writer(tracked: Archive):
    with Archive.open(tracked.config) as reader, pytest.raises(ValueError, match="writer"):
        repair(reader)


def test_cli_verify_repair(tracked: Archive):
    config = Path(tracked.config.data_dir).parent / "config.toml"
    config.write_text(f'data_dir = "{tracked.config.data_dir}"\n', encoding="utf-8")
    versions = tracked.versions.path
    bogus = git(versions, "hash-object", "-t", "commit", "--literally", "-w", "/dev/null")
    tracked.close()  # the CLI takes the writer lock
    bad = run_cli(config, "verify")
    assert bad.returncode == 1, bad.describe()
    assert f"bogus commit object {bogus}" in bad.stdout
    fixed = run_cli(config, "verify", "--repair")
    assert fixed.returncode == 0, fixed.describe()
    assert f"Repaired: removed 1 unreachable commit object(s) from {versions}" in fixed.stdout
    assert "Archive verified: no problems found." in fixed.stdout
    again = run_cli(config, "verify", "--repair")
    assert again.returncode == 0, again.describe()
    assert "Repaired: nothing to remove." in again.stdout
