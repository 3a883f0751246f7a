"""``policy-archive run``: the scheduler, the alert worker and (if given) a web server in one
process.

The web server is built by the caller (the CLI) from the opened writer archive, so tracking
never imports the web UI.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from archive.alerts import LISTENERS, Worker
from archive.app import Archive
from archive.config import Config
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from archive.tracking.scheduler import Scheduler

log = logging.getLogger(__name__)


class Server(Protocol):
    """A server that serves until closed (``webui.server.WebServer``)."""

    def run(self) -> None: ...

    def close(self) -> None: ...


ServerFactory = Callable[[Archive], Server]
"""Builds the web server over the writer archive that ``run_archive`` opened."""


def run_archive(
    config: Config,
    *,
    web: ServerFactory | None = None,
    stop: threading.Event | None = None,
    create: bool = True,
) -> None:
    """Track every policy on schedule (and serve ``web(archive)``, if given) until ``stop`` is
    set or SIGINT/TERM. The writer attaches the alerts and runs their worker."""
    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:

        def _stop(signum: int, frame: FrameType | None) -> None:
            log.warning("stopping (signal %d)", signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    archive = Archive.open(config, writer=True, create=create, listeners=LISTENERS)
    fetcher = Fetcher(config.fetch)
    scheduler = Scheduler(Pipeline(archive, fetcher))
    server: Server | None = None
    server_thread = worker = None
    try:
        worker = Worker(archive)
        worker.start()
        scheduler.start()
        if web is not None:
            server = web(archive)
            server_thread = threading.Thread(target=server.run, name="web", daemon=True)
            server_thread.start()
            log.warning("web UI at http://%s:%d/", config.web.host, config.web.port)
        log.warning("tracking %d policies; stop with Ctrl-C", len(config.policies))
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        if worker is not None:
            worker.stop()
        if server is not None:
            server.close()
        if server_thread is not None:
            server_thread.join(timeout=10)
        fetcher.close()
        archive.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
