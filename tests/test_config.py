"""Configuration: loaded once into frozen dataclasses; mistakes named with their fix."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from archive.config import RangeSelector, config_from_mapping, load_config, parse_duration
from archive.errors import ConfigError
from tests.conftest import OTA_DIR, REPO


def load(tmp_path: Path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def test_default_config_loads_and_tracks_workoptima():
    config = load_config(REPO / "config.toml", environ={})
    assert config.policy("WorkOptima", "Privacy Policy") is not None
    assert config.fetch.allow_private_addresses is False  # the SSRF guard is on by default
    assert config.data_dir == REPO / "data"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fetch.timeout = 1  # type: ignore[misc]


def test_policy_tables(tmp_path):
    config = load(
        tmp_path,
        """
data_dir = "d"
[[policy]]
service = "Acme"
type = "Privacy Policy"
urls = ["https://acme.example/a", "https://acme.example/b"]
select = ["main", {startAfter = "#top", endBefore = "footer"}]
remove = ".banner"
language = "en"
js = true
interval = "2h"
""",
    )
    (policy,) = config.policies
    assert policy.urls == ("https://acme.example/a", "https://acme.example/b")
    assert policy.sources[0].select == (
        "main",
        RangeSelector(start_after="#top", end_before="footer"),
    )
    assert policy.sources[1].remove == (".banner",)
    assert policy.js and policy.interval == timedelta(hours=2)
    assert config.data_dir == tmp_path / "d"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\ncolour="red"',
            "unknown key(s) colour",
        ),
        ('[[policy]]\nservice="A"\ntype="T"\nurl="ftp://a.example/x"', "not an http(s) URL"),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\ninterval="soon"',
            "is not a duration",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\ninterval="10s"',
            "under a minute",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\n'
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://b.example"',
            "declared twice",
        ),
        ('[fetch]\ntimeout="fast"', "[fetch]: timeout"),
        ("[fetch]\nretries=3", "unknown key(s) retries"),
        ("colour = 1", "unknown top-level key(s) colour"),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nselect={startAfter="a"}',
            "exactly one of startBefore/startAfter",
        ),
        ('[[policy]]\nservice="A"\ntype="T"', "exactly one of url"),
        ('[[alert]]\nchannel="pigeon"\ntarget="x"', "channel must be"),
        ('[[alert]]\ntarget="x"', "missing required key(s) channel"),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nurls=["https://b.example"]',
            "exactly one of url",
        ),
        ('[[policy]]\nservice="A"\ntype="T"\nurls=[]', "urls must be a non-empty list"),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nlanguage="English"',
            "language 'English' should be a code such as 'en'",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nignore=["(unclosed"]',
            "ignore pattern '(unclosed' is not valid",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nignore=["\\\\d*"]',
            "matches the empty string",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nignore=[1]',
            "ignore must be a list of regular expressions",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\nfilter="x"',
            "filter must be a list of names",
        ),
        (
            '[[policy]]\nservice="A"\ntype="T"\nurl="https://a.example"\njs="yes"',
            "js = 'yes': expected true or false",
        ),
        (
            '[[policy]]\nservice=""\ntype="T"\nurl="https://a.example"',
            "[[policy]] #1: service must be a non-empty string",
        ),
        (
            '[[policy]]\nservice="A\\u200bB"\ntype="T"\nurl="https://a.example"',
            "contains control or invisible characters, which cannot be told apart in a list or "
            "a file name; use 'A B'",
        ),
        ("policy = 1", "use [[policy]] tables (double brackets) for policies"),
        ("alert = 1", "use [[alert]] tables (double brackets) for alerts"),
        ("data_dir = 1", "data_dir = 1: expected a path string"),
        ("declarations = 1", "declarations = 1: expected a path string"),
        ("[fetch]\nconcurrency = 0", "[fetch] concurrency must be ≥ 1"),
        ("[web]\nsearch_readers = 0", "[web] search_readers must be ≥ 1"),
    ],
)
def test_mistakes_name_file_policy_and_fix(tmp_path, body, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, body)
    assert message in str(info.value)
    assert "config.toml" in str(info.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "data_dir = ")


def test_environment_overrides(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('data_dir = "x"\n', encoding="utf-8")
    config = load_config(
        None,
        environ={
            "POLICY_ARCHIVE_CONFIG": str(path),
            "POLICY_ARCHIVE_DATA_DIR": str(tmp_path / "override"),
        },
    )
    assert config.data_dir == tmp_path / "override"
    assert load_config(path, data_dir=tmp_path / "flag", environ={}).data_dir == tmp_path / "flag"


def test_durations():
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration(True)


def test_open_terms_archive_declarations_load_as_they_are(tmp_path):
    folder = OTA_DIR / "declarations"
    config = config_from_mapping(
        {"declarations": str(folder / "demo")}, path=tmp_path / "config.toml"
    )
    github = config.policy("GitHub", "Privacy Policy")
    assert github is not None and github.sources[0].select == ("#article-contents",)
    contrib = config_from_mapping(
        {"declarations": str(folder / "contrib")}, path=tmp_path / "config.toml"
    )
    starlink = contrib.policy("Starlink", "Terms of Service")
    assert starlink is not None and len(starlink.sources) == 6 and starlink.js
    assert all(s.select == ("app-legal-document",) for s in starlink.sources)
    assert len(contrib.policies) > 200


def test_bad_declarations(tmp_path):
    folder = tmp_path / "decl"
    folder.mkdir()
    (folder / "Acme.json").write_text(
        '{"name": "Acme", "terms": {"Privacy Policy": {"select": "main"}}}', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"Acme\.json: terms 'Privacy Policy': needs 'fetch'"):
        config_from_mapping({"declarations": str(folder)}, path=tmp_path / "config.toml")
    with pytest.raises(ConfigError, match="no such folder"):
        config_from_mapping({"declarations": str(tmp_path / "none")}, path=tmp_path / "config.toml")


def test_policy_names_are_trimmed_and_nfc_and_a_single_ignore_pattern_is_a_list(tmp_path):
    config = load(
        tmp_path,
        """
[[policy]]
service = "  U\u0308nico  "
type = "Terms"
url = " https://u.example/terms "
ignore = 'generated at \\d+'
filter = ["removeDates"]
""",
    )
    (policy,) = config.policies
    assert policy.key == ("Ünico", "Terms")
    assert policy.urls == ("https://u.example/terms",)
    assert policy.ignore == (r"generated at \d+",)
    assert policy.sources[0].filters == ("removeDates",)
    assert policy.language is None and policy.interval is None and not policy.js


def test_settings_other_parts_rely_on_have_their_defaults(tmp_path):
    config = load(tmp_path, "")
    assert config.notify.allow_unguarded_apprise is False
    assert config.web.search_readers == 2
    config = load(tmp_path, "[notify]\nallow_unguarded_apprise = true\n[web]\nsearch_readers = 4")
    assert config.notify.allow_unguarded_apprise is True and config.web.search_readers == 4


def test_distributed_settings(tmp_path):
    """[database] url, [search] url/replicas: URLs checked when the file is read; the
    postgresql engine uses the database url unless [search] url is set."""
    config = config_from_mapping(
        {
            "database": {"url": "postgresql://archive@127.0.0.1:5432/archive"},
            "search": {
                "engine": "postgresql",
                "replicas": ["postgresql://archive@127.0.0.1:5433/archive"],
            },
        },
        path=tmp_path / "config.toml",
    )
    assert config.search_url == "postgresql://archive@127.0.0.1:5432/archive"
    assert config.search.replicas == ("postgresql://archive@127.0.0.1:5433/archive",)
    apart = config_from_mapping(
        {"search": {"engine": "postgresql", "url": "postgres://s@10.0.0.2/search"}},
        path=tmp_path / "config.toml",
    )
    assert apart.search_url == "postgres://s@10.0.0.2/search" and apart.database.url == ""
    assert config_from_mapping({}, path=tmp_path / "c.toml").search_url == ""


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"database": {"url": "mysql://x@h/db"}}, "[database]: url must be a URL such as"),
        ({"database": {"url": "postgresql://h:99999/db"}}, "bad port"),
        ({"queue": {"url": "redis://127.0.0.1:6379"}}, "unknown top-level key(s) queue"),
        ({"search": {"replicas": "nope"}}, "[search]: replicas must be a URL such as"),
        ({"search": {"engine": "postgresql"}}, "needs a database: set [database] url"),
        ({"search": {"engine": "opensearch"}}, "'whoosh' or 'tantivy' or 'postgresql'"),
    ],
)
def test_distributed_settings_mistakes(tmp_path, raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_mapping(raw, path=tmp_path / "config.toml")
    assert message in str(err.value)
