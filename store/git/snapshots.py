"""The snapshots repository: the raw fetched bytes (HTML, PDF), kept apart from the versions.

Same layout as the versions repository with the original extension:
``<Service>/<Type>.html``; a document combined from several pages stores one file per page,
``<Service>/<Type> #1.html``, ``<Service>/<Type> #2.pdf``, ... A snapshot is committed only
when its bytes change, so re-extraction (``policy-archive reextract``) can run on the latest
snapshot without fetching again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from store.git.repository import GitStore, blob_sha
from store.paths import safe_component

EXTENSIONS = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "application/xml": ".xml",
    "text/xml": ".xml",
}


def extension_for(content_type: str) -> str:
    mime = (content_type or "").split(";")[0].strip().lower()
    return EXTENSIONS.get(mime, ".html" if not mime else ".bin")


@dataclass(frozen=True)
class Page:
    """One fetched page of a document."""

    url: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Snapshot:
    id: str
    date: datetime
    pages: tuple[Page, ...]


class SnapshotStore(GitStore):
    """Read and append snapshots (the raw bytes of each fetch that changed them)."""

    @staticmethod
    def page_paths(service: str, type_: str, pages: Sequence[Page]) -> list[str]:
        base = f"{safe_component(service)}/{safe_component(type_)}"
        if len(pages) == 1:
            return [base + extension_for(pages[0].content_type)]
        return [f"{base} #{i}{extension_for(p.content_type)}" for i, p in enumerate(pages, 1)]

    def _policy_files(self, service: str, type_: str) -> dict[str, str]:
        """``{path: blob id}`` of the policy's page files in HEAD (from the writer's tree)."""
        folder = safe_component(service)
        stem = safe_component(type_)
        return {
            f"{folder}/{name}": blob
            for name, blob in self.git.files_at_head(folder).items()
            if name.rsplit(".", 1)[0] == stem or name.startswith(stem + " #")
        }

    def record(self, service: str, type_: str, pages: Sequence[Page], when: datetime) -> str:
        """Commit the pages if their bytes changed; return the snapshot id holding these bytes."""
        paths = self.page_paths(service, type_, pages)
        existing = self._policy_files(service, type_)
        wanted = {rel: blob_sha(page.body) for rel, page in zip(paths, pages, strict=True)}
        if existing == wanted:
            latest = self.latest_id(service, type_)
            if latest:
                return latest
        trailers = [("Source-URL", p.url) for p in pages]
        trailers += [("Content-Type", p.content_type) for p in pages]
        trailers.append(("Fetched-At", when.isoformat()))
        sha = self.git.commit_files(
            {rel: page.body for rel, page in zip(paths, pages, strict=True)},
            f"Record snapshot of {service} {type_}",
            trailers,
            when,
            remove=[stale for stale in existing if stale not in wanted],
        )
        self.git.maybe_pack()
        return sha or self.latest_id(service, type_) or ""

    def latest_id(self, service: str, type_: str) -> str | None:
        files = self._policy_files(service, type_)
        if not files or self.git.head() is None:
            return None
        return self.git.last_commit_touching(list(files))

    def get(self, snapshot_id: str, service: str, type_: str) -> Snapshot | None:
        """The pages of a policy as stored in snapshot ``snapshot_id``."""
        info = self.git.commit_info(snapshot_id)
        if info is None:
            return None
        urls = info.trailers.get("Source-URL", ())
        types = info.trailers.get("Content-Type", ())
        base = f"{safe_component(service)}/{safe_component(type_)}"
        names = sorted(
            (
                p
                for p in self.git.list_files(info.sha, safe_component(service))
                if p.rsplit(".", 1)[0] == base or p.startswith(base + " #")
            ),
            key=_page_order,
        )
        if not names:
            return None
        pages = []
        for i, path in enumerate(names):
            body = self.git.read(info.sha, path) or b""
            pages.append(
                Page(
                    url=urls[i] if i < len(urls) else "",
                    body=body,
                    content_type=types[i] if i < len(types) else "",
                )
            )
        return Snapshot(id=info.sha, date=info.date, pages=tuple(pages))

    def latest(self, service: str, type_: str) -> Snapshot | None:
        latest = self.latest_id(service, type_)
        return None if latest is None else self.get(latest, service, type_)

    def files_by_snapshot(self) -> dict[str, tuple[str, ...]]:
        """``{snapshot id: paths that commit wrote}`` for every snapshot, in one ``git log``."""
        return {c.sha: c.paths for c in self.git.log(names=True)}

    def exists(self, snapshot_id: str) -> bool:
        return self.git.is_ancestor(snapshot_id)

    def body_ids(self, pages: Sequence[Page]) -> list[str]:
        return [blob_sha(p.body) for p in pages]


def _page_order(path: str) -> int:
    if " #" not in path:
        return 0
    number = path.rsplit(" #", 1)[1].split(".", 1)[0]
    return int(number) if number.isdigit() else 0
