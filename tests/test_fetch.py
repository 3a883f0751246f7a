"""Fetching documents over HTTP: metadata, conditional requests, errors, limits, SSRF guard."""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC
from http.server import BaseHTTPRequestHandler

import pytest

from archive.config import FetchSettings
from archive.errors import FetchError
from archive.fetch import BlockedAddressError, Fetched, Fetcher, blocked_reason, check_url_allowed
from archive.fetch.guard import AddressPolicy, IPAddress, check_host_allowed
from archive.fetch.http import HttpClient
from archive.fetch.throttle import Throttle
from tests.fixture_server import FixtureServer

PAGE = "<html><body><h1>Privacy Policy</h1><p>We collect nothing.</p></body></html>"


def make_settings(**overrides: object) -> FetchSettings:
    values: dict[str, object] = {
        "allow_private_addresses": True,
        "per_host_delay": 0.0,
        "timeout": 5.0,
    }
    values.update(overrides)
    return FetchSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(make_settings()) as f:
        yield f


def fetch_error(fn: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as info:
        fn()
    return info.value


def run_threads(targets: list[Callable[[], object]]) -> list[object]:
    """Run callables in parallel threads; return their results (or the exceptions raised)."""
    results: list[object] = [None] * len(targets)

    def run(i: int) -> None:
        try:
            results[i] = targets[i]()
        except FetchError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    return results


# ---------------------------------------------------------------- success and metadata


def test_200_with_etag_then_304(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/privacy", PAGE, etag='"v1"')
    first = fetcher.fetch(url)
    assert isinstance(first, Fetched)
    assert (first.status, first.body, first.etag) == (200, PAGE.encode(), '"v1"')
    assert (first.url, first.final_url, first.not_modified, first.rendered) == (
        url,
        url,
        False,
        False,
    )
    assert first.fetched_at.tzinfo is UTC

    second = fetcher.fetch(url, etag=first.etag)
    assert (second.status, second.not_modified, second.body, second.etag) == (
        304,
        True,
        b"",
        '"v1"',
    )
    assert fixture_server.requests[-1].header("If-None-Match") == '"v1"'

    fixture_server.set("/privacy", PAGE + "changed", etag='"v2"')
    third = fetcher.fetch(url, etag='"v1"')
    assert (third.status, third.not_modified, third.etag) == (200, False, '"v2"')


def test_last_modified_conditional_get(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = fixture_server.set("/terms", PAGE, last_modified=stamp)
    first = fetcher.fetch(url)
    assert (first.last_modified, first.etag) == (stamp, None)
    second = fetcher.fetch(url, last_modified=first.last_modified)
    assert second.not_modified and second.last_modified == stamp
    assert fixture_server.requests[-1].header("If-Modified-Since") == stamp


def test_content_type_and_bytes_pass_through(
    fixture_server: FixtureServer, fetcher: Fetcher
) -> None:
    body = "<p>Données personnelles</p>".encode("cp1252")
    url = fixture_server.set("/fr", body, content_type="text/html; charset=windows-1252")
    got = fetcher.fetch(url)
    assert (got.content_type, got.body) == ("text/html; charset=windows-1252", body)
    none = fetcher.fetch(fixture_server.set("/bare", b"x", content_type=None))
    assert none.content_type == ""


def test_request_headers(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/", PAGE)
    with Fetcher(make_settings(user_agent="TestArchive/1 (+https://example.org)")) as f:
        f.fetch(url)
    request = fixture_server.requests[-1]
    assert request.header("User-Agent") == "TestArchive/1 (+https://example.org)"
    assert request.header("Host") == f"127.0.0.1:{fixture_server.port}"
    assert "gzip" in (request.header("Accept-Encoding") or "")


def test_gzip_body_is_decompressed(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/gz", PAGE * 50, gzip=True)
    assert fetcher.fetch(url).body == (PAGE * 50).encode()


def test_empty_200_is_returned(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    got = fetcher.fetch(fixture_server.set("/empty", b""))
    assert (got.status, got.body) == (200, b"")


def test_connections_are_reused(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/", PAGE)
    for _ in range(3):
        fetcher.fetch(url)
    assert len({r.client_port for r in fixture_server.requests}) == 1


def test_an_unchanged_page_costs_little_cpu(
    fixture_server: FixtureServer, fetcher: Fetcher
) -> None:
    url = fixture_server.set("/", PAGE * 20, etag='"same"')
    fetcher.fetch(url)
    for kwargs in ({"etag": '"same"'}, {}):
        start = time.thread_time()
        for _ in range(100):
            fetcher.fetch(url, **kwargs)
        per_request = (time.thread_time() - start) / 100
        assert per_request < 0.005, f"{per_request * 1000:.2f} ms of CPU per request"


# ---------------------------------------------------------------- errors


def test_404_is_not_transient(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    error = fetch_error(lambda: fetcher.fetch(fixture_server.url("/missing")))
    assert (error.transient, error.status) == (False, 404)
    assert "not found" in error.reason and "check the URL" in error.reason
    assert error.url == fixture_server.url("/missing")


def test_403_is_not_transient(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/walled", "no bots", status=403)
    error = fetch_error(lambda: fetcher.fetch(url))
    assert (error.transient, error.status) == (False, 403)


def test_500_is_transient(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/boom", "oops", status=500)
    error = fetch_error(lambda: fetcher.fetch(url))
    assert (error.transient, error.status) == (True, 500)
    assert "server error" in error.reason


def test_429_is_transient_and_names_retry_after(
    fixture_server: FixtureServer, fetcher: Fetcher
) -> None:
    url = fixture_server.set("/busy", "slow down", status=429, headers={"Retry-After": "120"})
    error = fetch_error(lambda: fetcher.fetch(url))
    assert (error.transient, error.status) == (True, 429)
    assert "Retry-After: 120" in error.reason


def test_scripted_failures_then_success(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/flaky", PAGE)
    fixture_server.fail("/flaky", times=2, status=503)
    for _ in range(2):
        assert fetch_error(lambda: fetcher.fetch(url)).transient
    assert fetcher.fetch(url).body == PAGE.encode()
    assert fixture_server.hits("/flaky") == 3


def test_dropped_connection_is_transient(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/drop", PAGE)
    fixture_server.fail("/drop", status=0)
    assert fetch_error(lambda: fetcher.fetch(url)).transient
    assert fetcher.fetch(url).status == 200


def test_slow_response_times_out(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/slow", PAGE, delay=3.0)
    with Fetcher(make_settings(timeout=0.3)) as f:
        started = time.monotonic()
        error = fetch_error(lambda: f.fetch(url))
    assert error.transient and "0.3 s" in error.reason
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_transient() -> None:
    server = FixtureServer().start()
    url = server.set("/", PAGE)
    server.stop()
    with Fetcher(make_settings()) as f:
        error = fetch_error(lambda: f.fetch(url))
        assert error.transient and "could not connect" in error.reason
        server.start()  # the site comes back on the same port
        try:
            assert f.fetch(url).body == PAGE.encode()
        finally:
            server.stop()


def test_unsupported_content_is_refused(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    url = fixture_server.set("/logo", b"\x89PNG", content_type="image/png")
    error = fetch_error(lambda: fetcher.fetch(url))
    assert not error.transient and "image/png" in error.reason


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/terms",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://example.com/",
        "example.com",
        "http:///nohost",
        "http://user:pw@example.com/",
    ],
)
def test_non_http_urls_are_refused(fetcher: Fetcher, url: str) -> None:
    error = fetch_error(lambda: fetcher.fetch(url))
    assert not error.transient and error.url == url


def test_missing_browser_is_a_clear_permanent_error(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/", PAGE)
    with Fetcher(make_settings(browser_path="/nonexistent/chromium")) as f:
        error = fetch_error(lambda: f.fetch(url, js=True))
    assert not error.transient
    assert "apt-get install chromium" in error.reason and "browser_path" in error.reason


# ---------------------------------------------------------------- redirects


def test_redirect_chain_under_the_limit(fixture_server: FixtureServer) -> None:
    final = fixture_server.set("/final", PAGE)
    fixture_server.redirect("/r1", "/r2", status=301)
    fixture_server.redirect("/r2", final, status=307)  # absolute
    fixture_server.redirect("/r3", "r1", status=308)  # relative
    with Fetcher(make_settings(max_redirects=3)) as f:
        got = f.fetch(fixture_server.url("/r3"))
    assert (got.url, got.final_url, got.body) == (fixture_server.url("/r3"), final, PAGE.encode())


def test_too_many_redirects(fixture_server: FixtureServer) -> None:
    fixture_server.set("/4", PAGE)
    for i in range(3):
        fixture_server.redirect(f"/{i}", f"/{i + 1}")
    with Fetcher(make_settings(max_redirects=2)) as f:
        error = fetch_error(lambda: f.fetch(fixture_server.url("/0")))
    assert not error.transient and "more than 2 redirects" in error.reason


def test_redirect_loop(fixture_server: FixtureServer, fetcher: Fetcher) -> None:
    fixture_server.redirect("/a", "/b")
    fixture_server.redirect("/b", "/a")
    error = fetch_error(lambda: fetcher.fetch(fixture_server.url("/a")))
    assert not error.transient and "redirect loop" in error.reason
    assert fixture_server.hits("/a") == 1 and fixture_server.hits("/b") == 1


def test_redirect_to_another_scheme_is_refused(
    fixture_server: FixtureServer, fetcher: Fetcher
) -> None:
    fixture_server.redirect("/ftp", "ftp://example.com/file")
    error = fetch_error(lambda: fetcher.fetch(fixture_server.url("/ftp")))
    assert not error.transient and "unsupported URL scheme 'ftp'" in error.reason


# ---------------------------------------------------------------- size cap


def test_body_over_the_cap(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/big", b"x" * 10_000)
    with Fetcher(make_settings(max_body_bytes=4096)) as f:
        error = fetch_error(lambda: f.fetch(url))
        assert not error.transient and "4,096-byte limit" in error.reason
        assert f.fetch(fixture_server.set("/fits", b"x" * 4096)).body == b"x" * 4096


def test_streamed_body_over_the_cap(fixture_server: FixtureServer) -> None:
    """No Content-Length: the cap is enforced while reading."""

    def endless(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Connection", "close")
        request.end_headers()
        request.close_connection = True
        try:
            for _ in range(1000):
                request.wfile.write(b"y" * 65536)
        except OSError:
            return  # the client hung up, as it should

    url = fixture_server.handle("/endless", endless)
    with Fetcher(make_settings(max_body_bytes=100_000)) as f:
        error = fetch_error(lambda: f.fetch(url))
    assert not error.transient and "limit" in error.reason


def test_gzip_bomb_is_stopped_early(fixture_server: FixtureServer) -> None:
    member = gzip.compress(bytes(16 * 1024 * 1024), compresslevel=9)
    bomb = member * 64  # 1 GiB of zeros in ~1 MB: gzip members may be concatenated
    url = fixture_server.set("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with Fetcher(make_settings(max_body_bytes=1_000_000)) as f:
        tracemalloc.start()
        try:
            error = fetch_error(lambda: f.fetch(url))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert not error.transient and "limit" in error.reason
    assert peak < 30_000_000, f"{peak:,} bytes allocated: the bomb was not stopped early"


# ---------------------------------------------------------------- throttling


def test_per_host_delay_spaces_requests(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/", PAGE)
    with Fetcher(make_settings(per_host_delay=0.3, concurrency=4)) as f:
        run_threads([lambda: f.fetch(url)] * 3)
    times = sorted(r.time for r in fixture_server.requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 3 and min(gaps) >= 0.25, gaps


def test_concurrency_limit(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/slowish", PAGE, delay=0.2)
    with Fetcher(make_settings(concurrency=2)) as f:
        results = run_threads([lambda: f.fetch(url)] * 6)
    assert all(isinstance(r, Fetched) for r in results)
    assert fixture_server.max_in_flight == 2


def test_throttle_does_not_hold_a_slot_while_waiting_for_a_host() -> None:
    throttle = Throttle(concurrency=1, per_host_delay=1.0)
    with throttle.slot("a.example"):
        pass
    order: list[str] = []

    def enter(host: str) -> None:
        with throttle.slot(host):
            order.append(host)

    run_threads([lambda: enter("a.example"), lambda: enter("b.example")])
    assert order == ["b.example", "a.example"]


def test_many_threads_share_one_fetcher(fixture_server: FixtureServer) -> None:
    urls = [fixture_server.set(f"/p{i}", f"page {i}") for i in range(20)]
    with Fetcher(make_settings(concurrency=4)) as f:
        results = run_threads([lambda u=u: f.fetch(u) for u in urls])
    assert [r.body for r in results] == [f"page {i}".encode() for i in range(20)]  # type: ignore[union-attr]


# ---------------------------------------------------------------- SSRF guard


def test_guard_refuses_loopback(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/", PAGE)
    with Fetcher(make_settings(allow_private_addresses=False)) as f:
        error = fetch_error(lambda: f.fetch(url))
    assert isinstance(error, BlockedAddressError)
    assert not error.transient and "loopback" in error.reason
    assert fixture_server.hits("/") == 0


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "localhost"]
)
def test_guard_sees_through_odd_spellings_of_loopback(
    fixture_server: FixtureServer, host: str
) -> None:
    with Fetcher(make_settings(allow_private_addresses=False)) as f:
        error = fetch_error(lambda: f.fetch(f"http://{host}:{fixture_server.port}/"))
    assert isinstance(error, BlockedAddressError)
    assert fixture_server.hits("/") == 0


def test_guard_rechecks_every_redirect(fixture_server: FixtureServer) -> None:
    """127.0.0.1 is allowed by an allowlist; its redirect to 127.0.0.2 is not."""
    with FixtureServer(host="127.0.0.2") as internal:
        secret = internal.set("/secret", "internal data")
        fixture_server.set("/page", PAGE)
        fixture_server.redirect("/go", secret)
        settings = make_settings(allow_private_addresses=False)
        with Fetcher(settings, allow_networks=["127.0.0.1/32"]) as f:
            assert f.fetch(fixture_server.url("/page")).body == PAGE.encode()
            error = fetch_error(lambda: f.fetch(fixture_server.url("/go")))
        assert isinstance(error, BlockedAddressError) and "127.0.0.2" in error.reason
        assert internal.hits("/secret") == 0


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[IPAddress]]:
    def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


def test_check_url_allowed_with_an_injected_resolver() -> None:
    resolver = fake_resolver(
        {
            "public.test": ["93.184.216.34", "2606:2800:220:1::1"],
            "mixed.test": ["93.184.216.34", "10.0.0.1"],
            "metadata.test": ["169.254.169.254"],
        }
    )
    assert check_url_allowed("https://public.test/x", resolver=resolver) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]
    for host in ("mixed.test", "metadata.test"):
        with pytest.raises(BlockedAddressError):
            check_url_allowed(f"http://{host}/", resolver=resolver)
    # switched off: still resolved, not refused
    assert check_url_allowed("http://mixed.test/", True, resolver=resolver)[1] == (
        ipaddress.ip_address("10.0.0.1")
    )
    assert check_url_allowed(
        "http://metadata.test/", allow_networks=["169.254.0.0/16"], resolver=resolver
    )
    error = fetch_error(lambda: check_url_allowed("http://nowhere.test/", resolver=resolver))
    assert error.transient and "could not resolve" in error.reason
    error = fetch_error(lambda: check_url_allowed("file:///etc/passwd", resolver=resolver))
    assert not error.transient and "unsupported URL scheme" in error.reason


def test_redirect_target_check_with_an_injected_resolver() -> None:
    """What the fetch loop does on each hop: the next host is resolved and checked again."""
    policy = AddressPolicy()
    resolver = fake_resolver(
        {"www.example.test": ["93.184.216.34"], "rebind.example.test": ["192.168.0.10"]}
    )
    assert check_host_allowed("www.example.test", 443, policy=policy, resolver=resolver)
    with pytest.raises(BlockedAddressError, match="private network"):
        check_host_allowed("rebind.example.test", 443, policy=policy, resolver=resolver)


BLOCKED = [
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "2002:7f00:1::",
    "2002:a00:1::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1",
    "2001:db8::1",
    "2001::1",
    "100::1",
    "::ffff:0:127.0.0.1",
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700::1",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_classifier_blocks(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_classifier_allows(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_classifier_reasons_say_what_the_address_is() -> None:
    assert "link-local" in (blocked_reason(ipaddress.ip_address("169.254.169.254")) or "")
    assert "carrier-grade NAT" in (blocked_reason(ipaddress.ip_address("100.64.0.1")) or "")
    embedded = blocked_reason(ipaddress.ip_address("::ffff:127.0.0.1")) or ""
    assert "loopback" in embedded and "::ffff:7f00:1" in embedded


# ---------------------------------------------------------------- the total deadline

LONG_PAGE = "<html><body>" + "x" * 400 + "</body></html>"


@pytest.mark.parametrize("part", ["headers", "body"])
def test_trickling_server_fails_at_the_deadline(fixture_server: FixtureServer, part: str) -> None:
    # one byte every 0.2 s never trips the 5 s read timeout; only the 1 s deadline ends it
    url = fixture_server.trickle("/trickle", LONG_PAGE, interval=0.2, part=part)
    with Fetcher(make_settings(max_fetch_seconds=1.0)) as f:
        started = time.monotonic()
        error = fetch_error(lambda: f.fetch(url))
        elapsed = time.monotonic() - started
    assert error.transient and "sent its response too slowly" in error.reason
    assert "max_fetch_seconds" in error.reason
    assert 0.9 < elapsed < 2.0


def test_the_deadline_covers_every_redirect_hop(fixture_server: FixtureServer) -> None:
    # each hop answers within the read timeout; together they take longer than the deadline
    fixture_server.set("/end", PAGE, delay=0.4)
    for n in range(4):
        fixture_server.set(f"/hop{n}", status=302, headers={"Location": f"/hop{n + 1}"}, delay=0.4)
    fixture_server.redirect("/hop4", "/end")
    with Fetcher(make_settings(max_fetch_seconds=1.0)) as f:
        started = time.monotonic()
        error = fetch_error(lambda: f.fetch(fixture_server.url("/hop0")))
    assert "too slowly" in error.reason and time.monotonic() - started < 2.0


def test_the_deadline_covers_dns() -> None:
    answered = threading.Event()

    def stuck_resolver(host: str, port: int) -> list[IPAddress]:
        answered.wait(10)
        return [ipaddress.ip_address("127.0.0.1")]

    settings = make_settings(max_fetch_seconds=0.5)
    client = HttpClient(settings, AddressPolicy(allow_private=True), Throttle(1, 0), stuck_resolver)
    try:
        started = time.monotonic()
        error = fetch_error(lambda: client.get("http://slow-dns.example.test/"))
        assert error.transient and "too slowly" in error.reason
        assert time.monotonic() - started < 1.5
    finally:
        answered.set()
        client.close()


def test_waiting_for_the_throttle_is_not_the_servers_time(fixture_server: FixtureServer) -> None:
    url = fixture_server.set("/p", PAGE)
    with Fetcher(make_settings(max_fetch_seconds=0.5, per_host_delay=0.8)) as f:
        f.fetch(url)
        started = time.monotonic()
        assert f.fetch(url).status == 200  # waited 0.8 s for its turn, then fetched fast
        assert time.monotonic() - started >= 0.7


def test_a_fast_fetch_reuses_its_connection_after_the_deadline_reader(
    fixture_server: FixtureServer, fetcher: Fetcher
) -> None:
    url = fixture_server.set("/p", PAGE)
    assert fetcher.fetch(url).body == fetcher.fetch(url).body == PAGE.encode()
    ports = {r.client_port for r in fixture_server.requests}
    assert len(ports) == 1
