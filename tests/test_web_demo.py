"""``policy-archive demo``: its script, its local site, and the whole loop on loopback."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.demo import DemoSite, Script, demo_config, load_script
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from tests.test_web_server import CLI, REPO, fetch, free_port, wait_for
from webui import create_app


@pytest.fixture
def script() -> Script:
    return load_script()


@pytest.fixture
def site(script: Script) -> Iterator[DemoSite]:
    with DemoSite(script, change_every=3600) as running:
        yield running


def test_script_applies_every_edit_then_undoes_them(script: Script) -> None:
    edits = len(script.edits)
    assert [script.applied(k) for k in range(2 * edits + 2)] == [
        *range(edits + 1),
        *range(edits - 1, -1, -1),
        1,
    ]
    base = script.texts(0)
    assert script.texts(script.period) == base
    for step in range(1, script.period + 1):
        before, after = script.texts(step - 1), script.texts(step)
        changed = [slug for slug in base if before[slug] != after[slug]]
        assert changed == [script.changed_at(step)]
    assert {e.policy for e in script.edits} == {p.slug for p in script.policies}
    assert all(len(p.text.split()) > 150 for p in script.policies)


def test_site_serves_the_pages_and_changes_on_cue(site: DemoSite, script: Script) -> None:
    status, _, index = fetch(site.url)
    assert status == 200 and "Lantern Notes" in index
    slug = script.edits[0].policy
    status, _, page = fetch(site.url + slug)
    assert status == 200 and "<main>" in page and "usage records for 30 days" in page
    site.advance()
    assert "usage records for 90 days" in fetch(site.url + slug)[2]
    assert fetch(site.url + "no/such/page")[0] == 404


def test_the_whole_loop_fetch_commit_diff_feed(site: DemoSite, script: Script,
                                               tmp_path: Path) -> None:  # fmt: skip
    config = demo_config(script, site.url, tmp_path / "data")
    fetcher = Fetcher(config.fetch)
    try:
        with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
            pipeline = Pipeline(archive, fetcher)
            first = [pipeline.track(p) for p in config.policies]
            assert [r.status for r in first] == ["first_record"] * 3, first
            site.advance()
            results = [pipeline.track(p) for p in config.policies]
            changed = [r for r in results if r.recorded]
            assert [(r.service, r.status) for r in changed] == [("Lantern Notes", "changed")]
            client = create_app(config, archive=archive).test_client()
            diff = client.get("/policies/Lantern%20Notes/Privacy%20Policy/diff")
            assert diff.status_code == 200
            assert "<del>30</del><ins>90</ins>" in diff.text
            assert "Retention" in diff.text  # the section touched
            feed = client.get("/feeds/changes.atom").text
            assert feed.count("<entry>") == 4 and "1 words added, 1 removed" in feed
            home = client.get("/").text
            assert '<dd id="count-versions">4</dd>' in home
    finally:
        fetcher.close()


@pytest.mark.slow
def test_demo_command_runs_and_stops(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_ARCHIVE_")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, "demo", "--port", str(port), "--duration", "12", "--keep", str(tmp_path / "demo")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            try:
                return fetch(url, timeout=2)[0] == 200
            except OSError:
                assert proc.poll() is None, proc.communicate()
                return False

        wait_for(up, timeout=30)
        home = fetch(url)[2]
        assert '<dd id="count-policies">3</dd>' in home
        assert '<dd id="count-versions">3</dd>' in home
        assert "Tidewater Bikes" in fetch(url + "policies")[2]
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert f"Archive UI: http://127.0.0.1:{port}/" in out
        assert out.count(": first_record") == 3
        assert time.monotonic() - started >= 12
        archive = tmp_path / "demo" / "data" / "archive"
        files = subprocess.run(
            ["git", "-C", str(archive), "ls-tree", "-r", "--name-only", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Lantern Notes/" in files
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
