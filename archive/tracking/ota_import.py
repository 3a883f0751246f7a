"""Import an Open Terms Archive *versions* git repository, keeping its timeline.

The repository's first-parent history is walked oldest first. A commit whose subject starts
with one of the engine's prefixes (``First record of``, ``Record new changes of``, ``Apply
technical or declaration upgrade on``, and the older ``Start tracking``, ``Update``,
``Refilter``) becomes one version per ``<Service>/<Terms type>.md`` file it adds or modifies,
dated at the commit's author date (Open Terms Archive's fetch date); technical upgrades become
``Re-extract`` commits, which alert nobody. Other commits (README edits, merges) are counted
and left out.

Skipping follows the JSONL importer (:mod:`archive.importer`): a text identical to the policy's
previous one is skipped, and so is a version the archive already holds (same policy, date and
text), so importing the same repository twice writes nothing and importing it again after it
gained commits writes only the new ones. Git gives each file's blob id, so the decision is
made without reading texts: only the versions written are read.

Each version carries ``Imported-From: <repository> <commit>`` and one ``Source-Snapshot``
trailer per snapshot the engine named in the commit body, so it can be traced to the
published record and its snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from archive.app import Archive
from archive.tracking.importer import IMPORTED_FROM, ImportReport
from archive.tracking.ota_repo import OtaCommit, OtaRepository, split_document_path
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion
from store.paths import check_collisions, policy_path, safe_component

SOURCE_SNAPSHOT = "Source-Snapshot"
# stage ('reading' the repository's history, or 'writing' versions), done, total
StageProgress = Callable[[str, int, int], None]


@dataclass
class OtaImportReport(ImportReport):
    """What an import did; ``versions_read`` counts the policy files commits recorded."""

    source: str = ""
    head: str | None = None
    commits_walked: int = 0
    ignored_commits: int = 0
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class PlannedVersion:
    """A version to write, without its text (read from the repository when written)."""

    service: str
    type: str
    date: datetime
    kind: str
    blob: str
    commit: str
    snapshots: tuple[str, ...]


@dataclass
class _Seen:
    """What the archive holds of one policy, extended as the walk plans versions."""

    present: set[tuple[datetime, str]]
    last_blob: str | None

    @property
    def have_any(self) -> bool:
        return self.last_blob is not None


class _Planner:
    """Decides, commit by commit, which file changes become versions."""

    def __init__(self, archive: Archive, report: OtaImportReport) -> None:
        self.archive = archive
        self.report = report
        self.seen: dict[tuple[str, str], _Seen] = {}
        self.planned: list[PlannedVersion] = []

    def _seen(self, key: tuple[str, str]) -> _Seen:
        if key not in self.seen:
            policy_path(*key)  # raises UnsafeNameError before anything is written
            existing = self.archive.versions.blob_ids(*key)
            self.seen[key] = _Seen(
                present={(v.date, blob) for v, blob in existing},
                last_blob=existing[-1][1] if existing else None,
            )
        return self.seen[key]

    def add(self, commit: OtaCommit) -> None:
        documents = [
            (names, change)
            for change in commit.files
            if (names := split_document_path(change.path)) is not None
        ]
        kind = commit.kind
        if kind is None or not documents:
            self.report.ignored_commits += 1
        for (service, type_), change in documents:
            if change.status == "D":
                self.report.deleted += 1
                continue
            if kind is None:
                continue
            key = (safe_component(service), safe_component(type_))
            self.report.policies.add(key)
            self.report.versions_read += 1
            seen = self._seen(key)
            if change.blob == seen.last_blob:
                self.report.skipped_identical += 1
                continue
            first = not seen.have_any
            seen.last_blob = change.blob
            if (commit.date, change.blob) in seen.present:
                self.report.skipped_present += 1
                continue
            self.planned.append(
                PlannedVersion(
                    service=key[0],
                    type=key[1],
                    date=commit.date,
                    kind=FIRST_RECORD
                    if first
                    else (REEXTRACT if kind == "technical_upgrade" else CHANGE),
                    blob=change.blob,
                    commit=commit.sha,
                    snapshots=commit.snapshot_refs(),
                )
            )


def plan_import(
    archive: Archive,
    repo: OtaRepository,
    report: OtaImportReport,
    progress: StageProgress | None = None,
) -> list[PlannedVersion]:
    """Walk the repository and list the versions to write (metadata only), oldest first."""
    total = repo.count_commits()
    planner = _Planner(archive, report)
    for commit in repo.commits():
        planner.add(commit)
        report.commits_walked += 1
        if progress is not None:
            progress("reading", report.commits_walked, total)
    check_collisions([*report.policies, *archive.versions.policies()])
    return planner.planned


def _new_versions(
    repo: OtaRepository,
    planned: list[PlannedVersion],
    source: str,
    progress: StageProgress | None,
) -> Iterator[NewVersion]:
    for done, item in enumerate(planned, 1):
        yield NewVersion(
            service=item.service,
            type=item.type,
            text=repo.blob(item.blob).decode("utf-8", "replace"),
            date=item.date,
            kind=item.kind,
            extra_trailers=(
                (IMPORTED_FROM, f"{source} {item.commit}"),
                *((SOURCE_SNAPSHOT, ref) for ref in item.snapshots),
            ),
        )
        if progress is not None:
            progress("writing", done, len(planned))


def import_ota_repo(
    archive: Archive, path: Path, progress: StageProgress | None = None
) -> OtaImportReport:
    """Import the versions repository at ``path`` into ``archive`` (opened as the writer)."""
    with OtaRepository(Path(path)) as repo:
        report = OtaImportReport(source=repo.label(), head=repo.head())
        planned = plan_import(archive, repo, report, progress)
        report.histories = len(report.policies)
        if planned:
            report.commits = archive.versions.bulk_import(
                _new_versions(repo, planned, report.source, progress)
            )
    archive.catch_up()
    return report
