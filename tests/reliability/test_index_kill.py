"""A SIGKILL while the search index is being written never leaves it out of step with git: the
next ``check`` catches up to exactly git's versions, each once, and ``verify`` passes. Real
``policy-archive`` processes against a real HTTP fixture site, killed the moment (or a few
milliseconds after) the index folder shows a writer's first file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixture_server import FixtureServer
from tests.reliability.harness import (
    Site,
    run_cli,
    start_cli,
    wait_for_writer_lock_free,
)

AFTER = (0.0, 0.003, 0.01, 0.03)
"""Seconds between the writer's first file and the kill: its start, postings, segment, TOC."""
POLL = 0.0005
DEADLINE = 60.0


def index_entries(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def kill_when_written(
    proc: subprocess.Popen[str], folder: Path, after: float, prefix: str = ""
) -> bool:
    """SIGKILL ``proc``'s group ``after`` seconds after a new entry named ``prefix…`` shows in
    ``folder`` (in the index folder: a writer's temporary folder or segment; beside it: a
    rebuild's folder). False if it ended first."""
    before = index_entries(folder)
    deadline = time.monotonic() + DEADLINE
    while proc.poll() is None and time.monotonic() < deadline:
        if any(name.startswith(prefix) for name in index_entries(folder) - before):
            if after:
                time.sleep(after)
            if proc.poll() is not None:
                return False
            os.killpg(proc.pid, signal.SIGKILL)
            return True
        time.sleep(POLL)
    return False


def assert_index_verified(config: Path) -> None:
    verified = run_cli(config, "verify")
    index_line = next((line for line in verified.stdout.splitlines() if "search index" in line), "")
    assert index_line.startswith("[ok]"), verified.describe()
    assert verified.returncode == 0, verified.describe()


def killed_run(
    config: Path, data: Path, after: float, args: tuple[str, ...], prefix: str = ""
) -> bool:
    """Run ``policy-archive ARGS``, killed while it writes the index (``prefix``: a rebuild's
    folder beside it); whether the kill landed."""
    proc = start_cli(config, *args)
    folder = data if prefix else data / "index"
    killed = kill_when_written(proc, folder, after, prefix)
    proc.communicate(timeout=DEADLINE)
    wait_for_writer_lock_free(data)
    return killed and proc.returncode == -signal.SIGKILL


@pytest.fixture
def site_archive(tmp_path: Path, fixture_server: FixtureServer) -> tuple[Site, Path, Path]:
    """A site of three policies and an archive that has recorded them once."""
    site = Site(fixture_server, 3)
    data, config = tmp_path / "data", tmp_path / "config.toml"
    config.write_text(site.config_toml(data), encoding="utf-8")
    site.change(site.policies)
    for args in (("init",), ("check", "--no-alerts")):
        result = run_cli(config, *args)
        assert result.returncode == 0 and not result.traceback, result.describe()
    return site, data, config


@pytest.mark.slow
def test_a_check_killed_while_it_writes_the_index_is_caught_up_exactly(site_archive) -> None:
    site, data, config = site_archive
    kills = 0
    for n, after in enumerate(AFTER):
        site.change(site.policies if n % 2 else site.policies[:2])
        kills += killed_run(config, data, after, ("check", "--no-alerts"))
        recovery = run_cli(config, "check", "--no-alerts")
        assert recovery.returncode == 0 and not recovery.traceback, recovery.describe()
        assert "more than once" not in recovery.stderr, recovery.describe()
        assert_index_verified(config)
    assert kills >= len(AFTER) // 2, f"only {kills} of {len(AFTER)} checks were killed"


@pytest.mark.slow
def test_a_reindex_killed_while_it_builds_is_caught_up_exactly(site_archive) -> None:
    site, data, config = site_archive
    kills = 0
    for n, after in enumerate(AFTER):
        site.change(site.policies[: 1 + n % 3])
        recorded = run_cli(config, "check", "--no-alerts")
        assert recorded.returncode == 0, recorded.describe()
        reindex = ("reindex", "--processes", "1")
        kills += killed_run(config, data, after, reindex, prefix="index.new-")
        site.change(site.policies[:1])  # and one more version for the catch-up to add
        recovery = run_cli(config, "check", "--no-alerts")
        assert recovery.returncode == 0 and not recovery.traceback, recovery.describe()
        assert_index_verified(config)
    assert kills >= len(AFTER) // 2, f"only {kills} of {len(AFTER)} reindexes were killed"
