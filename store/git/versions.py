"""The versions repository: one Markdown file per policy, one commit per observed change.

Commit subjects have fixed prefixes (see docs/decisions/0002-commit-format.md):
``Start tracking <Service> <Type>``, ``Record change to <Service> <Type>``,
``Re-extract <Service> <Type>``; metadata lives in git trailers; author and committer dates
are the observation time, so ``git log`` is the archive's timeline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from store.errors import StoreError, UnknownVersionError
from store.git.repository import SHA_RE, Commit, GitStore, blob_sha
from store.paths import policy_path, split_policy_path

FIRST_RECORD, CHANGE, REEXTRACT = "first_record", "change", "reextract"
KINDS = (FIRST_RECORD, CHANGE, REEXTRACT)
PREFIXES = {FIRST_RECORD: "Start tracking ", CHANGE: "Record change to ", REEXTRACT: "Re-extract "}


def kind_of(subject: str) -> str:
    for kind, prefix in PREFIXES.items():
        if subject.startswith(prefix):
            return kind
    return CHANGE


@dataclass(frozen=True)
class Version:
    """One recorded version of a policy. ``id`` is an opaque version id (a commit SHA)."""

    id: str
    service: str
    type: str
    date: datetime
    kind: str
    url: str | None = None
    snapshot: str | None = None
    content_type: str | None = None
    extractor_version: str | None = None
    imported_from: str | None = None

    @property
    def imported(self) -> bool:
        """True for versions written by a bulk import (history, not news: never alerted)."""
        return self.imported_from is not None

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)

    def as_json(self) -> dict[str, str | None]:
        """The ``history --json`` shape."""
        return {
            "version": self.id,
            "date": self.date.isoformat(),
            "kind": self.kind,
            "url": self.url,
        }


@dataclass(frozen=True)
class NewVersion:
    """A version to write (used by ``record`` and bulk import)."""

    service: str
    type: str
    text: str
    date: datetime
    kind: str = CHANGE
    urls: tuple[str, ...] = ()
    snapshot: str | None = None
    content_type: str | None = None
    extractor_version: str | None = None
    fetched_at: datetime | None = None
    extra_trailers: tuple[tuple[str, str], ...] = ()

    def trailers(self) -> list[tuple[str, str]]:
        out = [("Source-URL", u) for u in self.urls]
        out.append(("Fetched-At", (self.fetched_at or self.date).isoformat()))
        if self.snapshot:
            out.append(("Snapshot", self.snapshot))
        if self.content_type:
            out.append(("Content-Type", self.content_type))
        if self.extractor_version:
            out.append(("Extractor-Version", self.extractor_version))
        out.extend(self.extra_trailers)
        return out


SERVICE_TRAILER, TYPE_TRAILER = "Service", "Document-Type"


def identity_trailers(service: str, type_: str) -> list[tuple[str, str]]:
    """Trailers naming the policy, written only when its file name does not spell its name
    (``Acme: EU`` is stored as ``Acme- EU.md``): the name a user wrote stays the key."""
    if split_policy_path(policy_path(service, type_)) == (service, type_):
        return []
    return [(SERVICE_TRAILER, service), (TYPE_TRAILER, type_)]


def _version_from_commit(
    commit: Commit, path: str, aliases: Mapping[str, tuple[str, str]] | None = None
) -> Version | None:
    names = split_policy_path(path)
    if names is None:
        return None
    service, type_ = commit.trailer(SERVICE_TRAILER), commit.trailer(TYPE_TRAILER)
    if service and type_ and policy_path(service, type_) == path:
        names = (service, type_)
    elif aliases and path in aliases:
        names = aliases[path]
    return Version(
        id=commit.sha,
        service=names[0],
        type=names[1],
        date=commit.date,
        kind=kind_of(commit.subject),
        url=commit.trailer("Source-URL"),
        snapshot=commit.trailer("Snapshot"),
        content_type=commit.trailer("Content-Type"),
        extractor_version=commit.trailer("Extractor-Version"),
        imported_from=commit.trailer("Imported-From"),
    )


class VersionStore(GitStore):
    """Read and append versions. Reads are cached per HEAD and safe from several threads."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        aliases: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """``aliases`` maps file paths to the (service, type) they hold, for versions written
        before commits named their policy in trailers (see :func:`identity_trailers`)."""
        super().__init__(path, create=create)
        self.aliases = dict(aliases or {})
        self._cache_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._head: str | None = None
        self._all: list[Version] = []
        self._by_policy: dict[tuple[str, str], list[Version]] = {}
        self._by_id: dict[str, Version] = {}
        self._position: dict[str, int] = {}  # version id → its first place in _all

    # ------------------------------------------------------------------ cache

    def _refresh(self) -> None:
        with self._cache_lock:  # HEAD read under the lock: the cache never moves backwards
            head = self.git.head()
            if head == self._head:
                return
            since = self._head if self._head and self.git.is_ancestor(self._head) else None
            if since is None:
                self._all, self._by_policy, self._by_id, self._position = [], {}, {}, {}
            for commit in self.git.log(since=since, names=True, until=head):
                for path in commit.paths:
                    version = _version_from_commit(commit, path, self.aliases)
                    if version is None:
                        continue
                    self._position.setdefault(version.id, len(self._all))
                    self._all.append(version)
                    self._by_policy.setdefault(version.key, []).append(version)
                    self._by_id[version.id] = version
            self._head = head

    # ------------------------------------------------------------------ reading

    def policies(self) -> list[tuple[str, str]]:
        """Every (service, document type) with at least one version, sorted."""
        self._refresh()
        return sorted(self._by_policy)

    def history(self, service: str, type_: str) -> list[Version]:
        """Versions of one policy, oldest first (commit order)."""
        self._refresh()
        return list(self._by_policy.get((service, type_), ()))

    def current(self, service: str, type_: str) -> Version | None:
        self._refresh()
        versions = self._by_policy.get((service, type_))
        return versions[-1] if versions else None

    def version(self, service: str, type_: str, version_id: str) -> Version:
        """The version ``version_id`` (a full or abbreviated id) of one policy."""
        if not isinstance(version_id, str) or not SHA_RE.fullmatch(version_id):
            raise UnknownVersionError(
                f"{version_id!r} is not a version id (expected 7 to 40 hexadecimal characters)"
            )
        self._refresh()
        found = self._by_id.get(version_id)
        if found is None and len(version_id) < 40:
            found = next(
                (
                    v
                    for v in self._by_policy.get((service, type_), ())
                    if v.id.startswith(version_id)
                ),
                None,
            )
        if found is None or found.key != (service, type_):
            raise UnknownVersionError(f"{service} {type_} has no version {version_id}")
        return found

    def text(self, service: str, type_: str, version_id: str) -> str:
        version = self.version(service, type_, version_id)
        data = self.git.read(version.id, policy_path(service, type_))
        if data is None:
            raise StoreError(f"version {version.id} of {service} {type_} has no file")
        return data.decode("utf-8")

    def read_text_at(self, version: Version) -> str:
        """The text of a version already in hand (from :meth:`log` or :meth:`history`).

        Reads the blob straight away: unlike :meth:`text`, it does not look at HEAD first,
        which is most of the cost of reading every version (an export).
        """
        data = self.git.read(version.id, policy_path(version.service, version.type))
        if data is None:
            raise StoreError(
                f"version {version.id} of {version.service} {version.type} has no file"
            )
        return data.decode("utf-8")

    def current_text(self, service: str, type_: str) -> str | None:
        version = self.current(service, type_)
        return None if version is None else self.text(service, type_, version.id)

    def at(self, service: str, type_: str, when: datetime) -> Version | None:
        """The version in force at ``when``: the latest one observed at or before it."""
        best = None
        for version in self.history(service, type_):
            if version.date <= when and (best is None or version.date >= best.date):
                best = version
        return best

    def log(self, since: str | None = None) -> list[Version]:
        """Every version across policies, oldest first; only those after ``since`` if given."""
        self._refresh()
        if since is None:
            return list(self._all)
        if since not in self._by_id:
            if not self.git.is_ancestor(since):
                raise UnknownVersionError(f"{since} is not in the archive's history")
            return [
                v
                for c in self.git.log(since=since, names=True)
                for p in c.paths
                if (v := _version_from_commit(c, p, self.aliases)) is not None
            ]
        with self._cache_lock:
            return self._all[self._position[since] + 1 :]

    def valid_to(self, version: Version) -> datetime | None:
        """When ``version`` stopped being current (the next version's date), None if current."""
        versions = self.history(version.service, version.type)
        for i, v in enumerate(versions):
            if v.id == version.id:
                return versions[i + 1].date if i + 1 < len(versions) else None
        return None

    # ------------------------------------------------------------------ writing

    def current_blob(self, service: str, type_: str) -> str | None:
        """The git blob id of the policy's text in HEAD, or None if it has none. Git decides
        what changed: compare ``blob_sha(new text)`` with this (no file is read)."""
        return self.git.blob_at_head(policy_path(service, type_))

    def record(self, new: NewVersion) -> Version | None:
        """Commit one version; None (and no commit) when HEAD already holds exactly this text.

        The one write path for versions: the pipeline, imports and re-extraction all call it.
        """
        path = policy_path(new.service, new.type)
        subject = PREFIXES[new.kind] + f"{new.service} {new.type}"
        trailers = new.trailers() + identity_trailers(new.service, new.type)
        with self._write_lock:
            parent = self.git.head()
            sha = self.git.commit_files(
                {path: new.text.encode("utf-8")}, subject, trailers, new.date
            )
            if sha is None:
                return None
            version = Version(
                id=sha,
                service=new.service,
                type=new.type,
                date=new.date.replace(microsecond=0),
                kind=new.kind,
                url=new.urls[0] if new.urls else None,
                snapshot=new.snapshot,
                content_type=new.content_type,
                extractor_version=new.extractor_version,
                imported_from=dict(new.extra_trailers).get("Imported-From"),
            )
            with self._cache_lock:
                if self._head is not None and self._head == parent:
                    self._position[version.id] = len(self._all)
                    self._all.append(version)  # the cache follows without a `git log`
                    self._by_policy.setdefault(version.key, []).append(version)
                    self._by_id[version.id] = version
                    self._head = sha
        self.git.maybe_pack()
        self._refresh()
        return self._by_id.get(sha, version)

    def bulk_import(self, versions: Iterable[NewVersion]) -> int:
        """Append many versions in order through :meth:`record`; returns commits written.

        The caller orders the versions and removes those already recorded; a version whose
        text equals its policy's current text writes nothing.
        """
        return sum(1 for new in versions if self.record(new) is not None)

    def blob_ids(self, service: str, type_: str) -> list[tuple[Version, str]]:
        """(version, blob id of its text) for one policy, for idempotent imports."""
        path = policy_path(service, type_)
        out = []
        for version in self.history(service, type_):
            data = self.git.read(version.id, path)
            out.append((version, blob_sha(data or b"")))
        return out
