"""Rendering pages that need JavaScript in a real headless Chromium, behind the SSRF guard."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch import BlockedAddressError, Fetched, Fetcher
from archive.fetch.browser import CALLER_GRACE_SECONDS, find_browser, request_refusal
from archive.fetch.guard import AddressPolicy, IPAddress
from tests.fixture_server import FixtureServer

CHROMIUM = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs Debian's chromium (apt-get install chromium) at /usr/bin/chromium",
    ),
]

JS_PAGE = """<!doctype html><html><head><title>Terms</title></head><body>
<main id="terms"></main>
<script>
  document.getElementById("terms").textContent = "Terms written by " + "JavaScript";
  fetch("/clauses.json").then(r => r.json()).then(data => {
    const p = document.createElement("p");
    p.id = "clauses";
    p.textContent = data.clauses.join(" / ");
    document.body.appendChild(p);
  });
</script></body></html>"""


def settings(**overrides: object) -> FetchSettings:
    values: dict[str, object] = {
        "allow_private_addresses": True,
        "per_host_delay": 0.0,
        "timeout": 5.0,
        "browser_timeout": 20.0,
    }
    values.update(overrides)
    return FetchSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def browser_fetcher() -> Iterator[Fetcher]:
    """One browser for the module's tests with the guard off (they serve from 127.0.0.1)."""
    with Fetcher(settings()) as fetcher:
        yield fetcher


@pytest.fixture
def internal() -> Iterator[FixtureServer]:
    """A second server on 127.0.0.2: the "internal" address the guard must keep out of reach."""
    with FixtureServer(host="127.0.0.2") as server:
        yield server


@pytest.fixture
def guarded_fetcher() -> Iterator[Fetcher]:
    """Guard on; only 127.0.0.1 (the test's "public" site) is allowed."""
    with Fetcher(
        settings(allow_private_addresses=False), allow_networks=["127.0.0.1/32"]
    ) as fetcher:
        yield fetcher


def test_finds_the_browser() -> None:
    assert find_browser("") == CHROMIUM


def test_renders_javascript(fixture_server: FixtureServer, browser_fetcher: Fetcher) -> None:
    url = fixture_server.set("/terms", JS_PAGE)
    fixture_server.set(
        "/clauses.json", '{"clauses": ["one", "two"]}', content_type="application/json"
    )
    got = browser_fetcher.fetch(url, js=True)
    assert isinstance(got, Fetched)
    assert (got.rendered, got.status, got.final_url) == (True, 200, url)
    assert got.content_type == "text/html; charset=utf-8"
    html = got.body.decode("utf-8")
    assert "Terms written by JavaScript" in html
    assert "one / two" in html  # loaded after "load": we waited for the network to go idle
    assert fixture_server.requests[0].header("User-Agent") == settings().user_agent


def test_rendering_follows_redirects(
    fixture_server: FixtureServer, browser_fetcher: Fetcher
) -> None:
    final = fixture_server.set("/final", JS_PAGE)
    fixture_server.set("/clauses.json", '{"clauses": []}', content_type="application/json")
    got = browser_fetcher.fetch(fixture_server.redirect("/old", "/final"), js=True)
    assert got.final_url == final


def test_rendering_a_missing_page(fixture_server: FixtureServer, browser_fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        browser_fetcher.fetch(fixture_server.url("/missing"), js=True)
    assert (info.value.transient, info.value.status) == (False, 404)


def test_rendering_an_unreachable_site_is_transient(browser_fetcher: Fetcher) -> None:
    server = FixtureServer().start()
    url = server.url("/")
    server.stop()
    with pytest.raises(FetchError) as info:
        browser_fetcher.fetch(url, js=True)
    assert info.value.transient


def test_guard_blocks_subresources_and_redirects(
    fixture_server: FixtureServer, internal: FixtureServer, guarded_fetcher: Fetcher
) -> None:
    internal.set(
        "/secret.js",
        "document.getElementById('leak').textContent = 'LEAKED';",
        content_type="application/javascript",
    )
    internal.set("/pixel.png", b"\x89PNG", content_type="image/png")
    internal.set("/api", "LEAKED", content_type="text/plain")
    fixture_server.redirect("/hop.js", internal.url("/secret.js"))
    page = f"""<html><body><p id="leak">safe</p><p id="api">api?</p>
        <img src="{internal.url("/pixel.png")}">
        <script src="{internal.url("/secret.js")}"></script>
        <script src="/hop.js"></script>
        <script>
          fetch("{internal.url("/api")}").then(r => r.text())
            .then(t => document.getElementById("api").textContent = t)
            .catch(() => document.getElementById("api").textContent = "blocked");
        </script></body></html>"""
    url = fixture_server.set("/page", page)
    got = guarded_fetcher.fetch(url, js=True)
    html = got.body.decode()
    assert "LEAKED" not in html and '<p id="api">blocked</p>' in html
    assert internal.requests == []
    assert fixture_server.hits("/hop.js") == 1  # the allowed hop went out; its target did not


def test_guard_blocks_the_page_itself(
    fixture_server: FixtureServer, internal: FixtureServer, guarded_fetcher: Fetcher
) -> None:
    internal.set("/", "internal")
    with pytest.raises(BlockedAddressError):
        guarded_fetcher.fetch(internal.url("/"), js=True)
    fixture_server.redirect("/go", internal.url("/"))
    with pytest.raises(FetchError) as info:
        guarded_fetcher.fetch(fixture_server.url("/go"), js=True)
    assert not info.value.transient and "127.0.0.2" in info.value.reason
    assert internal.requests == []


def test_route_decisions() -> None:
    def resolver(host: str, port: int) -> list[IPAddress]:
        table = {"cdn.example.test": "93.184.216.34", "intranet.example.test": "10.1.2.3"}
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return [ipaddress.ip_address(table[host])]

    policy = AddressPolicy()
    cache: dict[tuple[str, int], str | None] = {}
    assert request_refusal("https://cdn.example.test/app.js", policy, resolver, cache) is None
    refusal = request_refusal("http://intranet.example.test/x", policy, resolver, cache)
    assert refusal and "private network" in refusal
    assert request_refusal("http://127.0.0.1:9/", policy, resolver) is not None
    assert request_refusal("http://[::1]/", policy, resolver) is not None
    assert request_refusal("ws://cdn.example.test/socket", policy, resolver) is not None
    assert request_refusal("http://unknown.example.test/", policy, resolver) is not None
    assert request_refusal("http://127.0.0.1/", AddressPolicy(allow_private=True), resolver) is None
    assert set(cache) == {("cdn.example.test", 443), ("intranet.example.test", 80)}


def test_ending_on_the_browsers_error_page_is_a_failure(
    fixture_server: FixtureServer, browser_fetcher: Fetcher
) -> None:
    gone = FixtureServer().start()
    refused = gone.url("/")
    gone.stop()
    url = fixture_server.set(
        "/moved",
        "<html><body><p>Moving…</p><script>addEventListener('load', () => "
        f"setTimeout(() => location.href = {refused!r}, 50))</script></body></html>",
    )
    with pytest.raises(FetchError) as info:
        browser_fetcher.fetch(url, js=True)
    assert info.value.transient
    assert "own error page (net::ERR_CONNECTION_REFUSED)" in info.value.reason


@pytest.mark.slow
def test_a_page_that_hangs_the_renderer_fails_in_bounded_time(
    fixture_server: FixtureServer,
) -> None:
    hang = fixture_server.set(
        "/hang",
        "<html><body><p>text</p><script>addEventListener('load', () => "
        "setTimeout(() => { while (true) {} }, 100))</script></body></html>",
    )
    fine = fixture_server.set("/fine", "<html><body><p>fine</p></body></html>")
    with Fetcher(settings(max_fetch_seconds=2.0)) as fetcher:
        fetcher.fetch(fine, js=True)  # the browser is up: its start-up is not counted below
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            fetcher.fetch(hang, js=True)
        assert "too slowly" in info.value.reason and info.value.transient
        assert time.monotonic() - started < 2.0 + CALLER_GRACE_SECONDS + 2.0
        assert b"fine" in fetcher.fetch(fine, js=True).body  # a new worker took over
