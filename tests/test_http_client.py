"""The one guarded outbound HTTP client, as webhooks and Apprise use it: SSRF guard, pinning,
caps, deadlines, pooling; Apprise's generic HTTP kinds sent through it, other kinds refused."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest

from archive.alerts import content
from archive.alerts.apprise_sender import AppriseSender, load_apprise, message_body
from archive.alerts.content import AlertContent
from archive.alerts.errors import DeliveryError
from archive.alerts.webhooks import RESPONSE_LIMIT, WebhookSender, notify_client
from archive.config import NotifySettings
from archive.errors import FetchError
from archive.fetch import AddressPolicy, BlockedAddressError
from archive.fetch.client import GuardedClient
from archive.fetch.guard import IPAddress
from tests.fixture_server import FixtureServer
from tests.webhook_receiver import Call, WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOOPBACK = ipaddress.ip_address("127.0.0.1")
ALERT = AlertContent(
    alert_id="msg_2c6f0e",
    event=content.POLICY_FAILING,
    facts={
        "service": "WorkOptima",
        "type": "Privacy Policy",
        "failures": 3,
        "reason": 'HTTP 503 <from> the "site" & more',
        "transient": True,
    },
    created="2025-01-02T03:04:05+00:00",
    links={"policy": "https://archive.example/policies/WorkOptima/Privacy%20Policy"},
)


@pytest.fixture(name="client")
def client_fixture() -> Iterator[GuardedClient]:
    """The client of a delivery run that may reach loopback receivers."""
    client = notify_client(NotifySettings(allow_private_addresses=True))
    yield client
    client.close()


class CountingResolver:
    """A DNS that answers ``first`` once, then ``later`` (a rebinding attacker's DNS)."""

    def __init__(self, first: list[IPAddress], later: list[IPAddress]) -> None:
        self.first, self.later = first, later
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        with self._lock:
            self.calls.append(host)
            return self.first if len(self.calls) == 1 else self.later


def loopback_only_client(resolver: CountingResolver) -> GuardedClient:
    """A client whose guard is on, allowing only 127.0.0.1 (our receiver's address)."""
    return GuardedClient(
        AddressPolicy.build(False, ["127.0.0.1/32"]),
        timeout=5.0,
        total=5.0,
        max_body=RESPONSE_LIMIT,
        resolver=resolver,
    )


# ---------------------------------------------------------------------- SSRF guard


def test_a_webhook_to_a_private_address_is_refused_unless_allowed(
    webhook_receiver: WebhookReceiver,
) -> None:
    guarded = notify_client(NotifySettings(allow_private_addresses=False))
    try:
        with pytest.raises(DeliveryError) as refused:
            WebhookSender(NotifySettings(), guarded).send(webhook_receiver.url(), SECRET, ALERT)
        assert not refused.value.transient
        assert "loopback" in refused.value.reason
        assert "[notify] allow_private_addresses" in refused.value.reason
        assert webhook_receiver.calls == []
        # one request may lift the guard (the archive's own local receivers)
        response = guarded.request("POST", webhook_receiver.url("/allowed"), allow_private=True)
        assert response.status == 204
    finally:
        guarded.close()
    allowed = notify_client(NotifySettings(allow_private_addresses=True))
    try:
        sender = WebhookSender(NotifySettings(allow_private_addresses=True), allowed)
        assert sender.send(webhook_receiver.url("/hook"), SECRET, ALERT) == 204
    finally:
        allowed.close()
    _, call = webhook_receiver.wait_for(2)
    assert call.path == "/hook" and call.verify(SECRET)


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "169.254.169.254", "::ffff:127.0.0.1", "fd00::1", "192.168.0.10"]
)
def test_a_host_name_that_resolves_to_an_internal_address_is_refused(address: str) -> None:
    resolver = CountingResolver([ipaddress.ip_address(address)], [])
    client = loopback_only_client(resolver)
    try:
        with pytest.raises(BlockedAddressError, match="SSRF guard"):
            client.request("POST", "http://hooks.example.test/hook", body=b"{}")
    finally:
        client.close()
    assert resolver.calls == ["hooks.example.test"]


def test_the_address_checked_is_the_address_connected_to(
    webhook_receiver: WebhookReceiver,
) -> None:
    """DNS rebinding: the host resolves once, to an allowed address; a second lookup would
    give an internal one. The request goes to the checked address, with the name as Host."""
    resolver = CountingResolver([LOOPBACK], [ipaddress.ip_address("10.0.0.7")])
    client = loopback_only_client(resolver)
    url = f"http://rebind.example.test:{webhook_receiver.port}/hook"
    try:
        sender = WebhookSender(NotifySettings(), client)
        assert sender.send(url, SECRET, ALERT) == 204
        # the next request resolves again: now to an internal address, refused before sending
        with pytest.raises(DeliveryError, match="private network"):
            sender.send(url, SECRET, ALERT)
    finally:
        client.close()
    [call] = webhook_receiver.wait_for(1)
    assert call.headers["host"] == f"rebind.example.test:{webhook_receiver.port}"
    assert resolver.calls == ["rebind.example.test", "rebind.example.test"]


def test_redirects_are_not_followed(client: GuardedClient, fixture_server: FixtureServer) -> None:
    fixture_server.set("/inside", "secret")
    url = fixture_server.redirect("/hook", "http://169.254.169.254/latest/meta-data/")
    response = client.request("POST", url, body=b"{}")
    assert response.status == 302
    assert response.headers["location"] == "http://169.254.169.254/latest/meta-data/"
    assert [r.path for r in fixture_server.requests] == ["/hook"]


# ---------------------------------------------------------------------- caps and deadlines


def endless_body(request: BaseHTTPRequestHandler) -> None:
    """Answer 200 with a chunked body that never ends (until the client hangs up)."""
    request.close_connection = True
    request.rfile.read(int(request.headers.get("Content-Length") or 0))
    request.send_response(200)
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    chunk = b"x" * 8192
    try:
        for _ in range(100_000):  # 800 MB: far more than any cap
            request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        return  # the client stopped reading, as it should


def test_a_webhook_response_is_read_up_to_the_cap(
    client: GuardedClient, fixture_server: FixtureServer
) -> None:
    url = fixture_server.handle("/endless", endless_body)
    started = time.monotonic()
    assert WebhookSender(NotifySettings(), client).send(url, SECRET, ALERT) == 200
    response = client.request("POST", url, body=b"{}")
    assert time.monotonic() - started < 5
    assert response.truncated and len(response.body) == RESPONSE_LIMIT
    assert client.request("POST", url, body=b"{}", max_body=10).body == b"x" * 10


def test_a_declared_oversize_body_is_not_read(
    client: GuardedClient, fixture_server: FixtureServer
) -> None:
    def huge(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(10**9))
        request.end_headers()
        request.wfile.write(b"y" * 1000)
        request.close_connection = True

    url = fixture_server.handle("/huge", huge)
    response = client.request("POST", url, body=b"{}")
    assert (response.status, response.body, response.truncated) == (200, b"", True)


def test_a_trickling_receiver_is_bounded_by_the_whole_request_deadline(
    fixture_server: FixtureServer,
) -> None:
    url = fixture_server.trickle("/slow", "z" * 200, interval=0.1)  # each byte well in time
    client = notify_client(NotifySettings(allow_private_addresses=True, webhook_timeout=0.5))
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as slow:
            WebhookSender(NotifySettings(), client).send(url, SECRET, ALERT)
        assert time.monotonic() - started < 2.0
    finally:
        client.close()
    assert slow.value.transient
    assert "too slowly" in slow.value.reason and "[notify] webhook_timeout" in slow.value.reason


def test_connections_are_pooled_and_shared_by_threads(
    client: GuardedClient, fixture_server: FixtureServer
) -> None:
    url = fixture_server.set("/hook", "ok")
    errors: list[BaseException] = []

    def post() -> None:
        try:
            for _ in range(5):
                assert client.request("POST", url).body == b"ok"
        except (AssertionError, FetchError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == [] and fixture_server.hits("/hook") == 20
    before = len(fixture_server.requests)
    for _ in range(3):
        client.request("POST", url)
    # one request at a time: the same kept-alive connection each time
    assert len({r.client_port for r in fixture_server.requests[before:]}) == 1


# ---------------------------------------------------------------------- Apprise


def apprise_itself(url: str) -> None:
    """Let Apprise send ALERT to ``url`` with its own HTTP client (the reference)."""
    apprise = load_apprise()
    notifier = apprise.Apprise()
    assert notifier.add(url)
    assert notifier.notify(
        body=message_body(ALERT), title=ALERT.title, body_format=apprise.NotifyFormat.MARKDOWN
    )


def same_request(ours: Call, theirs: Call) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    for name in ("content-type", "user-agent", "authorization", "x-team"):
        assert ours.headers.get(name) == theirs.headers.get(name), name
    if ours.headers.get("content-type", "").startswith("application/x-www-form"):
        assert parse_qs(ours.body.decode()) == parse_qs(theirs.body.decode())
    else:
        assert ours.body == theirs.body


@pytest.mark.parametrize(
    "url",
    [
        "json://{host}/apprise",
        "json://bot:s3cret@{host}/apprise/json?+X-Team=legal&:type=&:message=text&:extra=1",
        "json://{host}/apprise/html?format=html",
        "xml://{host}/apprise/xml",
        "xml://{host}/apprise/xml?:Subject=Title&:Team=legal",
        "form://{host}/apprise/form",
        "form://bot:pw@{host}/apprise/form?-page=2&:message=body&+X-Team=ops",
    ],
)
def test_apprise_generic_http_goes_through_the_guard_as_apprise_would_send_it(
    client: GuardedClient, webhook_receiver: WebhookReceiver, url: str
) -> None:
    target = url.format(host=f"127.0.0.1:{webhook_receiver.port}")
    AppriseSender(NotifySettings(allow_private_addresses=True), client).send(target, ALERT)
    apprise_itself(target)
    ours, theirs = webhook_receiver.wait_for(2)
    same_request(ours, theirs)


def test_apprise_json_reaches_the_receiver_through_the_pinned_guarded_client(
    webhook_receiver: WebhookReceiver,
) -> None:
    """The host name exists only in our resolver: Apprise's own client could not send it."""
    resolver = CountingResolver([LOOPBACK], [ipaddress.ip_address("10.0.0.7")])
    client = loopback_only_client(resolver)
    url = f"json://chat.example.test:{webhook_receiver.port}/apprise"
    try:
        AppriseSender(NotifySettings(), client).send(url, ALERT)
        with pytest.raises(DeliveryError) as refused:  # rebound to an internal address
            AppriseSender(NotifySettings(), client).send(url, ALERT)
    finally:
        client.close()
    [call] = webhook_receiver.wait_for(1)
    assert call.path == "/apprise"
    assert call.headers["host"] == f"chat.example.test:{webhook_receiver.port}"
    message = call.json()
    assert message["title"] == ALERT.title
    assert "3 failed checks in a row" in message["message"]
    assert message["type"] == "info" and message["version"] == "1.0"
    assert refused.value.reason.startswith("apprise json:// refused to connect")
    assert not refused.value.transient


def test_apprise_json_to_a_loopback_address_is_refused(webhook_receiver: WebhookReceiver) -> None:
    settings = NotifySettings(allow_private_addresses=False)
    client = notify_client(settings)
    try:
        with pytest.raises(DeliveryError, match="loopback") as refused:
            AppriseSender(settings, client).send(
                f"jsons://127.0.0.1:{webhook_receiver.port}/apprise", ALERT
            )
    finally:
        client.close()
    assert not refused.value.transient
    assert webhook_receiver.calls == []


def test_apprise_answers_other_than_2xx_fail(
    client: GuardedClient, webhook_receiver: WebhookReceiver
) -> None:
    sender = AppriseSender(NotifySettings(allow_private_addresses=True), client)
    host = f"127.0.0.1:{webhook_receiver.port}"
    webhook_receiver.script(503, (302, {"Location": "http://169.254.169.254/"}))
    with pytest.raises(DeliveryError, match="answered HTTP 503") as down:
        sender.send(f"json://{host}/down", ALERT)
    assert down.value.transient and down.value.status == 503
    with pytest.raises(DeliveryError, match="redirects are not followed") as moved:
        sender.send(f"form://{host}/moved", ALERT)
    assert not moved.value.transient and "169.254.169.254" in moved.value.reason
    assert [c.path for c in webhook_receiver.wait_for(2)] == ["/down", "/moved"]


def test_an_apprise_kind_outside_the_guard_is_refused_with_a_clear_message(
    client: GuardedClient, webhook_receiver: WebhookReceiver
) -> None:
    url = f"ntfy://127.0.0.1:{webhook_receiver.port}/alerts"
    with pytest.raises(DeliveryError) as refused:
        AppriseSender(NotifySettings(allow_private_addresses=True), client).send(url, ALERT)
    reason = refused.value.reason
    assert not refused.value.transient
    assert reason.startswith("apprise ntfy:// URLs are refused")
    assert "outside the SSRF guard" in reason and "json://" in reason
    assert "[notify] allow_unguarded_apprise = true" in reason
    assert webhook_receiver.calls == []


def test_an_unguarded_apprise_kind_is_sent_by_apprise_when_allowed(
    client: GuardedClient, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.default = (200, {"Content-Type": "application/json"})
    url = f"ntfy://127.0.0.1:{webhook_receiver.port}/alerts"
    sender = AppriseSender(NotifySettings(), client, allow_unguarded=True)
    sender.send(url, ALERT)
    [call] = webhook_receiver.wait_for(1)
    assert call.headers["user-agent"] == "Apprise"
