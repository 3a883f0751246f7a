"""Alert building blocks on their own: tokens, signatures, diffs, headers (saved searches:
test_saved_search_language.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from archive.alerts.content import AlertContent
from archive.alerts.delivery import backoff
from archive.alerts.emails import alert_email, safe_header
from archive.alerts.errors import HeaderInjectionError, NotifyError, TokenError
from archive.alerts.subscriptions import Subscription, check_target, new_webhook_secret
from archive.alerts.tokens import CONFIRM, UNSUBSCRIBE, make_token, read_token
from archive.alerts.webhooks import retry_after, sign, signing_key, verify

KEY = b"test key"


def test_tokens_round_trip_and_refuse_forgery_other_actions_and_age():
    token = make_token(KEY, UNSUBSCRIBE, 42)
    assert read_token(KEY, UNSUBSCRIBE, token) == 42
    with pytest.raises(TokenError, match="not valid"):
        read_token(KEY, CONFIRM, token)  # an unsubscribe link cannot confirm
    with pytest.raises(TokenError, match="not valid"):
        read_token(b"other key", UNSUBSCRIBE, token)
    body, mac = token.split(".")
    forged_body = base64.urlsafe_b64encode(b'{"s":43,"t":1}').rstrip(b"=").decode()
    with pytest.raises(TokenError):
        read_token(KEY, UNSUBSCRIBE, f"{forged_body}.{mac}")
    with pytest.raises(TokenError, match="incomplete"):
        read_token(KEY, UNSUBSCRIBE, body)
    old = make_token(KEY, CONFIRM, 7, now=1_000_000)
    assert read_token(KEY, CONFIRM, old, max_age=60, now=1_000_030) == 7
    with pytest.raises(TokenError, match="expired"):
        read_token(KEY, CONFIRM, old, max_age=60, now=1_000_061)


def test_standard_webhooks_signature_matches_the_reference_vector():
    # The example of https://www.standardwebhooks.com (and its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": f"v1,bm90IGl0 {signature}",
    }
    assert verify(secret, headers, body, now=1614265330 + 10)
    assert not verify(secret, headers, body + b" ", now=1614265330)
    assert not verify(secret, headers, body, now=1614265330 + 3600)  # replayed too late
    assert not verify(
        "whsec_" + base64.b64encode(b"x" * 24).decode(), headers, body, now=1614265330
    )
    assert signing_key("plain secret") == b"plain secret"
    generated = new_webhook_secret()
    assert generated.startswith("whsec_") and len(signing_key(generated)) == 24


def test_retry_after_seconds_or_http_date_and_backoff_grows_with_jitter():
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after("120", now) == 120
    later = format_datetime(datetime(2024, 5, 1, 12, 5, tzinfo=UTC), usegmt=True)
    assert retry_after(later, now) == pytest.approx(300)
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert retry_after("999999999", now) == 86400
    assert [backoff(n, 30, rng=lambda: 0.0) for n in (1, 2, 3)] == [15, 30, 60]
    assert [backoff(n, 30, rng=lambda: 1.0) for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(40, 30, rng=lambda: 1.0) == 6 * 3600


def test_headers_with_line_breaks_are_refused():
    assert safe_header("Subject", "Change to WorkOptima Privacy Policy")
    for bad in ("a\r\nBcc: victim@example.org", "a\nb", "a\rb", "a\x00b"):
        with pytest.raises(HeaderInjectionError):
            safe_header("Subject", bad)
    alert = AlertContent(
        "msg_1",
        "policy_recovered",
        {"service": "S", "type": "T", "failures": 3},
        "2024-01-01T00:00:00",
    )
    sub = Subscription(1, "email", "alice@example.org\r\nBcc: mallory@example.org")
    with pytest.raises(HeaderInjectionError):
        alert_email(
            [alert],
            sub=sub,
            sender="archive@example.org",
            unsubscribe_url="https://archive.example/u",
        )
    good = Subscription(1, "email", "alice@example.org")
    with pytest.raises(HeaderInjectionError):
        alert_email(
            [alert],
            sub=good,
            sender="archive@example.org",
            unsubscribe_url="https://archive.example/u\r\nX-Evil: 1",
        )


def test_subscription_targets_are_validated():
    assert check_target("email", " alice@example.org ") == "alice@example.org"
    for bad in ("alice", "alice@exa mple.org", "alice@example.org\r\nBcc: x@y.z", "<a@b.c>"):
        with pytest.raises(NotifyError):
            check_target("email", bad)
    assert check_target("webhook", "https://hooks.example.org/x")
    with pytest.raises(NotifyError, match="webhook URL"):
        check_target("webhook", "ftp://hooks.example.org/x")
    assert check_target("apprise", "json://hooks.example.org/x")
    with pytest.raises(NotifyError, match="Apprise"):
        check_target("apprise", "nosuchservice://whatever")
    with pytest.raises(NotifyError, match="channel"):
        check_target("pigeon", "x")


def test_alert_titles_say_what_happened():
    facts = {
        "service": "S",
        "type": "T",
        "version": "a" * 40,
        "previous": None,
        "date": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "kind": "first_record",
    }
    assert AlertContent("m", "version_recorded", facts, "").title == "Now tracking S T"
    changed = facts | {"previous": "b" * 40}
    assert AlertContent("m", "version_recorded", changed, "").title == "Change to S T"
    matched = AlertContent("m", "search_matched", changed | {"query": "sell"}, "")
    assert matched.title == "S T now matches “sell”"
