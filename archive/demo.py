"""``policy-archive demo``: the whole loop on one machine, without the internet.

A small website on 127.0.0.1 serves three policies written for the demo
(``archive/demo_site/``). A script edits one of them every ``change_every`` seconds; once every
edit is applied they are undone one by one, then applied again. The demo writes a throw-away
configuration that tracks those pages every minute, records a first version of each at once,
then runs the archive (scheduler and web UI) until stopped: a visitor sees fetch, commit,
search, diff and feed within two minutes.
"""

from __future__ import annotations

import html
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from archive.alerts import LISTENERS
from archive.config import Config, config_from_mapping
from archive.errors import ArchiveError

DEMO_DIR = Path(__file__).parent / "demo_site"
CHANGE_EVERY = 45.0
"""Seconds between two edits of the demo site (checks run every minute)."""


class DemoError(ArchiveError):
    """The demo's script or site is broken."""


@dataclass(frozen=True)
class DemoPolicy:
    slug: str
    service: str
    type: str
    language: str
    text: str


@dataclass(frozen=True)
class DemoEdit:
    policy: str
    find: str
    replace: str


@dataclass(frozen=True)
class Script:
    """The demo policies and their edits; ``texts(step)`` gives every page at one step."""

    policies: tuple[DemoPolicy, ...]
    edits: tuple[DemoEdit, ...]

    @property
    def period(self) -> int:
        return 2 * len(self.edits)

    def applied(self, step: int) -> int:
        """How many edits are in force at ``step``: 0, 1 … all, then back down to 0."""
        if not self.edits:
            return 0
        n = step % self.period
        return n if n <= len(self.edits) else self.period - n

    def texts(self, step: int) -> dict[str, str]:
        texts = {p.slug: p.text for p in self.policies}
        for edit in self.edits[: self.applied(step)]:
            text = texts[edit.policy]
            if text.count(edit.find) != 1:
                raise DemoError(f"demo edit for {edit.policy}: {edit.find[:40]!r} is not unique")
            texts[edit.policy] = text.replace(edit.find, edit.replace)
        return texts

    def changed_at(self, step: int) -> str | None:
        """The slug of the policy that changes when ``step`` begins (None if none does)."""
        if step <= 0 or not self.edits:
            return None
        before, after = self.applied(step - 1), self.applied(step)
        return self.edits[min(before, after)].policy


def load_script(folder: Path = DEMO_DIR) -> Script:
    """Read ``script.toml`` and the policy texts it names; check every edit applies."""
    with (folder / "script.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    policies = tuple(
        DemoPolicy(
            slug=p["slug"],
            service=p["service"],
            type=p["type"],
            language=p["language"],
            text=(folder / p["file"]).read_text(encoding="utf-8"),
        )
        for p in raw["policy"]
    )
    slugs = {p.slug for p in policies}
    edits = tuple(DemoEdit(e["policy"], e["find"], e["replace"]) for e in raw.get("edit", []))
    unknown = [e.policy for e in edits if e.policy not in slugs]
    if unknown:
        raise DemoError(f"demo edits name unknown policies: {', '.join(unknown)}")
    script = Script(policies, edits)
    script.texts(len(edits))  # every edit applies in order
    return script


# --------------------------------------------------------------------------- the site


class DemoSite:
    """The demo website, on 127.0.0.1, in a thread. Pages follow the script's clock."""

    def __init__(
        self,
        script: Script,
        *,
        change_every: float = CHANGE_EVERY,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.script = script
        self.change_every = change_every
        self._clock = clock
        self._started = clock()
        self._offset = 0
        self._lock = threading.Lock()
        self._markdown = MarkdownIt("commonmark", {"html": False})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.site = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="demo-site", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> DemoSite:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self) -> int:
        with self._lock:
            return int((self._clock() - self._started) // self.change_every) + self._offset

    def advance(self, steps: int = 1) -> int:
        """Move the script on by ``steps`` edits now (without waiting); returns the new step."""
        with self._lock:
            self._offset += steps
        return self.step()

    def page(self, slug: str) -> str | None:
        """The HTML of one policy page at the current step, or None for an unknown page."""
        policy = next((p for p in self.script.policies if p.slug == slug), None)
        if policy is None:
            return None
        body = self._markdown.render(self.script.texts(self.step())[slug])
        return _PAGE.format(
            title=html.escape(f"{policy.service}: {policy.type}"),
            lang=html.escape(policy.language),
            nav=self._nav(),
            body=body,
        )

    def index(self) -> str:
        return _PAGE.format(title="Demo site", lang="en", nav=self._nav(), body="")

    def _nav(self) -> str:
        links = "".join(
            f'<li><a href="/{html.escape(p.slug)}">{html.escape(p.service)} '
            f"{html.escape(p.type)}</a></li>"
            for p in self.script.policies
        )
        return f"<ul>{links}</ul>"


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head>
<body><header><p>Policy Archive demo site</p><nav>{nav}</nav></header>
<main>{body}</main>
<footer><p>Written for the Policy Archive demo. Not a real company.</p></footer>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server_version = "PolicyArchiveDemo/1"

    def do_GET(self) -> None:
        site: DemoSite = self.server.site  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0].strip("/")
        page = site.index() if not path else site.page(path)
        if page is None:
            self.send_error(HTTPStatus.NOT_FOUND, "No such demo page")
            return
        body = page.encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


# --------------------------------------------------------------------------- the archive


def demo_config(
    script: Script, site_url: str, data_dir: Path, *, host: str = "127.0.0.1", port: int = 8000
) -> Config:
    """A throw-away configuration tracking the demo site every minute."""
    raw = {
        "data_dir": str(data_dir),
        "fetch": {"allow_private_addresses": True, "per_host_delay": 0.0, "timeout": 10.0},
        "schedule": {"interval": "1m", "jitter": "1s", "retry_backoff": "1m"},
        "web": {"host": host, "port": port, "base_url": f"http://{host}:{port}"},
        "policy": [
            {
                "service": p.service,
                "type": p.type,
                "url": site_url + p.slug,
                "select": "main",
                "language": p.language,
                "interval": "1m",
            }
            for p in script.policies
        ],
    }
    return config_from_mapping(raw, path=data_dir.parent / "config.toml")


def record_first_versions(config: Config) -> list[str]:
    """Track every policy once, now (so the UI has something to show at once)."""
    from archive.app import Archive
    from archive.fetch import Fetcher
    from archive.tracking.pipeline import Pipeline

    fetcher = Fetcher(config.fetch)
    try:
        with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
            pipeline = Pipeline(archive, fetcher)
            return [
                f"{r.service} {r.type}: {r.status}" + (f" ({r.reason})" if r.reason else "")
                for r in (pipeline.track(p) for p in config.policies)
            ]
    finally:
        fetcher.close()
