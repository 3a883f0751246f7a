"""Change alerts: email, signed webhooks, Apprise; subscriptions and saved searches.

Alerts are listeners on the pipeline's events. Each alert is written to an outbox in SQLite
right after its commit (and caught up from git after a crash), then delivered by
:func:`deliver_pending` or the :class:`Worker` thread with retries, so a failing or slow
receiver never breaks or slows tracking. See docs/decisions/0004-alert-outbox.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from archive.alerts.delivery import DeliveryReport, deliver_pending
from archive.alerts.errors import NotifyError
from archive.alerts.listener import Notifier, parse_saved_search
from archive.alerts.outbox import Outbox
from archive.alerts.schema import ensure_schema
from archive.alerts.subscriptions import Subscriptions
from archive.alerts.worker import Worker
from archive.errors import ConfigError

if TYPE_CHECKING:
    from archive.app import Archive

__all__ = ["LISTENERS", "DeliveryReport", "Worker", "attach", "deliver_pending"]


def attach(archive: Archive) -> None:
    """Wire alerts into a writer archive: tables, config subscriptions, listener, catch-up."""
    ensure_schema(archive.state)
    where = f"{archive.config.path or 'config'}: [[alert]]"
    try:
        for alert in archive.config.alerts:
            if alert.query:
                parse_saved_search(alert.query)
        Subscriptions(archive.state).sync_config(archive.config.alerts)
    except NotifyError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    Outbox(archive.state).reset_leases()
    notifier = Notifier(archive)
    archive.events.subscribe(notifier.on_event)
    archive.on_catch_up(notifier.catch_up)


LISTENERS: tuple[Callable[[Archive], None], ...] = (attach,)
"""What a writer that records changes attaches (``Archive.open(..., listeners=LISTENERS)``)."""
