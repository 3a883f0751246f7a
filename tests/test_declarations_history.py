"""Declarations as Open Terms Archive keeps them: ``<Service>.history.json`` and ``validUntil``.

The declaration valid at a date is the history entry with the earliest ``validUntil`` at or
after it, else the current ``<Service>.json`` (OTA's services/index.js). Checked on small
folders written here, on the 103 real history files of ../shared/corpus/ota (against the
declaration that corpus recorded for each of its 52 snapshots), and end to end through
``policy-archive reextract`` and ``policy-archive extract --declaration``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.cli import main
from archive.config import PolicyConfig, Source, parse_selectors
from archive.config.declarations import (
    declaration_at,
    history_path,
    load_declarations_dir,
    load_history,
    policy_at,
    terms_sources,
)
from archive.dates import parse_when
from archive.errors import ConfigError
from tests.conftest import OTA_DIR
from tests.support import Cli

URL = "https://acme.example/terms"


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def when(text: str) -> datetime:
    return parse_when(text, end_of_day=False)


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    """Acme.json (current: select #v3) and an unsorted Acme.history.json (#v1, #v2, combine)."""
    write(
        tmp_path / "Acme.history.json",
        {
            "Terms of Service": [
                {"fetch": URL, "select": "#v2", "remove": ".ad", "validUntil": "2023-06-01"},
                {"fetch": URL, "select": "#v1", "validUntil": "2022-01-01T12:00:00Z"},
            ],
            "Privacy Policy": [
                {
                    "combine": [{"fetch": f"{URL}/a"}, {"fetch": f"{URL}/b", "select": "b"}],
                    "select": "main",
                    "validUntil": "2021-03-04T05:06:07+02:00",
                }
            ],
        },
    )
    return write(
        tmp_path / "Acme.json",
        {
            "name": "Acme Inc.",
            "terms": {
                "Terms of Service": {"fetch": URL, "select": "#v3"},
                "Privacy Policy": {"fetch": f"{URL}/privacy", "select": "article"},
            },
        },
    )


def selects(policy: PolicyConfig) -> list[tuple]:
    return [(s.url, s.select, s.remove) for s in policy.sources]


def test_valid_until_is_accepted_in_a_terms_entry_and_checked():
    entry = {"fetch": URL, "select": "main", "validUntil": "2023-12-12T18:32:36Z"}
    assert terms_sources(entry) == (Source(url=URL, select=("main",)),)
    with pytest.raises(ConfigError, match="validUntil 'last tuesday' is not a date"):
        terms_sources({**entry, "validUntil": "last tuesday"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) validFrom"):
        terms_sources({**entry, "validFrom": "2020-01-01"})


def test_history_is_sorted_by_valid_until(acme: Path):
    history = load_history(history_path(acme))
    assert history_path(acme).name == "Acme.history.json"
    entries = history["Terms of Service"]
    assert [e.valid_until for e in entries] == [
        datetime(2022, 1, 1, 12, tzinfo=UTC),
        datetime(2023, 6, 1, tzinfo=UTC),  # a bare date is the start of that day, UTC
    ]
    assert [e.sources[0].select for e in entries] == [("#v1",), ("#v2",)]
    (combined,) = history["Privacy Policy"]
    assert combined.valid_until == datetime(2021, 3, 4, 3, 6, 7, tzinfo=UTC)
    assert [(s.url, s.select) for s in combined.sources] == [
        (f"{URL}/a", ("main",)),
        (f"{URL}/b", ("b",)),
    ]


@pytest.mark.parametrize(
    ("date", "wanted"),
    [
        ("2019-05-05T00:00:00Z", "#v1"),
        ("2022-01-01T12:00:00Z", "#v1"),  # validUntil is inclusive
        ("2022-01-01T12:00:01Z", "#v2"),
        ("2023-06-01T00:00:00Z", "#v2"),
        ("2023-06-01T00:00:01Z", "#v3"),  # after every validUntil: the current declaration
        ("2030-01-01T00:00:00Z", "#v3"),
    ],
)
def test_declaration_at_picks_the_entry_valid_at_the_date(acme: Path, date: str, wanted: str):
    policy = declaration_at(acme, "Terms of Service", when(date))
    assert (policy.service, policy.type, policy.origin) == ("Acme", "Terms of Service", str(acme))
    assert policy.sources[0].select == (wanted,)
    # The history file names the same service.
    assert declaration_at(history_path(acme), "Terms of Service", when(date)) == policy


def test_declaration_at_with_combined_sources_and_naive_dates(acme: Path):
    old = declaration_at(acme, "Privacy Policy", datetime(2021, 3, 4, 3, 6, 7))  # naive = UTC
    assert [s.url for s in old.sources] == [f"{URL}/a", f"{URL}/b"]
    new = declaration_at(acme, "Privacy Policy", datetime(2021, 3, 4, 3, 6, 8))
    assert selects(new) == [(f"{URL}/privacy", ("article",), ())]


def test_declaration_at_an_unknown_type_names_the_known_ones(acme: Path):
    with pytest.raises(ConfigError, match="no declaration of 'Imprint' valid at 2024") as caught:
        declaration_at(acme, "Imprint", when("2024-01-01"))
    assert "Terms of Service, Privacy Policy" in str(caught.value)


def test_history_without_a_current_declaration(tmp_path: Path):
    # france/Salto in the corpus: tracking stopped, only the history is left.
    path = write(
        tmp_path / "Gone.history.json",
        {"Terms of Service": [{"fetch": URL, "select": "main", "validUntil": "2022-02-02"}]},
    )
    assert declaration_at(path, "Terms of Service", when("2022-01-01")).sources[0].url == URL
    with pytest.raises(ConfigError, match="no declaration of 'Terms of Service' valid at 2023"):
        declaration_at(tmp_path / "Gone.json", "Terms of Service", when("2023-01-01"))


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "not an Open Terms Archive history file"),
        ({"T": {"fetch": URL, "validUntil": "2020-01-01"}}, r"expected a list .*\[\.\.\.\]"),
        ({"T": [{"fetch": URL, "select": "main"}]}, "T' entry 1: a history entry needs"),
        ({"T": [{"fetch": URL, "validUntil": "2020-13-01"}]}, "validUntil '2020-13-01'"),
        ({"T": [{"fetch": URL, "validUntil": "2020-01-01", "sel": "x"}]}, r"key\(s\) sel"),
        ({"T": ["main"]}, "T' entry 1: expected an object"),
    ],
)
def test_malformed_history_is_a_config_error_naming_the_entry(tmp_path, history, message):
    path = write(tmp_path / "Acme.history.json", history)
    with pytest.raises(ConfigError, match=message) as caught:
        load_history(path)
    assert str(path) in str(caught.value)


def test_tracking_loads_the_current_declarations_and_skips_history(acme: Path):
    history_path(acme).write_text("{ not json", encoding="utf-8")  # never read by the loader
    policies = {p.type: p for p in load_declarations_dir(acme.parent)}
    assert set(policies) == {"Terms of Service", "Privacy Policy"}
    assert policies["Terms of Service"].sources[0].select == ("#v3",)
    with pytest.raises(ConfigError, match="cannot read declaration"):
        policy_at(policies["Terms of Service"], when("2020-01-01"))


def test_policy_at_only_changes_policies_with_a_history_entry(acme: Path):
    current = {p.type: p for p in load_declarations_dir(acme.parent)}["Terms of Service"]
    past = policy_at(current, when("2020-01-01"))
    assert past.sources[0].select == ("#v1",) and past.origin == current.origin
    assert policy_at(current, when("2024-01-01")) is current
    toml = PolicyConfig(
        service="Acme",
        type="Terms of Service",
        sources=(Source(url=URL, select=parse_selectors("main", "t")),),
        origin=str(acme.parent / "config.toml"),
    )
    assert policy_at(toml, when("2020-01-01")) is toml


def test_real_history_files_give_the_declaration_ota_used_for_each_snapshot():
    """The corpus records, for each of its 52 snapshots, the declaration OTA resolved from the
    current file and its history: ours must be the same, history entries included."""
    histories = sorted((OTA_DIR / "declarations").glob("*/*.history.json"))
    assert len(histories) == 103
    assert sum(len(v) for path in histories for v in load_history(path).values()) == 291
    entries = json.loads((OTA_DIR / "snapshots" / "index.json").read_text(encoding="utf-8"))
    from_history = 0
    for entry in entries["entries"]:
        path = OTA_DIR / entry["declaration_files"][0]
        date = when(entry["snapshot"]["date"])
        policy = declaration_at(path, entry["document_type"], date)
        assert policy.sources == terms_sources(entry["declaration"], entry["id"]), entry["id"]
        if entry["declaration_source"] == "history":
            from_history += 1
            later = declaration_at(path, entry["document_type"], datetime(2100, 1, 1, tzinfo=UTC))
            assert later.sources != policy.sources, entry["id"]
    assert from_history == 6


# ------------------------------------------------------------------ through the CLI


@pytest.fixture
def cli_with_declarations(tmp_path: Path, make_cli) -> tuple[Path, Cli]:
    cli = make_cli(
        'data_dir = "data"\ndeclarations = "declarations"\n[fetch]\n'
        "allow_private_addresses = true\nper_host_delay = 0\ntimeout = 5\n"
        "[notify]\nallow_private_addresses = true\n"
    )
    (tmp_path / "declarations").mkdir()
    return tmp_path / "declarations", cli


PAGE = """<!DOCTYPE html><html><head><title>Acme terms</title></head><body>
<main><h1>Acme Terms of Service</h1>
<p>These terms govern your use of the Acme service and every purchase made through it.</p>
<p class="ad">Advertisement: try Acme Premium today</p>
<p>You may close your account at any time; we delete your data within thirty days.</p>
</main></body></html>"""


def test_reextract_uses_the_declaration_valid_at_the_snapshot_date(
    cli_with_declarations, fixture_server
):
    folder, cli = cli_with_declarations
    fixture_server.set("/terms", PAGE)
    url = fixture_server.url("/terms")
    write(folder / "Acme.json", {"name": "Acme", "terms": {"Terms of Service": {"fetch": url}}})
    cli("init")
    assert "first record" in cli("check").output
    shown = cli("show", "Acme", "Terms of Service").output
    assert "Advertisement" in shown

    # The declaration is then revised: the one in force when the snapshot was taken (now
    # fixed to drop the advertisement) goes to the history, valid until a moment after the
    # snapshot; the current one is for a new layout that the old snapshot does not have.
    valid_until = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    older = {"fetch": url, "select": "main", "remove": ".ad", "validUntil": valid_until}
    write(folder / "Acme.history.json", {"Terms of Service": [older]})
    write(
        folder / "Acme.json",
        {"name": "Acme", "terms": {"Terms of Service": {"fetch": url, "select": "#new-layout"}}},
    )
    out = cli("reextract").output
    assert "reextracted" in out, out
    text = cli("show", "Acme", "Terms of Service").output
    assert "Advertisement" not in text
    assert "# Acme Terms of Service" in text and "within thirty days" in text
    history = json.loads(cli("history", "Acme", "Terms of Service", "--json").output)
    assert [h["kind"] for h in history] == ["first_record", "reextract"]

    # Once the history entry ended before the snapshot, the current declaration applies.
    older["validUntil"] = "2001-01-01T00:00:00Z"
    write(folder / "Acme.history.json", {"Terms of Service": [older]})
    out = cli("reextract").output
    # (With the history entry still in force the text would come out "unchanged".)
    (row,) = [line for line in out.splitlines() if line.startswith("Acme")]
    assert "failed" in row and "no select sele" in row, out
    history = json.loads(cli("history", "Acme", "Terms of Service", "--json").output)
    assert [h["kind"] for h in history] == ["first_record", "reextract"]


def test_extract_accepts_a_history_entry_with_valid_until(tmp_path: Path):
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    entry = write(
        tmp_path / "entry.json",
        {"fetch": URL, "select": "main", "remove": ".ad", "validUntil": "2023-06-01T00:00:00Z"},
    )
    result = CliRunner().invoke(
        main, ["extract", "--html", str(page), "--declaration", str(entry)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "within thirty days" in result.output and "Advertisement" not in result.output
