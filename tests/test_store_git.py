"""store/ as the one home of git: a foreign repository read, git http-backend run, and the
queries (texts, snapshot files, fsck, empty commits, repair) the layers above need."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store.errors import StoreError
from store.git import http_backend
from store.git.foreign import ForeignRepository, ForeignRepositoryError, NotARepositoryError
from store.git.repository import is_repository
from store.git.snapshots import Page, SnapshotStore
from store.git.versions import FIRST_RECORD, NewVersion, Version, VersionStore

T0 = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Someone",
        "GIT_AUTHOR_EMAIL": "someone@example.invalid",
        "GIT_COMMITTER_NAME": "Someone",
        "GIT_COMMITTER_EMAIL": "someone@example.invalid",
    }
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[VersionStore]:
    store = VersionStore(tmp_path / "archive", create=True)
    yield store
    store.close()


@pytest.fixture
def snaps(tmp_path: Path) -> Iterator[SnapshotStore]:
    store = SnapshotStore(tmp_path / "snapshots", create=True)
    yield store
    store.close()


def record(store: VersionStore, text: str, when: datetime, service: str = "Acme") -> Version:
    version = store.record(
        NewVersion(service=service, type="Privacy Policy", text=text, date=when, kind=FIRST_RECORD)
    )
    assert version is not None
    return version


# --------------------------------------------------------------------------- foreign


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Someone else's repository: an add, a change, a delete, and a merged side branch."""
    repo = tmp_path / "demo-versions"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Acme").mkdir()
    (repo / "Acme" / "Terms.md").write_text("one\n", encoding="utf-8")
    (repo / "README.md").write_text("readme\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "First\n\nbody", date="2021-01-01T00:00:00+00:00")
    (repo / "Acme" / "Terms.md").write_text("two\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "Second", date="2021-02-01T00:00:00+01:00")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "Side.md").write_text("side\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "On the side", date="2021-02-15T00:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    git(repo, "rm", "-q", "README.md")
    git(repo, "commit", "-q", "-m", "Third", date="2021-03-01T00:00:00+00:00")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side", date="2021-04-01T00:00:00Z")
    return repo


def test_foreign_commits_oldest_first_along_the_first_parent(foreign: Path) -> None:
    with ForeignRepository(foreign) as repo:
        commits = list(repo.commits())
        assert repo.count_commits() == len(commits) == 4
        assert repo.head() == git(foreign, "rev-parse", "HEAD") == commits[-1].sha
        assert [c.message.split("\n")[0] for c in commits] == [
            "First",
            "Second",
            "Third",
            "Merge side",
        ]
        assert commits[0].message == "First\n\nbody"
        assert commits[1].date == datetime(2021, 2, 1, tzinfo=UTC) - timedelta(hours=1)
        assert {(f.path, f.status) for f in commits[0].files} == {
            ("Acme/Terms.md", "A"),
            ("README.md", "A"),
        }
        assert [(f.path, f.status) for f in commits[2].files] == [("README.md", "D")]
        # a merge's changes are those against its first parent
        assert [(f.path, f.status) for f in commits[3].files] == [("Side.md", "A")]
        change = commits[1].files[0]
        assert change.blob == git(foreign, "rev-parse", f"{commits[1].sha}:Acme/Terms.md")
        assert repo.blob(change.blob) == b"two\n"


def test_foreign_blob_errors_and_names(foreign: Path, tmp_path: Path) -> None:
    tree = git(foreign, "rev-parse", "HEAD^{tree}")
    with ForeignRepository(foreign) as repo:
        assert repo.name == "demo-versions" and repo.origin_url() is None
        with pytest.raises(ForeignRepositoryError, match="not a file"):
            repo.blob(tree)
        with pytest.raises(ForeignRepositoryError, match="has no object"):
            repo.blob("0" * 40)
    bare = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(foreign), str(bare))
    with ForeignRepository(bare) as repo:
        assert repo.name == "mirror"
        assert repo.origin_url() == str(foreign)
        assert repo.count_commits() == 4


def test_foreign_not_a_repository_and_empty(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError, match="not a git repository"):
        ForeignRepository(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepositoryError):
        ForeignRepository(tmp_path / "plain")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    with ForeignRepository(empty) as repo:
        assert repo.head() is None
        assert repo.count_commits() == 0
        assert list(repo.commits()) == []


def test_foreign_walk_stopped_early_stops_git(foreign: Path) -> None:
    with ForeignRepository(foreign) as repo:
        walk = repo.commits()
        assert next(walk).message.startswith("First")
        walk.close()  # the log process is killed and reaped, no error
        assert len(list(repo.commits())) == 4


# --------------------------------------------------------------------------- http-backend


def _pkt(line: str) -> bytes:
    return b"%04x" % (len(line) + 4) + line.encode()


def test_http_backend_advertises_refs(versions: VersionStore) -> None:
    head = record(versions, "hello\n", T0).id
    answer = http_backend.run(
        versions.path,
        "info/refs",
        http_backend.BackendRequest(method="GET", query_string="service=git-upload-pack"),
        max_body=1024,
    )
    try:
        assert answer.status == 200
        assert ("Content-Type", "application/x-git-upload-pack-advertisement") in answer.headers
        data = b"".join(answer.body)
    finally:
        answer.body.close()
    assert head.encode() + b" refs/heads/main" in data


def test_http_backend_serves_a_fetch_and_caps_the_request(versions: VersionStore) -> None:
    head = record(versions, "hello\n", T0).id
    wants = _pkt(f"want {head}\n") + b"0000" + _pkt("done\n")
    request = http_backend.BackendRequest(
        method="POST",
        content_type="application/x-git-upload-pack-request",
        content_length=len(wants),
    )
    answer = http_backend.run(
        versions.path, "git-upload-pack", request, io.BytesIO(wants), max_body=1024
    )
    with_pack = b"".join(answer.body)
    answer.body.close()
    assert answer.status == 200 and b"NAK\n" in with_pack and b"PACK" in with_pack

    cut = http_backend.run(
        versions.path, "git-upload-pack", request, io.BytesIO(wants), max_body=10
    )
    body = b"".join(cut.body)
    cut.body.close()
    assert b"PACK" not in body  # git never got the whole request


def test_http_backend_body_closed_unread_and_environment(versions: VersionStore) -> None:
    record(versions, "hello\n", T0)
    request = http_backend.BackendRequest(method="GET", query_string="service=git-upload-pack")
    answer = http_backend.run(versions.path, "info/refs", request, max_body=1024)
    answer.body.close()  # never iterated (a HEAD request): git is stopped and reaped
    answer.body.close()
    env = http_backend.cgi_environ(versions.path, "info/refs", request)
    assert env["PATH_INFO"] == "/.git/info/refs"
    assert env["GIT_CONFIG_KEY_0"] == "http.receivepack" and env["GIT_CONFIG_VALUE_0"] == "false"
    assert "CONTENT_LENGTH" not in env and "GIT_PROTOCOL" not in env


def test_http_backend_refuses_other_services_and_folders(
    versions: VersionStore, tmp_path: Path
) -> None:
    request = http_backend.BackendRequest(method="POST")
    with pytest.raises(StoreError, match="not served"):
        http_backend.run(versions.path, "git-receive-pack", request, io.BytesIO(b""), max_body=1)
    with pytest.raises(StoreError, match="holds no repository"):
        http_backend.run(tmp_path / "nothing", "info/refs", request, max_body=1)
    assert is_repository(versions.path) and not is_repository(tmp_path / "nothing")


# --------------------------------------------------------------------------- queries


def test_read_text_at_reads_a_listed_version(versions: VersionStore) -> None:
    first = record(versions, "first text\n", T0)
    second = record(versions, "second text\n", T0 + timedelta(days=1))
    assert [versions.read_text_at(v) for v in versions.log()] == [
        "first text\n",
        "second text\n",
    ]
    assert versions.read_text_at(first) == versions.text("Acme", "Privacy Policy", first.id)
    elsewhere = Version(id=second.id, service="Other", type="Terms", date=T0, kind=FIRST_RECORD)
    with pytest.raises(StoreError, match="has no file"):
        versions.read_text_at(elsewhere)


def test_files_by_snapshot(snaps: SnapshotStore) -> None:
    assert snaps.files_by_snapshot() == {}
    one = snaps.record("Acme", "Terms", [Page("https://a.example/", b"<p>1</p>", "text/html")], T0)
    two = snaps.record(
        "Acme",
        "Terms",
        [
            Page("https://a.example/1", b"<p>1</p>", "text/html"),
            Page("https://a.example/2", b"%PDF", "application/pdf"),
        ],
        T0 + timedelta(hours=1),
    )
    assert snaps.files_by_snapshot() == {
        one: ("Acme/Terms.html",),
        two: ("Acme/Terms #1.html", "Acme/Terms #2.pdf", "Acme/Terms.html"),
    }


def test_fsck_empty_commits_and_repair_through_the_store(versions: VersionStore) -> None:
    head = record(versions, "hello\n", T0).id
    report = versions.fsck_report()
    assert report.ok and versions.empty_commits() == [] and versions.repair() == []

    # a commit a killed writer wrote but never put on main: a dangling commit
    tree = git(versions.path, "rev-parse", f"{head}^{{tree}}")
    body = f"tree {tree}\nparent {head}\nauthor A <a@x> 0 +0000\ncommitter A <a@x> 0 +0000\n\nx\n"
    dangling = versions.git.write_object(b"commit", body.encode())
    report = versions.fsck_report()
    assert not report.ok and f"dangling commit {dangling}" in report.problems
    done = versions.repair()
    assert len(done) == 1 and dangling[:12] in done[0] and "commit" in done[0]
    assert versions.fsck_report().ok

    # the same tree committed again on main: an empty commit (reported, never rewritten)
    empty = git(versions.path, "commit-tree", tree, "-p", head, "-m", "nothing")
    git(versions.path, "update-ref", "refs/heads/main", empty, head)
    assert versions.empty_commits() == [empty]
    assert versions.repair() == [] and versions.head() == empty
    # and the writer still writes after a repair pruned folders under it
    assert record(versions, "after\n", T0 + timedelta(days=2)).id != empty


def test_upkeep_through_the_store(snaps: SnapshotStore) -> None:
    snaps.record("Acme", "Terms", [Page("https://a.example/", b"<p>1</p>", "text/html")], T0)
    assert snaps.count_loose_objects() > 0
    snaps.pack()
    assert snaps.count_loose_objects() == 0
    snaps.gc()
    assert snaps.fsck_report().ok and snaps.head() is not None
