"""Helpers the test modules share: recording versions as the pipeline does, and the CLI.

Plain functions and classes (the fixtures are in ``conftest.py``): each writes real commits
into a real archive, or runs the real ``policy-archive`` command through click's CliRunner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from archive.app import Archive
from archive.cli import main
from archive.config import Config, load_config
from archive.tracking.events import VersionRecorded
from store.git.repository import now_utc
from store.git.snapshots import Page
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion, Version

SERVICE, TYPE = "WorkOptima", "Privacy Policy"
URL = "https://workoptima.example/privacy"


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
