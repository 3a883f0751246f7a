"""The index says when it cannot be trusted: missing, behind git, damaged; `reindex` rebuilds
into a fresh folder and swaps it in while readers keep answering; a killed `reindex` leaves no
worker behind. Real archives in tmp, the real CLI as a process, the Flask test client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from archive.search import search
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from store.index import IndexDamagedError, open_index
from tests.conftest import SEED_POLICIES, seed_text
from tests.reliability.harness import cli_command, cli_env, run_cli
from webui import close_app, create_app

T0 = datetime(2024, 5, 1, tzinfo=UTC)
DEATH_SECONDS = 2.0
"""How soon the workers of a killed reindex must be gone (with a parent-death signal: at once)."""
JSON_KEYS = {"query", "history", "total", "page", "pages", "hits", "facets", "stale"}


def write_config(config: Config) -> Path:
    path = config.data_dir.parent / "config.toml"
    path.write_text(f'data_dir = "{config.data_dir}"\n', encoding="utf-8")
    return path


@pytest.fixture
def seeded(make_config: Callable[..., Config]) -> tuple[Config, Path]:
    """An archive of the seed policies with an up-to-date index, and its config file."""
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        for name, (service, type_, _lang) in SEED_POLICIES.items():
            archive.versions.record(NewVersion(service, type_, seed_text(name), T0, FIRST_RECORD))
        archive.sync_index()
    return config, write_config(config)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def truncate_largest_segment(index_dir: Path) -> None:
    segment = max(index_dir.glob("*.seg"), key=lambda p: p.stat().st_size)
    os.truncate(segment, segment.stat().st_size // 2)


def test_a_missing_index_answers_with_a_warning_and_the_next_writer_builds_it(seeded) -> None:
    config, path = seeded
    shutil.rmtree(config.index_dir)
    result = run_cli(path, "search", "privacy", "--json")
    assert result.returncode == 0, result.describe()
    data = json.loads(result.stdout)
    assert set(data) >= JSON_KEYS and data["stale"] is True and data["total"] == 0
    assert "no search index" in one_line(result.stderr)
    text = run_cli(path, "search", "privacy")
    assert text.returncode == 0 and "no search index" in one_line(text.stderr)
    assert not config.index_dir.exists()  # a reader never writes
    with Archive.open(config, writer=True, listeners=LISTENERS):  # the next writer open builds it
        pass
    data = json.loads(run_cli(path, "search", "privacy", "--json").stdout)
    assert data["stale"] is False and data["total"] >= 3


def test_an_index_behind_git_is_stale_in_the_cli_the_api_and_the_page(seeded) -> None:
    config, path = seeded
    with Archive(config, writer=True) as writer:  # not open(): records without syncing
        writer.versions.record(
            NewVersion(
                "WorkOptima",
                "Privacy Policy",
                seed_text("workoptima-privacy-policy.txt") + "\n\nZebras are mentioned here.",
                T0 + timedelta(days=3),
                CHANGE,
            )
        )
    result = run_cli(path, "search", "privacy", "--json")
    assert json.loads(result.stdout)["stale"] is True
    assert "behind" in one_line(result.stderr)
    app = create_app(config)
    try:
        client = app.test_client()
        api = client.get("/api/search?q=privacy").get_json()
        assert set(api) >= JSON_KEYS and api["stale"] is True and api["total"] >= 3
        assert 'class="notice stale"' in client.get("/search?q=privacy").text
        with Archive.open(config, writer=True, listeners=LISTENERS):  # catches the index up
            pass
        assert client.get("/api/search?q=zebras").get_json()["stale"] is False
        page = client.get("/search?q=zebras").text
        assert 'class="notice stale"' not in page and "WorkOptima" in page
    finally:
        close_app(app)
    result = run_cli(path, "search", "zebras", "--json")
    assert json.loads(result.stdout)["stale"] is False and result.stderr.strip() == ""


def test_a_truncated_segment_is_one_clear_line_and_reindex_repairs_it(seeded) -> None:
    config, path = seeded
    truncate_largest_segment(config.index_dir)
    for args in (("search", "privacy"), ("search", "privacy", "--json")):
        result = run_cli(path, *args)
        assert result.returncode == 1, result.describe()
        assert not result.traceback and "Aborted!" not in result.stderr, result.describe()
        line = one_line(result.stderr)
        assert "damaged" in line and "policy-archive reindex" in line, line
    report = run_cli(path, "verify")  # the index check fails; the git checks still run
    assert report.returncode == 1 and not report.traceback, report.describe()
    assert any(
        "damaged" in x and "policy-archive reindex" in x for x in report.stdout.splitlines()
    ), report.stdout
    assert "fsck" in report.stdout, report.stdout
    app = create_app(config)
    try:
        response = app.test_client().get("/api/search?q=privacy")
        assert response.status_code == 503
        assert "reindex" in response.get_json()["error"]["message"]
    finally:
        close_app(app)
    result = run_cli(path, "reindex", "--processes", "1")
    assert result.returncode == 0, result.describe()
    assert "Indexed 4 versions of 4 policies" in result.stdout
    data = json.loads(run_cli(path, "search", "privacy", "--json").stdout)
    assert data["stale"] is False and data["total"] >= 3
    assert run_cli(path, "verify").returncode == 0
    leftovers = [p.name for p in config.index_dir.parent.iterdir() if p.name.startswith("index.")]
    assert leftovers == []


def test_the_next_writer_rebuilds_a_damaged_index(seeded, caplog) -> None:
    config, path = seeded
    truncate_largest_segment(config.index_dir)
    with Archive.open(
        config, writer=True, listeners=LISTENERS
    ):  # e.g. the next `check`: it is not stopped
        pass
    assert "rebuilding it from git" in caplog.text
    data = json.loads(run_cli(path, "search", "privacy", "--json").stdout)
    assert data["stale"] is False and data["total"] >= 3


def test_reindex_swaps_in_a_new_folder_while_readers_keep_answering(seeded) -> None:
    config, path = seeded
    index = open_index(config.index_dir)  # a reader in this process, as the web UI's
    errors: list[BaseException] = []
    totals: list[int] = []
    stop = threading.Event()
    with Archive.open(config) as reader:
        expected = search(reader, "privacy").total

        def keep_searching() -> None:
            try:
                while not stop.is_set():
                    totals.append(search(reader, "privacy").total)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        before = config.index_dir.stat().st_ino
        thread = threading.Thread(target=keep_searching)
        thread.start()
        try:
            result = run_cli(path, "reindex", "--processes", "1")
        finally:
            stop.set()
            thread.join()
        assert result.returncode == 0, result.describe()
        assert not errors, errors
        assert totals and set(totals) == {expected}  # never an empty or failed answer
        assert config.index_dir.stat().st_ino != before  # a new folder was swapped in
        assert search(reader, "privacy").total == expected  # read from the new folder
    assert index.stats().versions == 4
    index.close()


def test_a_dead_rebuilds_folder_is_cleared_and_a_damaged_folder_never_read(seeded) -> None:
    config, _ = seeded
    dead = config.index_dir.with_name("index.new-999999999")
    dead.mkdir()
    (dead / "junk.seg").write_bytes(b"half a segment")
    truncate_largest_segment(config.index_dir)
    index = open_index(config.index_dir)
    try:
        with pytest.raises(IndexDamagedError, match="reindex"):
            index.stats()
        with Archive(config, writer=True) as archive:
            assert archive.index.rebuild(archive.versions, processes=1) == 4
        assert index.stats().versions == 4  # the same object reads the swapped-in folder
    finally:
        index.close()
    assert not dead.exists()


def children_of(pid: int) -> dict[int, str]:
    """Processes whose parent is ``pid``: their start times (to tell a reused pid apart)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            out[int(entry.name)] = fields[19]
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # it has already ended
        return ""


def alive(pid: int, started: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] == started and fields[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_killed_reindex_leaves_no_worker_behind(make_config: Callable[..., Config]) -> None:
    config = make_config()
    paragraphs = [seed_text(name) for name in SEED_POLICIES]
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        archive.versions.bulk_import(
            NewVersion(
                f"Service {n % 60:02d}",
                "Privacy Policy",
                f"{paragraphs[n % 4]}\n\nRevision {n} adds clause{n} about zebras{n}.\n\n"
                + paragraphs[(n + 1) % 4].replace(".", f" r{n}."),
                T0 + timedelta(days=n),
                FIRST_RECORD if n < 60 else CHANGE,
            )
            for n in range(1200)
        )
    path = write_config(config)
    proc = subprocess.Popen(  # no pipes: waiting on their EOF would wait for the workers
        [*cli_command(), "--config", str(path), "reindex", "--processes", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    workers: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        workers = {
            pid: started
            for pid, started in children_of(proc.pid).items()
            if "spawn_main" in cmdline(pid)
        }
        threading.Event().wait(0.02)
    assert len(workers) == 2, "the indexing workers never started"
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: not its process group
    proc.wait(timeout=30)
    deadline = time.monotonic() + DEATH_SECONDS  # the rest of their work takes longer
    while any(alive(pid, s) for pid, s in workers.items()) and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    survivors = [pid for pid, s in workers.items() if alive(pid, s)]
    for pid in survivors:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "indexing workers outlived the killed reindex"
    result = run_cli(path, "reindex", "--processes", "2")
    assert result.returncode == 0, result.describe()
    assert "Indexed 1,200 versions of 60 policies" in result.stdout
    assert [p.name for p in config.data_dir.iterdir() if p.name.startswith("index.")] == []
