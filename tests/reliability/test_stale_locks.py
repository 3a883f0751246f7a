"""A git lock file left by a dead writer never blocks the archive: the next ``check``, ``init``
or ``run`` removes it before anything writes and logs a WARNING saying what it repaired."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixture_server import FixtureServer
from tests.reliability.harness import TRACEBACK, CliResult, Site, run_cli, start_cli

LOCKS = ["config.lock", "index.lock", "HEAD.lock", "refs/heads/main.lock", "packed-refs.lock"]
REPOS = ["archive", "snapshots"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Path]]:
    """An archive with one recorded policy, made once; each test works on a copy."""
    with FixtureServer() as server:
        site = Site(server, 1)
        site.change(site.policies)
        base = tmp_path_factory.mktemp("stale-locks")
        config = base / "config.toml"
        config.write_text(site.config_toml(base / "data"), encoding="utf-8")
        for args in (("init",), ("check", "--no-alerts")):
            done = run_cli(config, *args)
            assert done.returncode == 0 and not done.traceback, done.describe()
        yield site, base / "data"


def run_until_tracking(config: Path, timeout: float = 60.0) -> CliResult:
    """``policy-archive run --no-web``: start it, wait for its "tracking" line, SIGTERM it."""
    start = time.monotonic()
    proc = start_cli(config, "run", "--no-web")
    lines: list[str] = []
    tracking = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "tracking" in line:
                tracking.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not tracking.is_set() and proc.poll() is None and time.monotonic() < deadline:
        tracking.wait(0.05)
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(timeout=10)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    stderr = "".join(lines)
    if not tracking.is_set():
        stderr += "\n(the run never logged that it was tracking)"
    return CliResult(("run", "--no-web"), proc.returncode, stdout, stderr, time.monotonic() - start)


@pytest.mark.parametrize("command", ["check", "init", "run"])
@pytest.mark.parametrize("lock", LOCKS)
def test_a_stale_git_lock_is_repaired_and_logged(
    prepared: tuple[Site, Path], tmp_path: Path, lock: str, command: str
):
    site, source = prepared
    data = tmp_path / "data"
    shutil.copytree(source, data)
    (data / ".writer.lock").unlink(missing_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(site.config_toml(data), encoding="utf-8")
    stale = [data / repo / ".git" / lock for repo in REPOS]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left by a writer that was killed\n", encoding="utf-8")

    if command == "run":
        result = run_until_tracking(config)
    else:
        result = run_cli(config, *(["check", "--no-alerts"] if command == "check" else ["init"]))

    assert TRACEBACK not in result.stderr, result.describe()
    assert result.returncode == 0, result.describe()
    assert "tracking" in result.stderr or command != "run", result.describe()
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    for repo, path in zip(REPOS, stale, strict=True):
        assert not path.exists(), f"{path} is still there"
        assert any(path.name in line and f"/{repo}" in line for line in warnings), (
            f"no WARNING says that {lock} was removed from the {repo} repository:\n"
            + "\n".join(warnings)
        )
