"""``serve`` (the web UI alone) and ``demo`` (a local site, tracked and served)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path

import click

from archive.cli import Context, main, pass_context

log = logging.getLogger(__name__)


@main.command()
@click.option("--host", default=None, help="Address to listen on [default: config's web.host].")
@click.option("--port", type=int, default=None, help="Port [default: config's web.port].")
@pass_context
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the read-only web UI (and JSON API) of the archive until stopped (Ctrl-C)."""
    from webui import close_app, create_app
    from webui.server import make_server

    config = ctx.config
    host = host or config.web.host
    port = config.web.port if port is None else port
    app = create_app(config)
    try:
        server = make_server(
            app,
            host,
            port,
            threads=config.web.threads,
            connection_limit=config.web.connection_limit,
        )
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
    from archive.demo import DemoSite, demo_config, load_script, run_demo

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
            run_demo(config, site, stop=stop, echo=click.echo)
    finally:
        if timer is not None:
            timer.cancel()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
