"""One identity per document: the (service, type) a user writes is the key everywhere.

Names whose file name differs from them (``Acme: EU`` is stored as ``Acme- EU.md``) used to be
read back from git under the file name, so state and git disagreed: ``list`` showed two rows
and every change was reported as a first record.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from archive.config import config_from_mapping
from archive.errors import ConfigError
from tests.pages import policy_page
from tests.reliability.harness import git, parse_check_table, run_cli

NAMES = ["Acme: EU", "A/B Corp", unicodedata.normalize("NFD", "Ünïcode"), "Trailing "]
KEYS = ["Acme: EU", "A/B Corp", "Ünïcode", "Trailing"]  # as the archive names them
TYPE = "Privacy Policy"


def results(stdout: str) -> dict[tuple[str, str], str]:
    return {key: result for key, (result, _) in parse_check_table(stdout).items()}


def write_config(tmp_path: Path, server, version: int) -> Path:
    lines = [f'data_dir = "{tmp_path / "data"}"', "[fetch]", "allow_private_addresses = true"]
    lines.append("per_host_delay = 0")
    for i, name in enumerate(NAMES):
        body = f"We keep your data for {30 * (version + 1)} days. " * 40 + f"Policy {i}."
        server.set(f"/id{i}", policy_page(name, body))
        lines += [
            "[[policy]]",
            f"service = {json.dumps(name)}",
            f'type = "{TYPE}"',
            f'url = "{server.url(f"/id{i}")}"',
            'select = "main"',
        ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_names_that_are_not_file_names_keep_one_identity(tmp_path, fixture_server):
    config = write_config(tmp_path, fixture_server, 0)
    assert run_cli(config, "init").returncode == 0
    first = run_cli(config, "check")
    assert first.returncode == 0, first.describe()
    assert results(first.stdout) == {(k, TYPE): "first record" for k in KEYS}, first.stdout

    write_config(tmp_path, fixture_server, 1)
    second = run_cli(config, "check")
    assert second.returncode == 0, second.describe()
    assert results(second.stdout) == {(k, TYPE): "changed" for k in KEYS}, second.stdout
    third = run_cli(config, "check")
    assert results(third.stdout) == {(k, TYPE): "unchanged" for k in KEYS}, third.stdout

    listed = run_cli(config, "list", "--json")
    assert listed.returncode == 0, listed.describe()
    rows = json.loads(listed.stdout)
    assert sorted(r["service"] for r in rows) == sorted(KEYS)
    assert all(r["versions"] == 2 for r in rows), rows

    for key in KEYS:
        history = run_cli(config, "history", key, TYPE, "--json")
        assert history.returncode == 0, history.describe()
        assert [v["kind"] for v in json.loads(history.stdout)] == ["first_record", "change"]

    files = git(tmp_path / "data" / "archive", "ls-tree", "-r", "--name-only", "main").split("\n")
    assert "Acme- EU/Privacy Policy.md" in files and "A-B Corp/Privacy Policy.md" in files

    found = run_cli(config, "search", "days", "--service", "Acme: EU", "--json")
    assert found.returncode == 0, found.describe()
    assert {h["service"] for h in json.loads(found.stdout)["hits"]} == {"Acme: EU"}


@pytest.mark.parametrize(
    ("services", "message"),
    [
        (["Acme", "Acme "], "declared twice"),
        (["Ünïcode", unicodedata.normalize("NFD", "Ünïcode")], "declared twice"),
        (["Tab\tCorp"], "use 'Tab Corp'"),
    ],
)
def test_ambiguous_names_are_refused_at_load(tmp_path, services, message):
    raw = {
        "data_dir": str(tmp_path / "data"),
        "policy": [{"service": s, "type": TYPE, "url": "https://example.org/p"} for s in services],
    }
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, path=tmp_path / "config.toml")


def test_names_that_share_a_file_are_refused_with_both_named(tmp_path):
    raw = {
        "data_dir": str(tmp_path / "data"),
        "policy": [
            {"service": s, "type": TYPE, "url": "https://example.org/p"}
            for s in ("A/B Corp", "A:B Corp")
        ],
    }
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        + "\n".join(
            f'[[policy]]\nservice = "{p["service"]}"\ntype = "{TYPE}"\nurl = "{p["url"]}"'
            for p in raw["policy"]
        )
        + "\n",
        encoding="utf-8",
    )
    done = run_cli(config, "init")
    assert done.returncode == 1
    assert "'A/B Corp'" in done.stderr and "'A:B Corp'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
