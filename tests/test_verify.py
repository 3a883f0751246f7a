"""``policy-archive verify``: fsck of both repositories, snapshot links, index against git."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.app import Archive
from archive.cli import main
from archive.research.verify import verify
from store.snapshots import Page
from store.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.conftest import seed_text

URL = "https://workoptima.example/privacy"
TEXT = seed_text("workoptima-privacy-policy.txt")
ESTONIAN = seed_text("backoffice-ee-uldtingimused-et.txt")


def record(
    archive: Archive,
    service: str,
    type_: str,
    text: str,
    when: str,
    kind: str,
    snapshot: str | None = "fetch",
) -> str:
    date = datetime.fromisoformat(when)
    if snapshot == "fetch":
        snapshot = archive.snapshots.record(
            service, type_, [Page(URL, f"<main>{text}</main>".encode(), "text/html")], date
        )
    return archive.versions.record(
        NewVersion(
            service=service,
            type=type_,
            text=text,
            date=date,
            kind=kind,
            urls=(URL,),
            snapshot=snapshot,
        )
    ).id


@pytest.fixture
def tracked(archive: Archive) -> Archive:
    record(archive, "WorkOptima", "Privacy Policy", TEXT, "2023-01-02T03:04:05+00:00", FIRST_RECORD)
    record(
        archive,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nMore.\n",
        "2023-06-02T03:04:05+00:00",
        CHANGE,
    )
    record(
        archive,
        "Backoffice.ee",
        "General Terms",
        ESTONIAN,
        "2023-02-01T00:00:00+00:00",
        FIRST_RECORD,
    )
    record(
        archive,
        "Imported",
        "Terms",
        "Imported text.\n",
        "2020-01-01T00:00:00+00:00",
        FIRST_RECORD,
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
        "snapshot links",
        "search index",
    ]
    links = by_name(report, "snapshot links")
    assert links.summary == "4 versions: 3 resolve to their snapshot, 1 have none (bulk imports)"
    assert report.lines()[-1] == "Archive verified: no problems found."


def test_broken_snapshot_links_are_listed(tracked: Archive):
    other = tracked.snapshots.latest_id("Backoffice.ee", "General Terms")
    wrong = record(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nWrong page.\n",
        "2023-07-01T00:00:00+00:00",
        CHANGE,
        snapshot=other,
    )
    lost = record(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nLost.\n",
        "2023-08-01T00:00:00+00:00",
        CHANGE,
        snapshot="ab" * 20,
    )
    garbled = record(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nGarbled.\n",
        "2023-09-01T00:00:00+00:00",
        CHANGE,
        snapshot="see the archive",
    )
    tracked.catch_up()
    report = verify(tracked)
    assert not report.ok
    links = by_name(report, "snapshot links")
    assert links.problem_count == 3
    assert links.problems == [
        f"WorkOptima / Privacy Policy version {wrong[:12]}: snapshot {other[:12]} is not a "
        "snapshot of this policy",
        f"WorkOptima / Privacy Policy version {lost[:12]}: snapshot {'ab' * 6} is not in the "
        "snapshots repository",
        f"WorkOptima / Privacy Policy version {garbled[:12]}: Snapshot trailer 'see the "
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
    assert str(snapshots) in fsck.problems[0]
    assert by_name(report, "git fsck of the versions repository").ok


def test_an_index_behind_git_is_reported(tracked: Archive):
    record(
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
    good = CliRunner().invoke(main, ["--config", str(config), "verify"])
    assert good.exit_code == 0, good.output
    assert "[ok] snapshot links" in good.output and "no problems found" in good.output

    record(
        tracked,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nLost.\n",
        "2023-08-01T00:00:00+00:00",
        CHANGE,
        snapshot="cd" * 20,
    )
    tracked.catch_up()
    bad = CliRunner().invoke(main, ["--config", str(config), "verify"])
    assert bad.exit_code == 1
    assert "[FAIL] snapshot links" in bad.output and "not in the snapshots repository" in bad.output
