"""HEAD's tree held in memory by the one writer, so a commit rewrites only the trees of the
folders it changes (no index file, no process).

Folders keep their entries in git's order with each entry already serialised, so writing the
root tree of a 10,000-service archive is one ``join`` and one hash, not a sort.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.git.repository import GitRepo


class Tree:
    """HEAD's tree held in memory by the writer: folder → {name: (mode, id)}.

    Each folder keeps its entries sorted the way git sorts them (a folder's name compares as
    if it ended in "/"), with each entry's serialised bytes, so writing the tree of a folder
    of 10,000 services is one ``join``, not a sort.
    """

    def __init__(self, head: str | None, root: str | None) -> None:
        self.head = head
        self.parent_root = root
        self.dirs: dict[str, dict[str, tuple[bytes, str]]] = {"": {}}
        self.sorted: dict[str, list[bytes]] = {"": []}  # sort keys, in git's order
        self.raw: dict[str, list[bytes]] = {"": []}  # serialised entries, same order
        self.ids: dict[str, str] = {}

    @classmethod
    def load(cls, repo: GitRepo, head: str | None) -> Tree:
        if head is None:
            return cls(None, None)
        out = repo.repo.git.ls_tree("-r", "-t", "-z", "--full-tree", head, stdout_as_string=False)
        root = repo.repo.git.rev_parse(f"{head}^{{tree}}").strip()
        tree = cls(head, root)
        tree.ids[""] = root
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, sha = meta.split(b" ")
            path = raw_path.decode("utf-8", "surrogateescape")
            folder, _, name = path.rpartition("/")
            tree._set(folder, name, mode, sha.decode("ascii"))
            if kind == b"tree":
                tree.ids[path] = sha.decode("ascii")
                tree._ensure(path)
        return tree

    def _ensure(self, folder: str) -> None:
        if folder not in self.dirs:
            self.dirs[folder], self.sorted[folder], self.raw[folder] = {}, [], []

    @staticmethod
    def _key(name: str, mode: bytes) -> bytes:
        return name.encode("utf-8", "surrogateescape") + (b"/" if mode == b"40000" else b"")

    def _set(self, folder: str, name: str, mode: bytes, sha: str) -> None:
        mode = b"40000" if mode == b"040000" else mode
        self._ensure(folder)
        key = self._key(name, mode)
        entry = mode + b" " + name.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(sha)
        keys = self.sorted[folder]
        position = bisect.bisect_left(keys, key)
        if name in self.dirs[folder]:
            self.raw[folder][position] = entry
        else:
            keys.insert(position, key)
            self.raw[folder].insert(position, entry)
        self.dirs[folder][name] = (mode, sha)

    def _delete(self, folder: str, name: str) -> None:
        entry = self.dirs.get(folder, {}).pop(name, None)
        if entry is None:
            return
        position = bisect.bisect_left(self.sorted[folder], self._key(name, entry[0]))
        del self.sorted[folder][position]
        del self.raw[folder][position]

    def blob(self, path: str) -> str | None:
        folder, _, name = path.rpartition("/")
        entry = self.dirs.get(folder, {}).get(name)
        return entry[1] if entry and entry[0] != b"40000" else None

    def files(self, folder: str) -> dict[str, str]:
        return {n: e[1] for n, e in self.dirs.get(folder, {}).items() if e[0] != b"40000"}

    def apply(
        self,
        blobs: Mapping[str, str],
        remove: Iterable[str],
        write: Callable[[bytes, bytes], str],
    ) -> str:
        """Put ``blobs`` (path → blob id) in place, drop ``remove``; write the changed trees.
        Returns the new root tree id."""
        dirty: set[str] = set()
        for path, sha in blobs.items():
            folder, _, name = path.rpartition("/")
            if self.blob(path) == sha:
                continue
            self._set(folder, name, b"100644", sha)
            dirty.add(folder)
        for path in remove:
            folder, _, name = path.rpartition("/")
            if name in self.dirs.get(folder, {}):
                self._delete(folder, name)
                dirty.add(folder)
        if not dirty and "" in self.ids:
            return self.ids[""]
        for folder in sorted(self._with_parents(dirty), key=lambda f: -f.count("/") - (f != "")):
            parent, _, name = folder.rpartition("/")
            if folder and not self.dirs[folder]:
                self._delete(parent, name)
                del self.ids[folder]
                continue
            body = b"".join(self.raw[folder])
            sha = write(b"tree", body)
            self.ids[folder] = sha
            if folder:
                self._set(parent, name, b"40000", sha)
        return self.ids[""]

    @staticmethod
    def _with_parents(folders: Iterable[str]) -> set[str]:
        out = {""}
        for folder in folders:
            while folder:
                out.add(folder)
                folder = folder.rpartition("/")[0]
        return out

    def commit(self, head: str, root: str) -> None:
        self.head, self.parent_root = head, root
