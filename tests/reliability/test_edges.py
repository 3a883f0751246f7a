"""What users meet at the edges: one-line errors, exit codes, the run log, web limits.

Real processes and files: the CLI as a subprocess (or click's CliRunner), a real state.sqlite
overwritten with garbage, a data directory made read-only, the Flask app with real bodies.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.app import Archive
from archive.cli import main
from archive.config import Config
from store.state import State, StateCorruptError, StateReadOnlyError
from tests.conftest import seed_text
from tests.pages import policy_page
from webui import create_app

CLI = str(Path(sys.executable).with_name("policy-archive"))
WORKOPTIMA = "workoptima-privacy-policy.txt"
BACK_OFFICE = "back-office-privacy-policy.txt"


def write_config(tmp_path: Path, fixture_server, *, broken: int = 0) -> Path:
    """A config with WorkOptima (served) and ``broken`` more policies that answer 404."""
    fixture_server.set("/privacy", policy_page("WorkOptima", seed_text(WORKOPTIMA)))
    policies = [
        f"""
[[policy]]
service = "WorkOptima"
type = "Privacy Policy"
url = "{fixture_server.url("/privacy")}"
select = "main"
"""
    ]
    for n in range(broken):
        policies.append(
            f"""
[[policy]]
service = "Gone {n}"
type = "Terms of Service"
url = "{fixture_server.url(f"/gone-{n}")}"
select = "main"
"""
        )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[fetch]
allow_private_addresses = true
per_host_delay = 0
timeout = 5
"""
        + "".join(policies),
        encoding="utf-8",
    )
    return config


def policy_archive(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed on stderr (asserting there is only one)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


# --------------------------------------------------------------------------- check and list


def test_check_exits_1_and_says_how_many_failed_after_its_table(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, broken=2)
    result = CliRunner().invoke(main, ["--config", str(config), "check", "--no-alerts"])
    assert result.exit_code == 1
    assert "WorkOptima" in result.stdout and "first record" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "  FAILED  " in line]
    assert len(rows) == 2  # the table is printed whole
    assert "2 FAILED, 1 first record" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("Error: 2 of 3 policies failed")

    fixture_server.set("/gone-0", policy_page("Gone", seed_text(BACK_OFFICE)))
    fixture_server.set("/gone-1", policy_page("Gone", seed_text(BACK_OFFICE)))
    fine = CliRunner().invoke(main, ["--config", str(config), "check", "--no-alerts"])
    assert fine.exit_code == 0, fine.output
    assert "failed" not in fine.stderr


def test_list_says_not_checked_for_a_policy_never_checked(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, broken=1)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "init"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config), "list"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert rows["WorkOptima"].rstrip().endswith("not checked")
    assert rows["Gone"].rstrip().endswith("not checked")
    assert " ok" not in result.stdout

    runner.invoke(main, ["--config", str(config), "check", "--no-alerts", "WorkOptima"])
    rows = {
        line.split()[0]: line
        for line in runner.invoke(main, ["--config", str(config), "list"]).stdout.splitlines()
    }
    assert rows["WorkOptima"].rstrip().endswith(" ok")
    assert rows["Gone"].rstrip().endswith("not checked")


# --------------------------------------------------------------------------- run's log


@pytest.mark.slow
def test_run_logs_one_info_line_per_change_and_per_failure(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, broken=1)
    log = tmp_path / "run.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [CLI, "--config", str(config), "run", "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            lines = log.read_text(encoding="utf-8").splitlines()
            info = [line for line in lines if " INFO " in line]
            if any("WorkOptima" in line for line in info) and any(
                "Gone 0" in line for line in info
            ):
                break
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert proc.returncode == 0, lines
    change = [line for line in lines if " INFO " in line and "WorkOptima" in line]
    failure = [line for line in lines if " INFO " in line and "Gone 0" in line]
    assert len(change) == 1 and "first" in change[0], lines
    assert failure and "404" in failure[0], lines
    # the archive's own INFO lines only: libraries (apscheduler, urllib3...) stay at WARNING
    assert all(
        line.split()[3].startswith(("archive", "store", "webui"))
        for line in lines
        if " INFO " in line
    ), lines


# --------------------------------------------------------------------------- state.sqlite


def test_a_corrupt_state_sqlite_is_one_line_naming_it_for_every_command(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server)
    assert policy_archive(config, "init").returncode == 0
    assert policy_archive(config, "check", "--no-alerts").returncode == 0
    state = tmp_path / "data" / "state.sqlite"
    for leftover in state.parent.glob("state.sqlite-*"):  # WAL files of the clean close
        leftover.unlink()
    garbage = os.urandom(8192)
    state.write_bytes(garbage)
    head = (tmp_path / "data" / "archive").joinpath(".git", "HEAD").read_bytes()
    for command in (
        ("list",),
        ("check", "--no-alerts"),
        ("history", "WorkOptima", "Privacy Policy"),
        ("search", "privacy"),
        ("init",),
        ("subscriptions",),
        ("deliver",),
    ):
        line = error_line(policy_archive(config, *command))
        assert str(state) in line and "not a valid SQLite database" in line, (command, line)
        assert "restore it from a backup" in line
    assert state.read_bytes() == garbage  # nothing was written over it
    assert (tmp_path / "data" / "archive").joinpath(".git", "HEAD").read_bytes() == head

    state.rename(state.with_suffix(".corrupt"))  # the fix the message gives
    assert policy_archive(config, "check", "--no-alerts").returncode == 0
    assert policy_archive(config, "verify").returncode == 0


def test_state_errors_name_the_file_and_roll_back(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"SQLite format 3\0" + os.urandom(4080))
    with pytest.raises(StateCorruptError) as caught:
        State(path)
    assert str(caught.value).startswith(f"{path}: is not a valid SQLite database")

    path.unlink()
    state = State(path)
    state.set_meta("cursor", "1")
    state.close()
    path.chmod(0o444)
    if os.access(path, os.W_OK):  # root writes anyway: make the file immutable instead
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"cannot make a file read-only for root here: {made.stderr!r}")
    try:
        state = State(path)
        with pytest.raises(StateReadOnlyError) as caught:
            state.set_meta("cursor", "2")
        assert str(caught.value).startswith(f"{path}: cannot ")
        assert "writable" in str(caught.value)
        assert state.get_meta("cursor") == "1"
        state.close()
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o644)


def test_a_bug_in_our_sql_is_not_dressed_up_as_a_machine_error(tmp_path: Path):
    state = State(tmp_path / "state.sqlite")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        state.query("SELECT * FROM no_such_table")
    state.close()


# --------------------------------------------------------------------------- read-only disk


@pytest.fixture
def read_only_data(tmp_path: Path, fixture_server):
    """(config, data dir) checked once, then the data dir remounted read-only (a tmpfs)."""
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(data)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr!r}")
    try:
        config = write_config(tmp_path, fixture_server)
        assert policy_archive(config, "init").returncode == 0
        assert policy_archive(config, "check", "--no-alerts").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True, capture_output=True)
        yield config, data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True, capture_output=True)


@pytest.mark.slow
def test_a_read_only_data_dir_is_one_line_per_command(read_only_data, fixture_server):
    config, data = read_only_data
    fixture_server.set(
        "/privacy",
        policy_page("WorkOptima", seed_text(WORKOPTIMA).replace("January, 2020", "June, 2026")),
    )
    for command in (("check", "--no-alerts"), ("init",), ("deliver",), ("reindex",)):
        line = error_line(policy_archive(config, *command))
        assert str(data) in line and ("read-only" in line or "writable" in line), (command, line)
    # readers work, or say in one line why not (SQLite's WAL index needs a writable folder)
    for command in (("list",), ("history", "WorkOptima", "Privacy Policy")):
        result = policy_archive(config, *command)
        if result.returncode != 0:
            line = error_line(result)
            assert str(data) in line and "read-write" in line, (command, line)
    subprocess.run(["mount", "-o", "remount,rw", str(data)], check=True, capture_output=True)
    assert policy_archive(config, "verify").returncode == 0
    result = policy_archive(config, "check", "--no-alerts")
    assert result.returncode == 0 and "changed" in result.stdout, result.stderr


# --------------------------------------------------------------------------- web limits


@pytest.mark.parametrize("size", [1_500_000, 10_000_000])
def test_bodies_over_1_mb_are_413_on_every_route(make_config: Callable[..., Config], size: int):
    with Archive.open(make_config(), create=True) as archive:
        client = create_app(archive.config, archive=archive).test_client()
        body = b"x" * size
        for method, path in (
            ("POST", "/"),
            ("GET", "/search?q=data"),
            ("POST", "/api/search"),
            ("POST", "/alerts/subscribe"),
            ("PUT", "/policies"),
        ):
            response = client.open(path, method=method, data=body)
            assert response.status_code == 413, (method, path, response.status_code)
        api = client.post("/api/search", data=body)
        assert api.json["error"]["status"] == 413
        assert "at most 1,000,000 bytes" in api.json["error"]["message"]
        assert client.post("/api/search", data=b"x" * 1_000_000).status_code != 413
