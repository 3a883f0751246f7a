"""Importing an Open Terms Archive versions repository built here with real git commits."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.cli import main
from archive.tracking.ota_import import SOURCE_SNAPSHOT, import_ota_repo
from archive.tracking.ota_repo import OtaRepoError
from tests.conftest import seed_text

SNAP = "https://github.com/OpenTermsArchive/demo-snapshots/commit/"
SNAP_A = SNAP + "12990e41be5bb3ae451b92440e497b25d1566747"
SNAP_B = SNAP + "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9"
WORK = seed_text("workoptima-privacy-policy.txt")
ESTONIAN = seed_text("backoffice-ee-uldtingimused-et.txt")


class OtaRepo:
    """A versions repository laid out and committed the way the Open Terms Archive engine does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, date: str | None = None) -> str:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path.parent)}
        if date:
            env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        return subprocess.run(
            ["git", "-c", "user.name=OTA Bot", "-c", "user.email=bot@ota.invalid", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def commit(self, subject: str, date: str, files: dict[str, str | None], body: str = "") -> str:
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        self.git("add", "-A")
        message = subject + (f"\n\n{body}" if body else "")
        self.git("commit", "-q", "-m", message, date=date)
        return self.git("rev-parse", "HEAD").strip()


def snapshot_body(url: str) -> str:
    return f"This version was recorded after extracting from snapshot {url}"


TOS = "Café Service/Terms of Service.md"
PRIVACY = "WorkOptima/Privacy Policy.md"
ET = "Backoffice.ee/General Terms.md"


@pytest.fixture
def ota(tmp_path: Path) -> OtaRepo:
    """Both generations of subjects, a README, a deletion, and an upgrade dated in the past."""
    repo = OtaRepo(tmp_path / "demo-versions")
    repo.commit("Initial commit", "2020-01-01T00:00:00+00:00", {"README.md": "# Versions\n"})
    repo.commit(
        "Start tracking Café Service Terms of Service",
        "2020-06-02T06:04:42+00:00",
        {TOS: "Terms v1\n"},
    )
    repo.commit(
        "Update Café Service Terms of Service", "2020-09-15T10:00:00+02:00", {TOS: "Terms v2\n"}
    )
    repo.commit(
        "Refilter Café Service Terms of Service",
        "2021-01-05T08:00:00+00:00",
        {TOS: "Terms v2, re-extracted\n"},
    )
    repo.commit(
        "First record of WorkOptima Privacy Policy",
        "2022-03-01T12:00:00+00:00",
        {PRIVACY: WORK},
        body=snapshot_body(SNAP_A),
    )
    repo.commit(
        "Record new changes of WorkOptima Privacy Policy",
        "2023-04-01T12:00:00+00:00",
        {PRIVACY: WORK.replace("personal data", "personal information")},
        body=snapshot_body(SNAP_B) + "\n\nX-engine-version: 2.3.0",
    )
    # An upgrade takes the date of the snapshot it re-extracted: earlier than the commit before.
    repo.commit(
        "Apply technical or declaration upgrade on WorkOptima Privacy Policy",
        "2023-03-30T09:00:00+00:00",
        {PRIVACY: WORK.replace("personal data", "personal information") + "\nEnd.\n"},
        body=snapshot_body(SNAP_B),
    )
    repo.commit("Update README", "2023-05-01T00:00:00+00:00", {"README.md": "# Versions!\n"})
    repo.commit(
        "First record of Backoffice.ee General Terms", "2023-06-01T00:00:00+03:00", {ET: ESTONIAN}
    )
    repo.commit("Delete Café Service Terms of Service", "2024-01-01T00:00:00+00:00", {TOS: None})
    return repo


def test_import_keeps_dates_kinds_texts_and_provenance(archive, ota: OtaRepo) -> None:
    report = import_ota_repo(archive, ota.path)
    assert report.commits == 7 and report.versions_read == 7
    assert report.histories == 3 and report.deleted == 1
    assert report.ignored_commits == 3  # two README commits, one deletion
    assert report.source == "demo-versions" and report.head == ota.git("rev-parse", "HEAD").strip()

    tos = archive.versions.history("Café Service", "Terms of Service")
    assert [(v.date.isoformat(), v.kind) for v in tos] == [
        ("2020-06-02T06:04:42+00:00", "first_record"),
        ("2020-09-15T10:00:00+02:00", "change"),
        ("2021-01-05T08:00:00+00:00", "reextract"),
    ]
    texts = [archive.versions.text("Café Service", "Terms of Service", v.id) for v in tos]
    assert texts == ["Terms v1\n", "Terms v2\n", "Terms v2, re-extracted\n"]

    privacy = archive.versions.history("WorkOptima", "Privacy Policy")
    assert [(v.date.isoformat(), v.kind) for v in privacy] == [
        ("2022-03-01T12:00:00+00:00", "first_record"),
        ("2023-04-01T12:00:00+00:00", "change"),
        ("2023-03-30T09:00:00+00:00", "reextract"),
    ]
    assert archive.versions.text("WorkOptima", "Privacy Policy", privacy[0].id) == WORK
    first = archive.versions.git.commit_info(privacy[0].id)
    assert first.trailers[SOURCE_SNAPSHOT] == (SNAP_A,)
    ota_sha = ota.git("log", "--format=%H", "--grep=First record of WorkOptima").strip()
    assert first.trailer("Imported-From") == f"demo-versions {ota_sha}"
    assert archive.versions.git.commit_info(privacy[1].id).trailers[SOURCE_SNAPSHOT] == (SNAP_B,)
    # In force in between: the upgrade is dated before the change it follows.
    when = datetime.fromisoformat("2023-03-31T00:00:00+00:00")
    assert archive.versions.at("WorkOptima", "Privacy Policy", when).id == privacy[2].id

    estonian = archive.versions.history("Backoffice.ee", "General Terms")
    assert [v.date.isoformat() for v in estonian] == ["2023-06-01T00:00:00+03:00"]
    assert archive.versions.current_text("Backoffice.ee", "General Terms") == ESTONIAN

    # The archive's own log (what a researcher clones) carries our prefixes.
    subjects = subprocess.run(
        ["git", "-C", str(archive.config.archive_dir), "log", "--reverse", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert subjects[0] == "Start tracking Café Service Terms of Service"
    assert subjects[2] == "Re-extract Café Service Terms of Service"
    assert len(subjects) == 7


def test_second_import_writes_only_new_commits(archive, ota: OtaRepo) -> None:
    assert import_ota_repo(archive, ota.path).commits == 7
    again = import_ota_repo(archive, ota.path)
    assert again.commits == 0
    assert again.skipped_present + again.skipped_identical == again.versions_read == 7
    head = archive.versions.head()

    ota.commit(
        "Record new changes of Backoffice.ee General Terms",
        "2024-02-01T00:00:00+00:00",
        {ET: ESTONIAN + "\nUus punkt.\n"},
    )
    ota.commit(
        "First record of Café Service Terms of Service",
        "2024-03-01T00:00:00+00:00",
        {TOS: "Terms v2, re-extracted\n"},
    )  # tracked again, same text as before
    ota.commit(
        "First record of Café Service Privacy Policy",
        "2024-03-02T00:00:00+00:00",
        {"Café Service/Privacy Policy.md": "Privacy v1\n"},
    )
    third = import_ota_repo(archive, ota.path)
    assert third.commits == 2
    assert len(archive.versions.history("Café Service", "Terms of Service")) == 3
    new = archive.versions.log(since=head)
    assert [(v.service, v.type, v.kind) for v in new] == [
        ("Backoffice.ee", "General Terms", "change"),
        ("Café Service", "Privacy Policy", "first_record"),
    ]


def test_history_before_tracking_already_in_the_archive(archive, ota: OtaRepo) -> None:
    """Versions the archive recorded itself are kept; the repository fills in around them."""
    from store.git.versions import NewVersion

    archive.versions.record(
        NewVersion(
            service="WorkOptima",
            type="Privacy Policy",
            text=WORK,
            kind="first_record",
            date=datetime.fromisoformat("2022-03-01T12:00:00+00:00"),
            urls=("https://workoptima.example/privacy",),
        )
    )
    report = import_ota_repo(archive, ota.path)
    assert report.commits == 6 and report.skipped_present + report.skipped_identical == 1
    kinds = [v.kind for v in archive.versions.history("WorkOptima", "Privacy Policy")]
    assert kinds == ["first_record", "change", "reextract"]


def test_not_a_repository_is_a_clear_error(archive, tmp_path: Path) -> None:
    with pytest.raises(OtaRepoError, match="not a git repository"):
        import_ota_repo(archive, tmp_path)
    empty = OtaRepo(tmp_path / "empty")
    report = import_ota_repo(archive, empty.path)
    assert report.commits == 0 and report.commits_walked == 0


def test_cli_import_ota_repo(tmp_path: Path, ota: OtaRepo) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config), "import-ota-repo", str(ota.path)])
    assert result.exit_code == 0, result.output
    assert "7 commits written" in result.output
    assert "10 commits walked" in result.output
    again = runner.invoke(main, ["--config", str(config), "import-ota-repo", str(ota.path)])
    assert again.exit_code == 0 and "0 commits written" in again.output
    missing = runner.invoke(main, ["--config", str(config), "import-ota-repo", str(tmp_path)])
    assert missing.exit_code == 1 and "not a git repository" in missing.output
