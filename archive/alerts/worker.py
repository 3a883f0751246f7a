"""The background delivery thread of ``policy-archive run``.

It delivers what is due, then sleeps until the next alert falls due (at most ``interval``
seconds), and wakes at once when an event queues new alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from archive.alerts.delivery import deliver_pending
from archive.tracking.events import Event

if TYPE_CHECKING:
    from archive.app import Archive

log = logging.getLogger(__name__)

RUN_BUDGET = 60.0


class Worker:
    def __init__(self, archive: Archive, *, interval: float = 30.0) -> None:
        self.archive = archive
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        archive.events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self._wake.set()  # the notifier (subscribed earlier) has already queued the alerts

    def wake(self) -> None:
        """Deliver now (e.g. after a CLI command queued a confirmation email)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _next_wait(self) -> float:
        rows = self.archive.state.query(
            "SELECT MIN(next_attempt) AS due FROM notify_outbox WHERE status = 'pending'"
        )
        due = rows[0]["due"] if rows else None
        if due is None:
            return self.interval
        return min(max(due - time.time(), 0.05), self.interval)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                report = deliver_pending(self.archive, until=time.monotonic() + RUN_BUDGET)
                if report.delivered or report.failed:
                    log.info("alerts: %s", report)
                wait = self._next_wait()
            except Exception:  # the thread must outlive one bad run; the traceback is logged
                log.exception("alert delivery run failed; trying again in %.0f s", self.interval)
                wait = self.interval
            self._wake.wait(wait)
