"""One writer process at a time: an advisory lock file in the data directory.

``flock`` is released by the kernel when the holder dies, so a crashed writer never leaves a
lock that blocks the next start (unlike git's own ``*.lock`` files, which recovery clears).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from store.errors import WriterLockedError

LOCK_NAME = ".writer.lock"


class WriterLock:
    """Exclusive, non-blocking lock on ``data_dir/.writer.lock``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> WriterLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise WriterLockedError(
                f"the archive in {self.path.parent} is being written by process {holder}; "
                "wait for it to finish (or stop `policy-archive run`) and try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
