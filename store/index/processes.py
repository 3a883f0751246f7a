"""Worker processes of an index rebuild end with the process that started them (both engines).

Linux's parent-death signal where there is one, else a thread that watches the parent, so a
killed rebuild leaves no worker behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
WATCH_PARENT_EVERY = 0.5


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the process that started it) ends, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # it died before the signal was armed
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(WATCH_PARENT_EVERY)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
