"""A full disk under the data directory: one line per command, exit 1, nothing half-written.

The data directory is a real 2 MiB tmpfs filled to its last byte; the commands run as real
processes. After space is freed the archive checks out (``verify``) and records the change
that could not be written while the disk was full.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import seed_text
from tests.pages import policy_page

CLI = str(Path(sys.executable).with_name("policy-archive"))
WORKOPTIMA = "workoptima-privacy-policy.txt"


def policy_archive(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a small tmpfs data directory")
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30, check=True)


def fill(folder: Path) -> Path:
    """Write a filler file until the file system has not one byte left; return it."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    for n in range(10_000):  # new inodes may still fit: use them up too
        try:
            (folder / f"filler-{n}").touch()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            break
    assert os.statvfs(folder).f_bavail == 0
    return filler


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed on stderr (asserting there is only one)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


@pytest.fixture
def small_disk(tmp_path: Path, fixture_server) -> Iterator[tuple[Path, Path]]:
    """(config, data dir on a 2 MiB tmpfs) with one policy checked once; unmounted after."""
    data = tmp_path / "data"
    mount_tmpfs(data, "2m")
    try:
        fixture_server.set("/privacy", policy_page("WorkOptima", seed_text(WORKOPTIMA)))
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
data_dir = "{data}"
[fetch]
allow_private_addresses = true
per_host_delay = 0
timeout = 5
[[policy]]
service = "WorkOptima"
type = "Privacy Policy"
url = "{fixture_server.url("/privacy")}"
select = "main"
""",
            encoding="utf-8",
        )
        for command in (("init",), ("check",)):
            result = policy_archive(config, *command)
            assert result.returncode == 0, result.stderr
        yield config, data
    finally:
        unmount(data)


@pytest.mark.slow
def test_a_full_disk_gives_one_line_per_command_and_loses_nothing(small_disk, fixture_server):
    config, data = small_disk
    changed = seed_text(WORKOPTIMA).replace("January, 2020", "June, 2026")
    fixture_server.set("/privacy", policy_page("WorkOptima", changed))
    filler = fill(data)
    for command in (("check", "--no-alerts"), ("init",), ("reindex",), ("deliver",)):
        line = error_line(policy_archive(config, *command))
        assert str(data) in line, (command, line)
        assert "disk is full" in line or "I/O error" in line, (command, line)
        assert "free space" in line, (command, line)
    for command in (("list",), ("history", "WorkOptima", "Privacy Policy"), ("search", "data")):
        result = policy_archive(config, *command)
        if result.returncode != 0:  # a reader may need to write (SQLite's WAL index)
            line = error_line(result)
            assert str(data) in line and "free space" in line, (command, line)

    filler.unlink()
    for extra in data.glob("filler-*"):
        extra.unlink()
    verified = policy_archive(config, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    history = policy_archive(config, "history", "WorkOptima", "Privacy Policy")
    assert history.returncode == 0 and history.stdout.count("first_record") == 1
    assert "change" not in history.stdout  # nothing half-written while the disk was full
    result = policy_archive(config, "check", "--no-alerts")
    assert result.returncode == 0 and "changed" in result.stdout, result.stderr
    assert policy_archive(config, "verify").returncode == 0
    shown = policy_archive(config, "show", "WorkOptima", "Privacy Policy")
    assert "June, 2026" in shown.stdout
