"""Helpers the test modules share: recording versions as the pipeline does, the CLI, a
served app and the documents and config tables several modules use.

Plain functions and classes (the fixtures are in ``conftest.py``): each writes real commits
into a real archive, runs the real ``policy-archive`` command through click's CliRunner, or
serves the real app on 127.0.0.1 with the production server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner, Result
from flask import Flask

from archive.app import Archive
from archive.cli import main
from archive.config import Config, load_config
from archive.tracking.events import VersionRecorded
from store.git.repository import now_utc
from store.git.snapshots import Page
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion, Version
from webui import close_app
from webui.server import WebServer, make_server

if TYPE_CHECKING:
    from tests.smtp_server import SmtpServer

SERVICE, TYPE = "WorkOptima", "Privacy Policy"
URL = "https://workoptima.example/privacy"
SETEXT_POLICY = """Privacy Policy
==============

Welcome to our privacy policy. It explains what we collect and why.

1\\. Contact
-----------

Write to privacy@workoptima.com with any question about your data.

2\\. Data retention
-------------------

We keep account data for as long as your account is open.
"""
"""A short policy in the Markdown the extractor writes (setext headings, escaped numbers)."""


def record_version(
    archive: Archive,
    service: str,
    type_: str,
    text: str,
    when: datetime | str,
    kind: str = CHANGE,
    **fields: Any,
) -> Version:
    """Commit one version (``when`` a datetime or ISO text; ``fields`` as in NewVersion)."""
    date = datetime.fromisoformat(when) if isinstance(when, str) else when
    version = archive.versions.record(NewVersion(service, type_, text, date, kind, **fields))
    assert version is not None, f"{service} / {type_} already holds this text"
    return version


def record_fetched(
    archive: Archive,
    service: str,
    type_: str,
    text: str,
    when: datetime | str,
    kind: str = CHANGE,
    url: str = URL,
) -> Version:
    """A version with the raw page it was extracted from, as the pipeline records them."""
    date = datetime.fromisoformat(when) if isinstance(when, str) else when
    html = f"<html><body><main>{text}</main></body></html>".encode()
    snapshot = archive.snapshots.record(service, type_, [Page(url, html, "text/html")], date)
    return record_version(
        archive,
        service,
        type_,
        text,
        date,
        kind,
        urls=(url,),
        snapshot=snapshot,
        content_type="text/html",
        extractor_version="test-1",
    )


def record_change(
    archive: Archive,
    text: str,
    *,
    service: str = SERVICE,
    type_: str = TYPE,
    kind: str | None = None,
    urls: tuple[str, ...] = (URL,),
) -> Version:
    """Commit a version now, index it and emit its event, in the pipeline's order: a first
    record if the policy has none yet, else a change (a re-extract emits nothing)."""
    previous = archive.versions.current(service, type_)
    kind = kind or (CHANGE if previous else FIRST_RECORD)
    version = record_version(archive, service, type_, text, now_utc(), kind, urls=urls)
    archive.sync_index()
    if kind != REEXTRACT:
        archive.events.emit(VersionRecorded(version, previous))
    return version


@dataclass
class Cli:
    """``policy-archive --config PATH ARGS...`` through click's CliRunner; a call asserts
    the exit code (``code=None``: any) and returns the result. Exceptions other than click's
    propagate, so a bug fails the test with its traceback."""

    path: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        result = self.runner.invoke(
            main, ["--config", str(self.path), *args], catch_exceptions=False
        )
        if code is not None:
            assert result.exit_code == code, result.output
        return result

    @property
    def config(self) -> Config:
        """The configuration the commands read."""
        return load_config(self.path)


@contextmanager
def serving(app: Flask, threads: int = 4, **options: Any) -> Iterator[WebServer]:
    """The app on the production server (waitress) at 127.0.0.1 on a free port, in a thread;
    on leaving, the server is stopped and the app closed (with the archive it opened, if any).
    ``options`` go to :func:`webui.server.make_server`."""
    web = make_server(app, "127.0.0.1", 0, threads=threads, **options)
    thread = threading.Thread(target=web.run, name="test-web", daemon=True)
    thread.start()
    try:
        yield web
    finally:
        web.close()
        thread.join(10)
        close_app(app)
    assert not thread.is_alive(), "the server thread did not stop"


def smtp_table(smtp: SmtpServer, sender: str = "alerts@archive.example") -> str:
    """The ``[smtp]`` table of a config file that sends to the test SMTP server."""
    return (
        f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\nsender = "{sender}"'
    )
