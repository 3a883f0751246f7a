"""Done-when, end to end: `policy-archive check` on a locally served page that changes.

One commit, one email with the right diff, one signed webhook, one saved-search alert where the
phrase appeared; nothing for an unchanged check or a failed fetch; the first record only for
the subscription that asked for first records.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from archive.app import Archive
from archive.cli import main
from archive.config import load_config
from tests.conftest import seed_text
from tests.pages import policy_page
from tests.smtp_server import body_text

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PHRASE = "sell your personal information"
OLD = seed_text("workoptima-privacy-policy.txt")
NEW = OLD.replace("your information will never be sold to", f"we may {PHRASE} to")


def test_check_a_changing_page_alerts_every_channel_once(
    tmp_path: Path, fixture_server, smtp_server, webhook_receiver
):
    fixture_server.set("/privacy", policy_page("WorkOptima", OLD))
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f"""
data_dir = "data"
[fetch]
allow_private_addresses = true
per_host_delay = 0
timeout = 5
[web]
base_url = "https://archive.example"
[smtp]
host = "{smtp_server.host}"
port = {smtp_server.port}
security = "none"
[notify]
allow_private_addresses = true
[[policy]]
service = "WorkOptima"
type = "Privacy Policy"
url = "{fixture_server.url("/privacy")}"
select = "main"
[[alert]]
channel = "email"
target = "alice@example.org"
first_records = true
[[alert]]
channel = "webhook"
target = "{webhook_receiver.url("/hook")}"
secret = "{SECRET}"
[[alert]]
channel = "webhook"
target = "{webhook_receiver.url("/search")}"
secret = "{SECRET}"
query = '"{PHRASE}"'
""",
        encoding="utf-8",
    )
    runner = CliRunner()

    def check(exit_code: int = 0) -> str:
        result = runner.invoke(
            main, ["--config", str(config_file), "check"], catch_exceptions=False
        )
        assert result.exit_code == exit_code, result.output
        return result.output

    assert "first record" in check()
    assert len(smtp_server.wait_for(1)) == 1  # alice asked for first records
    assert webhook_receiver.calls == []  # the webhooks did not: delivered in the same run

    fixture_server.set("/privacy", policy_page("WorkOptima", NEW))
    assert "changed" in check()
    config = load_config(config_file)
    with Archive.open(config) as archive:
        history = archive.versions.history("WorkOptima", "Privacy Policy")
    assert [v.kind for v in history] == ["first_record", "change"]  # one commit
    old, new = history

    emails = smtp_server.wait_for(2)
    assert len(emails) == 2
    change = emails[1]
    assert change["Subject"] == "Change to WorkOptima Privacy Policy"
    text = body_text(change, "plain")
    assert "[-your information will never be sold" in text and "{+we may sell your" in text
    assert f"diff?from={old.id}&to={new.id}" in text

    calls = webhook_receiver.wait_for(2)
    assert len(calls) == 2
    by_path = {c.path: c for c in calls}
    assert set(by_path) == {"/hook", "/search"}
    assert all(c.verify(SECRET) for c in calls)
    hook, search = by_path["/hook"].json(), by_path["/search"].json()
    assert (hook["type"], hook["data"]["version"]) == ("version.recorded", new.id)
    assert (search["type"], search["data"]["query"]) == ("search.matched", f'"{PHRASE}"')
    assert search["data"]["version"] == new.id

    assert "unchanged" in check()
    fixture_server.fail("/privacy", times=1, status=500)
    assert "FAILED" in check(exit_code=1)  # a failed policy makes `check` exit 1
    assert len(smtp_server.messages) == 2
    assert len(webhook_receiver.calls) == 2
    with Archive.open(config) as archive:
        assert len(archive.versions.history("WorkOptima", "Privacy Policy")) == 2
