"""``policy-archive run``: the scheduler, the alert worker and the web UI in one process."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from archive.app import Archive
from archive.config import Config
from archive.fetch import Fetcher
from archive.pipeline import Pipeline
from archive.scheduler import Scheduler

log = logging.getLogger(__name__)


def run_archive(
    config: Config, *, web: bool = True, stop: threading.Event | None = None, create: bool = True
) -> None:
    """Track every policy on schedule (and serve the UI) until ``stop`` is set or SIGINT/TERM."""
    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:

        def _stop(signum: int, frame: FrameType | None) -> None:
            log.warning("stopping (signal %d)", signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    archive = Archive.open(config, writer=True, create=create)
    fetcher = Fetcher(config.fetch)
    scheduler = Scheduler(Pipeline(archive, fetcher))
    server = server_thread = worker = None
    try:
        from archive.notify import Worker

        worker = Worker(archive)
        worker.start()
        scheduler.start()
        if web:
            from webui import create_app
            from webui.server import make_server

            server = make_server(
                create_app(config, archive=archive),
                config.web.host,
                config.web.port,
                threads=config.web.threads,
                connection_limit=config.web.connection_limit,
            )
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
