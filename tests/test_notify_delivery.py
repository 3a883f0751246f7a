"""Email alerts through a real SMTP server: content, headers, injection refusal, digests, TLS."""

from __future__ import annotations

import re
import time

import pytest

from archive.alerts import LISTENERS, deliver_pending
from archive.alerts.outbox import Outbox
from archive.alerts.tokens import UNSUBSCRIBE, read_token, secret_key
from archive.app import Archive
from tests.conftest import seed_text
from tests.smtp_server import SmtpServer, body_text
from tests.support import record_change

BASE = "http://archive.test"
SERVICE, TYPE = "WorkOptima", "Privacy Policy"
OLD = seed_text("workoptima-privacy-policy.txt")
SOLD = "your information will never be sold to or shared with other companies"
NEW = OLD.replace(
    SOLD, "we may sell your personal information <script>alert(1)</script> to other companies"
)
assert NEW != OLD


def mail_settings(server: SmtpServer, **extra: object) -> dict[str, object]:
    return {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "sender": "Policy Archive <alerts@archive.test>",
        **extra,
    }


def test_a_change_is_emailed_with_both_parts_the_diff_and_unsubscribe_headers(
    make_config, smtp_server
):
    config = make_config(
        smtp=mail_settings(smtp_server),
        web={"base_url": BASE, "secret_key": "s3cret"},
        alert=[
            {
                "channel": "email",
                "target": "alice@example.org",
                "service": SERVICE,
                "first_records": True,
            }
        ],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        v1 = record_change(archive, OLD)
        v2 = record_change(archive, NEW)
        report = deliver_pending(archive)
        assert (report.delivered, report.failed) == (2, 0)
        assert deliver_pending(archive).delivered == 0  # nothing twice
    first, change = smtp_server.wait_for(2)
    assert first["Subject"] == "Now tracking WorkOptima Privacy Policy"
    assert change["Subject"] == "Change to WorkOptima Privacy Policy"
    assert change["To"] == "alice@example.org"
    assert change["From"] == "Policy Archive <alerts@archive.test>"
    assert change["Message-ID"].endswith("@archive.test>")
    assert change["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click, mailto = change["List-Unsubscribe"].split(", ")
    assert one_click.startswith(f"<{BASE}/alerts/unsubscribe/") and one_click.endswith(">")
    assert mailto == "<mailto:alerts@archive.test?subject=unsubscribe>"
    token = one_click[1:-1].rsplit("/", 1)[1]
    assert read_token(secret_key(config), UNSUBSCRIBE, token) == 1
    assert change.get_content_type() == "multipart/alternative"

    text = body_text(change, "plain")
    diff_url = f"{BASE}/policies/WorkOptima/Privacy%20Policy/diff?from={v1.id}&to={v2.id}"
    assert diff_url in text
    assert "Recorded:" in text and v2.id[:10] in text and v1.id[:10] in text
    assert (
        "Except as outlined in this Policy, [-your information will never be sold to or shared "
        "with-] {+we may sell your personal information <script>alert(1)</script> to+} other "
        "companies"
    ) in text
    assert "Words added:" in text and "Words removed:" in text
    assert f"Unsubscribe: {one_click[1:-1]}" in text

    html = body_text(change, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ins = '<ins style="background:#d4f7d4;text-decoration:none">'
    assert re.search(re.escape(ins) + r"we may sell your personal information [^<]*</ins>", html)
    assert re.search(r'<del style="background:#fbd5d5">[^<]*will never be sold[^<]*</del>', html)
    assert diff_url.replace("&", "&amp;") in html
    assert f'href="{one_click[1:-1]}"' in html


def test_a_header_with_a_line_break_is_refused_and_nothing_is_sent(make_config, smtp_server):
    config = make_config(
        smtp=mail_settings(smtp_server, sender="alerts@archive.test\r\nBcc: all@example.org"),
        alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        report = deliver_pending(archive)
        [row] = Outbox(archive.state).rows()
    assert (report.delivered, report.failed) == (0, 1)
    assert "line break" in report.errors[0]
    assert row.status == "failed" and row.attempts == 1  # permanent: not retried
    assert smtp_server.received == []


def test_digest_subscribers_get_one_email_a_day_with_every_change(make_config, smtp_server):
    config = make_config(
        smtp=mail_settings(smtp_server),
        web={"base_url": BASE},
        alert=[
            {
                "channel": "email",
                "target": "daily@example.org",
                "digest": True,
                "first_records": True,
            },
            {"channel": "email", "target": "now@example.org", "first_records": True},
        ],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        record_change(archive, NEW)
        record_change(archive, OLD.replace("Analytics", "Analytics and advertising"))
        start = time.time()
        report = deliver_pending(archive)
        assert report.delivered == 3  # the immediate subscriber's three emails
        assert {m["To"] for m in smtp_server.messages} == {"now@example.org"}
        assert deliver_pending(archive, now=start + 3600).delivered == 0
        report = deliver_pending(archive, now=start + 86400 + 60)
        assert report.delivered == 3  # three alerts, one email
        # The next digest collects from now for a day. (A fresh text: NEW again, back to the
        # text of two versions before within a day, would be a flap and alert nobody.)
        record_change(archive, OLD.replace("Analytics", "Analytics and research"))
        assert deliver_pending(archive, now=time.time() + 3600).delivered == 1  # "now" only
    messages = smtp_server.wait_for(5)  # 3 + 1 immediate, 1 digest
    digests = [m for m in messages if m["To"] == "daily@example.org"]
    assert len(digests) == 1
    digest = digests[0]
    assert digest["Subject"] == "Policy Archive digest: 3 alerts"
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = body_text(digest, "plain")
    assert text.count("Now tracking WorkOptima Privacy Policy") == 1
    assert text.count("Change to WorkOptima Privacy Policy") == 2
    assert "{+and advertising+}" in text


def test_starttls_with_login_and_the_password_from_the_environment(
    make_config, tmp_path, monkeypatch
):
    server = SmtpServer(folder=tmp_path, tls=True, user="archive", password="pa55")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
    monkeypatch.setenv("POLICY_ARCHIVE_SMTP_PASSWORD", "pa55")
    server.start()
    try:
        config = make_config(
            smtp={
                "host": server.host,
                "port": server.port,
                "security": "starttls",
                "user": "archive",
                "sender": "alerts@archive.test",
            },
            alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
        )
        with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
            record_change(archive, OLD)
            assert deliver_pending(archive).delivered == 1
        [message] = server.wait_for(1)
        assert message["Subject"] == "Now tracking WorkOptima Privacy Policy"
    finally:
        server.stop()


def test_a_wrong_smtp_password_is_retried_then_reported(make_config, tmp_path, monkeypatch):
    server = SmtpServer(folder=tmp_path, tls=True, user="archive", password="pa55")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
    server.start()
    try:
        config = make_config(
            smtp={"host": server.host, "port": server.port, "user": "archive", "password": "wrong"},
            notify={"max_attempts": 2, "retry_base": 0.01},
            alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
        )
        with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
            record_change(archive, OLD)
            assert deliver_pending(archive).retried == 1
            [row] = Outbox(archive.state).rows()
            report = deliver_pending(archive, now=row.next_attempt)
            assert report.failed == 1 and "login failed" in report.errors[0]
        assert server.received == []
    finally:
        server.stop()


@pytest.mark.parametrize("security", ["ssl", "none"])
def test_unreachable_smtp_server_is_a_retry_not_a_crash(make_config, security):
    config = make_config(
        smtp={"host": "127.0.0.1", "port": 9, "security": security, "timeout": 2},
        alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        report = deliver_pending(archive)
        [row] = Outbox(archive.state).rows()
        [attempt] = Outbox(archive.state).attempts(row.id)
    assert report.retried == 1 and row.status == "pending" and row.next_attempt > time.time()
    assert attempt["outcome"] == "retry" and "could not send" in attempt["error"]


def test_list_unsubscribe_goes_out_literally_not_rfc2047_encoded(make_config, smtp_server):
    """Mail providers look for ``<https://…>`` in the raw header: a long base URL and token
    must not turn it into ``=?utf-8?q?=3Chttps…?=`` encoded words."""
    base = "https://policy-archive.example.org/a/rather/long/prefix/for/this/archive"
    config = make_config(
        smtp=mail_settings(smtp_server),
        web={"base_url": base, "secret_key": "s3cret"},
        alert=[{"channel": "email", "target": "alice@example.org", "first_records": True}],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_change(archive, OLD)
        assert deliver_pending(archive).delivered == 1
    smtp_server.wait_for(1)
    [received] = smtp_server.received
    header = next(
        line for line in received.raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")
    )
    assert b"=?" not in header
    value = header.removeprefix(b"List-Unsubscribe: ").decode("ascii")
    one_click, mailto = value.split(", ")
    assert one_click.startswith(f"<{base}/alerts/unsubscribe/") and one_click.endswith(">")
    assert len(one_click) > 78  # long enough that the default policy would have encoded it
    assert mailto == "<mailto:alerts@archive.test?subject=unsubscribe>"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_flapping_page_emails_the_operator_once_with_the_lines_and_what_to_do(
    make_config, smtp_server
):
    config = make_config(
        smtp=mail_settings(smtp_server),
        web={"base_url": BASE},
        alert=[{"channel": "email", "target": "ops@example.org"}],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        v1, v2, v3, _ = (record_change(archive, text) for text in (OLD, NEW, OLD, NEW))
        assert deliver_pending(archive).delivered == 2  # the first flip; one flapping notice
    change, notice = smtp_server.wait_for(2)
    assert change["Subject"] == "Change to WorkOptima Privacy Policy"
    assert notice["Subject"] == "WorkOptima Privacy Policy flaps between two texts: alerts held"
    assert notice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text = body_text(notice, "plain")

    def line(start: str) -> str:
        return next(x for x in text.splitlines() if x.startswith(start))

    assert "back to the text it served less than a day before" in text
    assert f"({v1.id[:10]})" in line("Back to the text of:") and f"({v3.id[:10]})" in line(
        "Recorded:"
    )
    assert "Lines removed:       1" in text and "Lines added:         1" in text
    removed = "  - Except as outlined in this Policy, we may sell your personal information"
    added = "  + Except as outlined in this Policy, your information will never be sold to"
    assert removed in text and added in text
    assert "add an `ignore` pattern" in text and "a `remove` selector" in text
    assert "docs/noise.md" in text
    diff_url = f"{BASE}/policies/WorkOptima/Privacy%20Policy/diff?from={v2.id}&to={v3.id}"
    assert f"Full diff: {diff_url}" in text

    html = body_text(notice, "html")
    assert "<script>" not in html
    assert (
        '<li><del style="background:#fbd5d5">Except as outlined in this Policy, we may sell '
        "your personal information &lt;script&gt;alert(1)&lt;/script&gt;"
    ) in html
    assert '<li><ins style="background:#d4f7d4;text-decoration:none">Except as outlined' in html
    assert "<code>ignore</code> pattern" in html and "<code>remove</code> selector" in html
    assert diff_url.replace("&", "&amp;") in html
