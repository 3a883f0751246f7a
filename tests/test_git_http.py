"""``git clone`` over HTTP from the running web server: full history, read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask

from archive.app import Archive
from store.git.versions import CHANGE, FIRST_RECORD
from tests.conftest import seed_text
from tests.support import URL, record_fetched, serving
from webui import create_app, git_http

TEXT = seed_text("workoptima-privacy-policy.txt")
ESTONIAN = seed_text("backoffice-ee-uldtingimused-et.txt")


@pytest.fixture
def filled(archive: Archive) -> Archive:
    record_fetched(
        archive,
        "WorkOptima",
        "Privacy Policy",
        TEXT,
        "2023-01-02T03:04:05+00:00",
        FIRST_RECORD,
        URL,
    )
    record_fetched(
        archive,
        "Backoffice.ee",
        "Üldtingimused",
        ESTONIAN,
        "2023-02-01T10:00:00+02:00",
        FIRST_RECORD,
        "https://backoffice.example/et",
    )
    record_fetched(
        archive,
        "WorkOptima",
        "Privacy Policy",
        TEXT.replace("personal data", "data"),
        "2024-05-06T07:08:09+00:00",
        CHANGE,
        URL,
    )
    return archive


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd or Path.cwd()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=120
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    """Run apps on real waitress servers on 127.0.0.1; returns the base URL."""
    with ExitStack() as servers:
        yield lambda app: servers.enter_context(serving(app)).url.rstrip("/")


def web_app(archive: Archive) -> Flask:
    app = create_app(archive.config, archive=archive)
    return app


def test_clone_has_the_full_history_with_dates_and_trailers(filled, serve, tmp_path):
    base = serve(web_app(filled))
    clone = tmp_path / "clone"
    git("clone", "-q", f"{base}/archive.git", str(clone), cwd=tmp_path)

    fmt = (
        "--format=%H%x1f%aI%x1f%cI%x1f%s%x1f%(trailers:key=Snapshot,valueonly)"
        "%x1f%(trailers:key=Source-URL,valueonly)%x1e"
    )
    out = git("log", "--reverse", fmt, cwd=clone).stdout
    rows = [r.strip("\n").split("\x1f") for r in out.split("\x1e") if r.strip()]
    versions = filled.versions.log()
    assert [r[0] for r in rows] == [v.id for v in versions]
    assert [r[1] for r in rows] == [
        "2023-01-02T03:04:05+00:00",
        "2023-02-01T10:00:00+02:00",
        "2024-05-06T07:08:09+00:00",
    ]
    assert [r[2] for r in rows] == [r[1] for r in rows]  # committer date = observation time too
    assert [r[3] for r in rows] == [
        "Start tracking WorkOptima Privacy Policy",
        "Start tracking Backoffice.ee Üldtingimused",
        "Record change to WorkOptima Privacy Policy",
    ]
    assert [r[4].strip() for r in rows] == [v.snapshot for v in versions]
    assert rows[0][5].strip() == URL
    assert (clone / "WorkOptima" / "Privacy Policy.md").read_text(
        encoding="utf-8"
    ) == filled.versions.current_text("WorkOptima", "Privacy Policy")
    assert (clone / "Backoffice.ee" / "Üldtingimused.md").read_text(encoding="utf-8") == ESTONIAN

    # A new version reaches an existing clone with `git pull` (a fetch with "haves").
    new = record_fetched(
        filled,
        "WorkOptima",
        "Privacy Policy",
        TEXT + "\nAddendum.\n",
        "2025-01-01T00:00:00+00:00",
        CHANGE,
        URL,
    ).id
    git("pull", "-q", "--ff-only", cwd=clone)
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == new


def test_push_is_refused(filled, serve, tmp_path):
    base = serve(web_app(filled))
    clone = tmp_path / "clone"
    git("clone", "-q", f"{base}/archive.git", str(clone), cwd=tmp_path)
    (clone / "WorkOptima" / "Privacy Policy.md").write_text("defaced\n", encoding="utf-8")
    git("-c", "user.name=x", "-c", "user.email=x@x.invalid", "commit", "-qam", "deface", cwd=clone)
    head = filled.versions.head()
    pushed = git("push", "origin", "HEAD:main", cwd=clone, check=False)
    assert pushed.returncode != 0
    assert "403" in pushed.stderr and "read-only" in pushed.stderr
    assert filled.versions.head() == head


def test_snapshots_repository_only_when_the_config_allows(filled, serve, tmp_path, make_config):
    client = web_app(filled).test_client()
    hidden = client.get("/snapshots.git/info/refs?service=git-upload-pack")
    assert hidden.status_code == 404

    config = make_config(web={"expose_snapshots": True})
    with Archive.open(config) as reader:
        base = serve(web_app(reader))
        clone = tmp_path / "snapshots"
        git("clone", "-q", f"{base}/snapshots.git", str(clone), cwd=tmp_path)
        # From any version to its raw snapshot, in the clones alone.
        for version in filled.versions.log():
            shown = git(
                "show", f"{version.snapshot}:WorkOptima/Privacy Policy.html", cwd=clone, check=False
            )
            if version.service == "WorkOptima":
                assert shown.returncode == 0 and "<main>" in shown.stdout


def test_protocol_edges(filled):
    client = web_app(filled).test_client()
    assert client.get("/archive.git/info/refs?service=git-receive-pack").status_code == 403
    refused = client.post("/archive.git/git-receive-pack", data=b"0000")
    assert refused.status_code == 403 and b"read-only" in refused.data
    assert client.get("/archive.git/info/refs").status_code == 400  # dumb protocol
    too_big = client.post(
        "/archive.git/git-upload-pack",
        data=b"0" * (git_http.MAX_REQUEST_BYTES + 1),
        content_type="application/x-git-upload-pack-request",
    )
    assert too_big.status_code == 413
    assert client.get("/other.git/info/refs?service=git-upload-pack").status_code == 404
    about = client.get("/archive.git")
    assert about.status_code == 200 and b"git clone http://localhost/archive.git" in about.data

    head = client.head("/archive.git/info/refs?service=git-upload-pack")
    assert head.status_code == 200 and head.data == b""
    head.close()  # git is reaped although its output was never read

    refs = client.get("/archive.git/info/refs?service=git-upload-pack")
    assert refs.status_code == 200
    assert refs.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert filled.versions.head().encode() in refs.data
