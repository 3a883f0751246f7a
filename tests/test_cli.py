"""The tracking commands through click's CliRunner, against a real local site."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from archive.cli import main
from tests.conftest import OTA_DIR, SEED_POLICIES, seed_text
from tests.pages import policy_page
from tests.support import Cli

WORKOPTIMA = "workoptima-privacy-policy.txt"


@pytest.fixture
def cli(make_cli, fixture_server) -> Cli:
    fixture_server.set("/privacy", policy_page("WorkOptima", seed_text(WORKOPTIMA)))
    return make_cli(
        f"""
data_dir = "data"
[fetch]
allow_private_addresses = true
per_host_delay = 0
timeout = 5
[notify]
allow_private_addresses = true
[[policy]]
service = "WorkOptima"
type = "Privacy Policy"
url = "{fixture_server.url("/privacy")}"
select = "main"
language = "en"
"""
    )


def test_init_check_list_history_show(cli, fixture_server):
    assert "Archive ready" in cli("init").output
    out = cli("check").output
    assert "WorkOptima" in out and "first record" in out
    fixture_server.set(
        "/privacy",
        policy_page("WorkOptima", seed_text(WORKOPTIMA).replace("January, 2020", "June, 2026")),
    )
    assert "changed" in cli("check", "WorkOptima").output
    assert "1 unchanged" in cli("check", "WorkOptima", "Privacy Policy").output

    listing = json.loads(cli("list", "--json").output)
    assert listing[0]["service"] == "WorkOptima" and listing[0]["versions"] == 2
    assert "WorkOptima" in cli("list").output

    history = json.loads(cli("history", "WorkOptima", "Privacy Policy", "--json").output)
    assert [h["kind"] for h in history] == ["first_record", "change"]
    assert set(history[0]) == {"version", "date", "kind", "url"}
    assert history[0]["url"] == fixture_server.url("/privacy")

    current = cli("show", "WorkOptima", "Privacy Policy").output
    assert "June, 2026" in current
    first = cli("show", "WorkOptima", "Privacy Policy", "--version", history[0]["version"])
    assert "January, 2020" in first.output
    at = cli("show", "WorkOptima", "Privacy Policy", "--at", history[1]["date"])
    assert at.output == current
    before = cli("show", "WorkOptima", "Privacy Policy", "--at", "2001-01-01", code=1)
    assert "had no version yet on 2001-01-01" in before.output


def test_errors_are_one_line_and_non_zero(cli, tmp_path):
    cli("init")
    result = cli("show", "WorkOptima", "Privacy Policy", "--version", "zzz", code=1)
    assert "Error:" in result.output
    assert "Traceback" not in result.output
    result = cli("check", "Nobody", code=None)
    assert result.exit_code != 0 and "no policy of service 'Nobody'" in result.output
    result = cli("show", "WorkOptima", "Privacy Policy", "--at", "yesterday", code=None)
    assert "is not a date" in result.output
    missing = Cli(tmp_path / "none.toml")("list", code=1)
    assert "no such configuration file" in missing.output
    empty = cli("--data-dir", str(tmp_path / "fresh"), "list", code=1)
    assert "policy-archive init" in empty.output


def test_extract_a_saved_page(tmp_path):
    page = tmp_path / "saved.html"
    page.write_text(
        policy_page("Back Office", seed_text(next(iter(SEED_POLICIES)))), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["extract", "--html", str(page), "--select", "main"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# ") and "Accept all" not in result.output


def test_extract_with_an_open_terms_archive_declaration():
    index = json.loads((OTA_DIR / "snapshots" / "index.json").read_text(encoding="utf-8"))
    entry = next(
        e
        for e in index["entries"]
        if e["service"] == "GitHub" and e["document_type"] == "Privacy Policy"
    )
    html = OTA_DIR / "snapshots" / entry["html_file"]
    decl = OTA_DIR / "declarations" / "demo" / "GitHub.json"
    result = CliRunner().invoke(
        main,
        ["extract", "--html", str(html), "--declaration", str(decl), "--type", "Privacy Policy"],
    )
    assert result.exit_code == 0, result.output
    assert "GitHub" in result.output and "<div" not in result.output
    no_type = CliRunner().invoke(main, ["extract", "--html", str(html), "--declaration", str(decl)])
    assert no_type.exit_code == 2 and "--type" in no_type.output


def test_import_command(cli, tmp_path):
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "service": "Acme",
                "document_type": "Terms of Service",
                "language": "en",
                "versions": [
                    {"date": "2023-01-01T00:00:00Z", "text": "one"},
                    {"date": "2023-02-01T00:00:00Z", "text": "one"},
                    {"date": "2023-03-01T00:00:00Z", "text": "two", "kind": "technical_upgrade"},
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    out = cli("import", str(jsonl)).output
    assert "2 commits written" in out and "1 identical" in out
    history = json.loads(cli("history", "Acme", "Terms of Service", "--json").output)
    assert [(h["date"], h["kind"]) for h in history] == [
        ("2023-01-01T00:00:00+00:00", "first_record"),
        ("2023-03-01T00:00:00+00:00", "reextract"),
    ]
    assert "0 commits written" in cli("import", str(jsonl)).output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"service": "A", "document_type": "T", "versions": [{"date": "soon", "text": "x"}]}\n',
        encoding="utf-8",
    )
    result = cli("import", str(bad), code=1)
    assert "bad.jsonl:1" in result.output


@pytest.mark.parametrize("module", ["archive", "archive.cli"])
def test_python_dash_m_runs_the_command(module: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: policy-archive")
