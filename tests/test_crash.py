"""A writer killed with SIGKILL mid-commit leaves an archive the next start can use: no damage,
no empty commit, and garbage that ``verify --repair`` removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.fetch import Fetcher
from archive.research.verify import repair
from archive.tracking.pipeline import Pipeline
from store.errors import WriterLockedError
from store.git.integrity import empty_commits, fsck
from tests.conftest import REPO, seed_text
from tests.pages import policy_page

WRITER = """
import sys, itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from store.git.versions import VersionStore, NewVersion
from store.git.snapshots import SnapshotStore, Page
from store.lock import WriterLock
data = Path(sys.argv[1])
WriterLock(data).acquire()
versions, snaps = VersionStore(data / "archive"), SnapshotStore(data / "snapshots")
start = datetime(2025, 1, 1, tzinfo=UTC)
print("ready", flush=True)
for i in itertools.count():
    when = start + timedelta(minutes=i)
    snap = snaps.record("WorkOptima", "Privacy Policy", [Page("http://x/", b"v%d" % i * 500,
                        "text/html")], when)
    versions.record(NewVersion("WorkOptima", "Privacy Policy", "text %d\\n" % i * 300, when,
                               "change", ("http://x/",), snap))
"""


def wait_for_commits(repo, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-list", "--count", "main"], capture_output=True, text=True
        )
        if done.returncode == 0 and int(done.stdout) >= count:
            return
    raise AssertionError(f"the writer made fewer than {count} commits in {timeout}s")


def open_when_unlocked(config, timeout: float = 10.0) -> Archive:
    """A git child forked just before the kill may hold the lock until it execs: wait."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Archive.open(config, writer=True, listeners=LISTENERS)
        except WriterLockedError:
            if time.monotonic() > deadline:
                raise


def test_kill_during_commits_then_restart_and_check(make_config, fixture_server):
    fixture_server.set("/p", policy_page("WorkOptima", seed_text("workoptima-privacy-policy.txt")))
    config = make_config(
        [
            {
                "service": "WorkOptima",
                "type": "Privacy Policy",
                "url": fixture_server.url("/p"),
                "select": "main",
            }
        ]
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True):
        pass
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for commits in (3, 10, 25):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(config.data_dir)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        wait_for_commits(config.data_dir / "archive", commits)
        proc.send_signal(signal.SIGKILL)  # lands wherever the writer is: often mid-commit
        proc.wait()
        proc.stdout.close()
        with open_when_unlocked(config) as archive:
            for path in (archive.versions.path, archive.snapshots.path):
                # at worst a commit written but never put on main: garbage, not damage
                damage = [p for p in fsck(path).problems if not p.startswith("dangling commit ")]
                assert damage == [], f"{path}: {damage}"
                assert empty_commits(path) == []
            count = len(archive.versions.history("WorkOptima", "Privacy Policy"))
            assert count > 0
    with open_when_unlocked(config) as archive:
        repair(archive)  # what `verify --repair` does: the kills' garbage goes
        for path in (archive.versions.path, archive.snapshots.path):
            assert fsck(path).problems == [], path
        assert len(archive.versions.history("WorkOptima", "Privacy Policy")) == count
    with (
        Archive.open(config, writer=True, listeners=LISTENERS) as archive,
        Fetcher(config.fetch) as fetcher,
    ):
        result = Pipeline(archive, fetcher).track(config.policies[0])
        assert result.status == "changed", result.reason
        assert archive.versions.current_text("WorkOptima", "Privacy Policy").startswith(
            "# Privacy Policy"
        )
