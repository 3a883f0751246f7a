"""The ``policy-archive`` command: thin click commands over library functions.

Domain errors become one clear line on stderr and a non-zero exit code here, and only here;
so do the file system's own refusals (a full disk, a read-only or forbidden data directory),
with the path and the fix. Each feature's commands live in their own module of this package and
register on ``main``.
"""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path
from typing import Any

import click

from archive import __version__
from archive.app import Archive
from archive.config import Config, load_config
from archive.errors import ArchiveError, StoreError

OWN_LOGGERS = ("archive", "store", "webui")
"""The loggers of this project (libraries' loggers keep the root level)."""

OS_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free space on that disk, then run the command again"),
    errno.EDQUOT: ("the disk quota is used up", "free space or raise the quota, then retry"),
    errno.EROFS: (
        "the file system is read-only",
        "mount it read-write or point --data-dir at a writable folder",
    ),
    errno.EACCES: (
        "permission denied",
        "give this user read and write access to the data directory, or run as its owner",
    ),
    errno.EPERM: (
        "operation not permitted",
        "give this user read and write access to the data directory, or run as its owner",
    ),
    errno.EIO: ("input/output error", "check that the disk is healthy, then run the command again"),
}
"""File system errors that come from the machine, not from a bug: (what happened, the fix)."""


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
        """The archive; a writer gets the alerts attached (the caller attaches listeners)."""
        if not writer:
            return Archive.open(self.config, create=create)
        from archive.alerts import LISTENERS

        return Archive.open(self.config, writer=True, create=create, listeners=LISTENERS)


pass_context = click.make_pass_decorator(Context)


def one_line(message: str) -> str:
    """``message`` on one line: its lines joined with "; "."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def os_error_message(exc: OSError, data_dir: Path | None) -> str | None:
    """One line for a file system error the machine caused (path, what, fix); else None."""
    if exc.errno not in OS_ERRORS:
        return None
    what, fix = OS_ERRORS[exc.errno]
    path = exc.filename or (f"the data directory {data_dir}" if data_dir else "a file")
    return f"{path}: {what}; {fix}"


class ErrorHandlingGroup(click.Group):
    """Turns domain errors and machine-made OSErrors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ArchiveError, StoreError) as exc:
            raise click.ClickException(one_line(str(exc))) from None
        except OSError as exc:
            message = os_error_message(exc, _data_dir(ctx))
            if message is None:
                raise
            raise click.ClickException(one_line(message)) from None


def _data_dir(ctx: click.Context) -> Path | None:
    obj = ctx.obj
    if not isinstance(obj, Context):
        return None
    if obj._config is not None:
        return obj._config.data_dir
    return Path(obj.data_dir) if obj.data_dir else None


def log_own_info() -> None:
    """Log this project's INFO lines (one per change and per failure) unless -v asked for more.

    Libraries' loggers keep the root level (WARNING), so their chatter stays out.
    """
    for name in OWN_LOGGERS:
        own = logging.getLogger(name)
        if own.getEffectiveLevel() > logging.INFO:
            own.setLevel(logging.INFO)


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
from archive.cli import alerts, core, research, search, state, users, web  # noqa: E402, F401
