"""A rebuilt index replaces the old one in one step.

A rebuild writes a whole new index into a fresh folder beside the current one
(``index.new-<pid>``), never reading the old folder (which may be damaged), then swaps the two
folders: on Linux in one ``renameat2(RENAME_EXCHANGE)`` call, so a reader finds either the old
index or the new one, never none; elsewhere by two renames. Readers that still have the old
index open keep answering from its files until they notice the swap (the folder's inode
changed) and open the new one. Folders a killed rebuild left behind are removed by the next.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from pathlib import Path

from store.errors import StoreError

log = logging.getLogger(__name__)

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def fresh_folder(path: Path) -> Path:
    """An empty folder for a new index beside ``path`` (after clearing dead rebuilds')."""
    clear_leftovers(path)
    new = path.with_name(f"{path.name}.new-{os.getpid()}")
    try:
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
    except OSError as exc:
        raise StoreError(f"cannot create {new} for the new search index: {exc}") from None
    return new


def clear_leftovers(path: Path) -> None:
    """Remove ``<index>.new-<pid>`` and ``<index>.old-<pid>`` folders of dead processes."""
    if not path.parent.is_dir():
        return
    for other in path.parent.iterdir():
        name, _, pid = other.name.rpartition("-")
        if name not in (f"{path.name}.new", f"{path.name}.old") or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and _alive(int(pid)):
            continue
        log.info("removing %s, left by an interrupted rebuild of the search index", other)
        shutil.rmtree(other, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_in(new: Path, path: Path) -> None:
    """Make the index in ``new`` the one at ``path``; the old one is deleted."""
    try:
        if not path.exists():
            os.rename(new, path)
        elif _exchange(new, path):
            shutil.rmtree(new)  # it now holds the old index
        else:
            old = path.with_name(f"{path.name}.old-{os.getpid()}")
            os.rename(path, old)
            os.rename(new, path)
            shutil.rmtree(old, ignore_errors=True)
        _sync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"cannot put the new search index in place at {path}: {exc}") from None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically; False where the system cannot (then nothing changed)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    path_t = ctypes.c_char_p
    renameat2.argtypes = [ctypes.c_int, path_t, ctypes.c_int, path_t, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
