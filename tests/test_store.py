"""The git stores: safe names, versions, snapshots, one writer, recovery after a crash."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from store.errors import NameCollisionError, UnknownVersionError, UnsafeNameError, WriterLockedError
from store.git.repository import blob_sha
from store.git.snapshots import Page, SnapshotStore
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion, VersionStore
from store.lock import WriterLock
from store.paths import check_collisions, policy_path, safe_component

T0 = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def versions(tmp_path):
    store = VersionStore(tmp_path / "archive", create=True)
    yield store
    store.close()


@pytest.fixture
def snaps(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots", create=True)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("WorkOptima", "WorkOptima"),
        ("Privacy Policy", "Privacy Policy"),
        ("../../etc/passwd", "-..-etc-passwd"),
        (".git", "git"),
        ("a/b\\c", "a-b-c"),
        ("Cafe\u0301", "Café"),
        ("tab\there\x00", "tab here"),
        ("Mon espace santé", "Mon espace santé"),
    ],
)
def test_safe_component(name, expected):
    assert safe_component(name) == expected


@pytest.mark.parametrize("name", ["", "..", "   ", "\x00\x01", "." * 5, "x" * 300])
def test_unsafe_names_are_refused(name):
    with pytest.raises(UnsafeNameError):
        safe_component(name)


def test_collisions_are_errors():
    check_collisions([("A", "Privacy Policy"), ("B", "Privacy Policy")])
    with pytest.raises(NameCollisionError, match="same file"):
        check_collisions([("A/B", "T"), ("A-B", "T")])
    with pytest.raises(NameCollisionError):
        check_collisions([("Acme", "Terms"), ("ACME", "terms")])
    assert policy_path("A", "T") == "A/T.md"


def test_versions_record_and_read(versions):
    store = versions
    first = store.record(
        NewVersion(
            "WorkOptima",
            "Privacy Policy",
            "one\n",
            T0,
            FIRST_RECORD,
            ("https://w.example/p",),
            extractor_version="1",
        )
    )
    second = store.record(
        NewVersion(
            "WorkOptima",
            "Privacy Policy",
            "two\n",
            T0 + timedelta(days=3),
            CHANGE,
            ("https://w.example/p",),
        )
    )
    third = store.record(
        NewVersion(
            "WorkOptima", "Privacy Policy", "two, re-extracted\n", T0 + timedelta(days=4), REEXTRACT
        )
    )
    store.record(NewVersion("Other", "Terms", "x\n", T0 + timedelta(days=1), FIRST_RECORD))
    history = store.history("WorkOptima", "Privacy Policy")
    assert [v.kind for v in history] == ["first_record", "change", "reextract"]
    assert [v.id for v in history] == [first.id, second.id, third.id]
    assert first.url == "https://w.example/p" and first.date == T0
    assert store.text("WorkOptima", "Privacy Policy", first.id[:7]) == "one\n"
    assert store.at("WorkOptima", "Privacy Policy", T0 + timedelta(days=2)).id == first.id
    assert store.at("WorkOptima", "Privacy Policy", T0 - timedelta(days=1)) is None
    assert store.current_text("WorkOptima", "Privacy Policy") == "two, re-extracted\n"
    assert store.valid_to(first) == second.date and store.valid_to(third) is None
    assert store.policies() == [("Other", "Terms"), ("WorkOptima", "Privacy Policy")]
    assert [v.id for v in store.log(since=second.id)] == [third.id, store.log()[-1].id]
    assert first.as_json() == {
        "version": first.id,
        "date": "2024-03-01T08:30:00+00:00",
        "kind": "first_record",
        "url": "https://w.example/p",
    }
    log = subprocess.run(
        ["git", "-C", str(store.path), "log", "--format=%aI|%cI|%s%n%b"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "2024-03-01T08:30:00+00:00|2024-03-01T08:30:00+00:00|Start tracking WorkOptima "
        "Privacy Policy" in log
    )
    assert "Record change to WorkOptima Privacy Policy" in log
    assert "Re-extract WorkOptima Privacy Policy" in log
    assert "Source-URL: https://w.example/p" in log and "Extractor-Version: 1" in log


@pytest.mark.parametrize("bad", ["HEAD", "main", "../x", "-n", "abc", "g" * 40, "1" * 41])
def test_version_ids_must_look_like_commits(versions, bad):
    store = versions
    store.record(NewVersion("A", "T", "x\n", T0, FIRST_RECORD))
    with pytest.raises(UnknownVersionError):
        store.text("A", "T", bad)


def test_version_of_another_policy_is_unknown(versions):
    store = versions
    a = store.record(NewVersion("A", "T", "x\n", T0, FIRST_RECORD))
    store.record(NewVersion("B", "T", "y\n", T0, FIRST_RECORD))
    with pytest.raises(UnknownVersionError, match="B T has no version"):
        store.version("B", "T", a.id)


def test_snapshots_commit_only_changed_bytes(snaps):
    page = Page("https://w.example/p", b"<html>1</html>", "text/html; charset=utf-8")
    first = snaps.record("WorkOptima", "Privacy Policy", [page], T0)
    assert snaps.record("WorkOptima", "Privacy Policy", [page], T0 + timedelta(hours=1)) == first
    pdf = Page("https://w.example/p.pdf", b"%PDF-1.4 ...", "application/pdf")
    both = snaps.record("WorkOptima", "Privacy Policy", [page, pdf], T0 + timedelta(hours=2))
    assert both != first
    latest = snaps.latest("WorkOptima", "Privacy Policy")
    assert latest.id == both and [p.content_type for p in latest.pages] == [
        "text/html; charset=utf-8",
        "application/pdf",
    ]
    assert [p.body for p in latest.pages] == [page.body, pdf.body]
    old = snaps.get(first, "WorkOptima", "Privacy Policy")
    assert old.pages == (page,)
    files = subprocess.run(
        ["git", "-C", str(snaps.path), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert "WorkOptima/Privacy Policy #1.html" in files
    assert "WorkOptima/Privacy Policy #2.pdf" in files


def test_one_writer_at_a_time(tmp_path):
    with WriterLock(tmp_path):
        code = (
            "import sys; from pathlib import Path; from store.lock import WriterLock\n"
            "try:\n    WriterLock(Path(sys.argv[1])).acquire()\n"
            "except Exception as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
        assert proc.returncode == 3
        assert "being written by process" in proc.stdout
    with WriterLock(tmp_path), pytest.raises(WriterLockedError):
        WriterLock(tmp_path).acquire()


def test_recovery_clears_stale_locks_and_half_written_objects(versions):
    store = versions
    store.record(NewVersion("A", "T", "good\n", T0, FIRST_RECORD))
    git_dir = store.path / ".git"
    (git_dir / "index.lock").write_bytes(b"half-written")
    (git_dir / "refs" / "heads" / "main.lock").write_bytes(b"half")
    (git_dir / "objects" / "ab").mkdir(exist_ok=True)
    (git_dir / "objects" / "ab" / "tmp_obj_1_2").write_bytes(b"torn")
    cleaned = store.git.recover()
    assert any("index.lock" in c for c in cleaned)
    assert any("main.lock" in c for c in cleaned)
    assert any("tmp_obj_1_2" in c for c in cleaned)
    assert store.record(NewVersion("A", "T", "next\n", T0 + timedelta(days=1), CHANGE))
    assert len(store.history("A", "T")) == 2


def test_repositories_are_bare_and_never_write_an_empty_commit(versions):
    store = versions
    first = store.record(NewVersion("A", "T", "same\n", T0, FIRST_RECORD))
    assert first is not None
    assert store.record(NewVersion("A", "T", "same\n", T0 + timedelta(days=1), CHANGE)) is None
    assert [v.id for v in store.history("A", "T")] == [first.id]
    assert not (store.path / "A").exists()  # no work tree: git is the only copy
    assert store.current_blob("A", "T") == blob_sha(b"same\n")
    fsck = subprocess.run(
        ["git", "-C", str(store.path), "fsck", "--strict"], capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr


def test_bulk_import_appends_after_existing_history(versions):
    store = versions
    store.record(NewVersion("A", "T", "one\n", T0, FIRST_RECORD))
    count = store.bulk_import(
        [
            NewVersion("A", "T", "two\n", T0 + timedelta(days=1), CHANGE),
            NewVersion('B "quoted" name', "T", "b\n", T0 + timedelta(days=2), FIRST_RECORD),
        ]
    )
    assert count == 2
    assert [v.kind for v in store.history("A", "T")] == ["first_record", "change"]
    assert store.current_text('B "quoted" name', "T") == "b\n"  # the name, not the file name
    assert store.policies() == [("A", "T"), ('B "quoted" name', "T")]
