"""Index files read straight from a memory map, never copied.

whoosh-reloaded 2.7.5 maps a segment's compound file, then opens each file inside it (postings,
term index, columns) as ``BytesIO(memoryview)``, which copies the whole file into private
memory: every searcher held ~60 MB of copies on the OTA corpus's 59 MB index, on top of the
mapped pages. :class:`MappedStorage` (used for reading only) hands whoosh files that read
from one shared read-only map of each file, so resident memory is the page cache's, counted
once however many searchers a process opens. A :class:`MappedFile` has a position, like any
file: one searcher is used by one thread at a time (see :mod:`store.index.whoosh.readers`).
"""

from __future__ import annotations

import mmap
import os
from array import array
from typing import Any

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import _SIZEMAP, BufferFile, StructFile
from whoosh.system import IS_LITTLE


class _View:
    """The file interface (read, readline, readinto, seek, tell) over part of a map."""

    def __init__(self, source: mmap.mmap, start: int, length: int) -> None:
        self._source = source
        self._start = start
        self._end = start + length
        self._pos = start

    def read(self, size: int | None = -1) -> bytes:
        end = self._end if size is None or size < 0 else min(self._pos + size, self._end)
        data = self._source[self._pos : end]
        self._pos = max(self._pos, end)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        newline = self._source.find(b"\n", self._pos, self._end)
        end = self._end if newline < 0 else newline + 1
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        return self.read(end - self._pos)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: self._start, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = max(self._start, base + offset)
        return self._pos - self._start

    def tell(self) -> int:
        return self._pos - self._start

    def close(self) -> None:
        """The map stays open for the other files that read from it (freed with the last)."""


class MappedFile(StructFile):
    """A whoosh file that reads ``length`` bytes of a map from ``start``."""

    def __init__(self, source: mmap.mmap, start: int, length: int, name: str | None) -> None:
        super().__init__(_View(source, start, length), name=name)
        self._source = source
        self._start = start
        self._length = length

    def get(self, position: int, length: int) -> bytes:
        start = self._start + position
        return self._source[start : min(start + length, self._start + self._length)]

    def get_array(self, position: int, typecode: str, length: int) -> array:
        values = array(typecode)
        values.frombytes(self.get(position, length * _SIZEMAP[typecode]))
        if IS_LITTLE:
            values.byteswap()
        return values

    def subset(self, position: int, length: int, name: str | None = None) -> MappedFile:
        return MappedFile(self._source, self._start + position, length, name or self._name)


class MappedStorage(FileStorage):
    """A folder of index files opened as read-only maps (for searchers; writers use whoosh's
    own storage). ``supports_mmap`` is False so that whoosh asks our file for the sub-files
    of a compound segment (``subset``) instead of copying them out of its own map."""

    def __init__(self, path: str) -> None:
        super().__init__(path, supports_mmap=False, readonly=True)

    def open_file(self, name: str, **kwargs: Any) -> StructFile:
        path = os.path.join(self.folder, name)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not size:
                return BufferFile(memoryview(b""), name=name)
            source = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return MappedFile(source, 0, size, name)
