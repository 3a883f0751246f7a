"""``serve`` (the web UI alone) and ``demo`` (a local site, tracked and served).

The one place outside webui/ that builds the web server: ``run`` and ``demo`` pass
:func:`web_server` to :func:`archive.runner.run_archive`, so tracking never imports webui.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from archive.app import Archive
from archive.cli import Context, main, pass_context
from archive.config import Config

if TYPE_CHECKING:
    from flask import Flask

    from webui.server import WebServer

log = logging.getLogger(__name__)


BIND_ERRORS = {
    errno.EADDRINUSE: "is in use (another `run` or `serve`?): stop that one or pick --port",
    errno.EACCES: "needs privileges (ports below 1024): pick --port 1024 or above",
    errno.EADDRNOTAVAIL: "is not an address of this machine: pick another --host",
}
"""Why a web server could not listen, and what to do, by errno."""


def make_web_server(app: Flask, config: Config, host: str, port: int) -> WebServer:
    """The web server for ``app`` with the config's threads and connection limit; an address
    it cannot listen on is one line (a :class:`click.ClickException`), not a traceback."""
    from webui.server import make_server

    try:
        return make_server(
            app,
            host,
            port,
            threads=config.web.threads,
            connection_limit=config.web.connection_limit,
        )
    except socket.gaierror as exc:
        raise click.ClickException(
            f"cannot serve on {host}: unknown host ({exc.strerror}); pick another --host"
        ) from None
    except OSError as exc:
        why = BIND_ERRORS.get(exc.errno or 0)
        if why is None:
            raise
        raise click.ClickException(f"cannot serve on {host}:{port}: the address {why}") from None


def served_config(config: Config, host: str | None, port: int | None) -> Config:
    """``config`` served at ``--host``/``--port`` (each defaults to ``[web]``'s); links follow
    the served address unless ``[web] base_url`` names another."""
    web = config.web
    host = host or web.host
    port = web.port if port is None else port
    return dataclasses.replace(config, web=web.served_at(host, port))


def web_server(config: Config) -> Callable[[Archive], WebServer]:
    """What ``run_archive`` calls to serve the UI over its writer archive (config's address)."""

    def build(archive: Archive) -> WebServer:
        from webui import create_app

        app = create_app(config, archive=archive)
        return make_web_server(app, config, config.web.host, config.web.port)

    return build


@main.command()
@click.option("--host", default=None, help="Address to listen on [default: config's web.host].")
@click.option("--port", type=int, default=None, help="Port [default: config's web.port].")
@pass_context
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the read-only web UI (and JSON API) of the archive until stopped (Ctrl-C)."""
    from webui import close_app, create_app

    config = served_config(ctx.config, host, port)
    app = create_app(config)
    try:
        server = make_web_server(app, config, config.web.host, config.web.port)
        click.echo(f"Serving {config.data_dir} at {server.url} (Ctrl-C stops)")
        try:
            server.run()
        except KeyboardInterrupt:
            click.echo("stopping")
        finally:
            server.close()
    finally:
        close_app(app)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web UI.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port of the web UI.")
@click.option(
    "--site-port",
    type=int,
    default=0,
    show_default=True,
    help="Port of the demo website (0: any free port).",
)
@click.option(
    "--change-every",
    type=click.FloatRange(min=1),
    default=45.0,
    show_default=True,
    help="Seconds between two edits of the demo website.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop after this many seconds [default: run until Ctrl-C].",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's data in this folder instead of a temporary one.",
)
def demo(
    host: str,
    port: int,
    site_port: int,
    change_every: float,
    duration: float | None,
    keep: Path | None,
) -> None:
    """Run a demo without the internet: a local site whose policies change, tracked and served.

    Needs no configuration: everything goes to a temporary folder, removed at exit.
    """
    from archive.demo import DemoSite, demo_config, load_script, record_first_versions
    from archive.tracking.runner import run_archive

    script = load_script()
    workdir = keep or Path(tempfile.mkdtemp(prefix="policy-archive-demo-"))
    stop = threading.Event()
    timer = threading.Timer(duration, stop.set) if duration is not None else None
    try:
        with DemoSite(script, change_every=change_every, port=site_port) as site:
            config = demo_config(script, site.url, workdir / "data", host=host, port=port)
            click.echo(f"Demo data in {workdir}; first check of {len(script.policies)} policies:")
            if timer is not None:
                timer.start()
            for line in record_first_versions(config):
                click.echo(f"  {line}")
            click.echo(
                f"Archive UI: http://{config.web.host}:{config.web.port}/  "
                f"(demo site: {site.url}; one policy changes every {site.change_every:g} s, "
                "each is checked every minute; Ctrl-C stops)"
            )
            run_archive(config, web=web_server(config), stop=stop, create=False)
    finally:
        if timer is not None:
            timer.cancel()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
