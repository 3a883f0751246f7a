"""One diff engine: the page, the JSON diff, the feed, the e-mail and the webhook agree.

One change (an e-mail address, in a document with setext headings, and a formatting-only
edit: an emphasis mark in another section) is recorded in a real archive, delivered to the
real SMTP server and the real webhook receiver, and read through the Flask test client: every
channel reports the same word counts (wording only), the same formatting-only count and the
same sections (those whose wording changed).
"""

from __future__ import annotations

import html
import re

from archive.alerts import LISTENERS, deliver_pending
from archive.app import Archive
from tests.smtp_server import body_text
from tests.support import SERVICE, SETEXT_POLICY, TYPE, record_change
from webui import create_app

BASE = "http://archive.test"
OLD = SETEXT_POLICY
NEW = OLD.replace(
    "privacy@workoptima.com", "data-protection.officer@workoptima.example.org"
).replace("keep account data", "keep *account* data")
SECTIONS = ["1. Contact"]


def test_every_channel_reports_the_same_change(make_config, smtp_server, webhook_receiver):
    config = make_config(
        smtp={
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "sender": "Policy Archive <alerts@archive.test>",
        },
        web={"base_url": BASE},
        alert=[
            {"channel": "email", "target": "alice@example.org"},
            {"channel": "webhook", "target": webhook_receiver.url("/hook"), "secret": "s3cret"},
        ],
    )
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        v1 = record_change(archive, OLD)
        v2 = record_change(archive, NEW)
        assert deliver_pending(archive).delivered == 2  # the change: one e-mail, one webhook
        client = create_app(config, archive=archive).test_client()
        quoted = f"/policies/{SERVICE}/{TYPE}".replace(" ", "%20")
        page = client.get(f"{quoted}/diff?from={v1.id}&to={v2.id}").text
        api = client.get(f"/api{quoted}/diff?from={v1.id}&to={v2.id}").get_json()
        feed = client.get("/feeds/changes.atom").text
        changes = client.get("/api/changes").get_json()
        listing = client.get("/changes").text
    (mail,) = smtp_server.wait_for(1)
    (hook,) = webhook_receiver.wait_for(1)

    summary = api["summary"]
    added, removed = summary["words_added"], summary["words_removed"]
    assert summary["sections"] == SECTIONS
    assert (added, removed) == (6, 3)  # data protection officer workoptima example org
    assert summary["formatting_changes"] == 1  # *account*: not counted as words
    assert summary["excerpts"][0]["section"] == "1. Contact"

    head = re.search(r'<p class="summary" id="summary">(.*?)</p>', page, re.S).group(1)
    assert f"+{added} words" in head and f"−{removed} words" in head
    assert "1 wording change, " in head and "1 formatting-only" in head
    assert re.findall(r'<a href="#change-\d+">(.*?)</a>', head) == SECTIONS

    (entry,) = [e for e in re.findall(r"<entry>.*?</entry>", feed, re.S) if v2.id in e]
    entry_summary = html.unescape(re.search(r"<summary>(.*?)</summary>", entry, re.S).group(1))
    assert entry_summary.startswith(
        f"{added} words added, {removed} removed; 1 formatting-only change; "
        f"sections: {', '.join(SECTIONS)}."
    )

    text = body_text(mail, "plain").replace("\r\n", "\n")
    assert re.search(rf"Words added: +{added}\n", text)
    assert re.search(rf"Words removed: +{removed}\n", text)
    assert re.search(rf"Sections: +{'; '.join(SECTIONS)}\n", text)

    data = hook.json()["data"]
    assert data["version"] == v2.id
    assert data["summary"]["words_added"] == added and data["summary"]["words_removed"] == removed
    assert data["summary"]["sections"] == SECTIONS
    assert data["summary"]["formatting_changes"] == summary["formatting_changes"]
    assert data["summary"]["excerpts"] == summary["excerpts"]

    listed = next(c for c in changes["changes"] if c["version"] == v2.id)
    assert listed["summary"] == {k: summary[k] for k in listed["summary"]}
    assert listed["summary"]["formatting_changes"] == 1
    assert "+6 / −3 words (1 wording change, 1 formatting-only) in 1. Contact" in listing
