"""The ``policy-archive`` command: thin click commands over library functions.

Domain errors become one clear line on stderr and a non-zero exit code here, and only here.
Each feature's commands live in their own module of this package and register on ``main``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from archive import __version__
from archive.app import Archive
from archive.config import Config, load_config
from archive.errors import ArchiveError, StoreError

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What every command gets: how to load the config, once, and open the archive."""

    def __init__(self, config_path: str | None, data_dir: str | None) -> None:
        self.config_path = config_path
        self.data_dir = data_dir
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, data_dir=self.data_dir)
        return self._config

    def open(self, *, writer: bool = False, create: bool = False) -> Archive:
        return Archive.open(self.config, writer=writer, create=create)


pass_context = click.make_pass_decorator(Context)


def handle_errors(func: F) -> F:
    """Turn domain errors into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ArchiveError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class ErrorHandlingGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ArchiveError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=ErrorHandlingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="POLICY_ARCHIVE_CONFIG",
    show_envvar=True,
    help="Configuration file [default: ./config.toml].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="POLICY_ARCHIVE_DATA_DIR",
    show_envvar=True,
    help="Data directory; overrides the config's data_dir.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="policy-archive")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None, verbose: int) -> None:
    """Policy Archive: track website policies and record every change in git."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(config_path, str(Path(data_dir)) if data_dir else None)


# Feature modules register their commands on `main` when imported.
from archive.cli import alerts, core, research, search, web  # noqa: E402, F401
