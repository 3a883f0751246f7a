"""The configuration reference is generated from the declared settings and agrees with them;
the README's config examples use only declared keys."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from typing import Any

import pytest

from archive.config import TABLES, Table
from archive.config.reference import COMMAND, render_reference
from tests.conftest import REPO

REFERENCE = REPO / "docs" / "configuration.md"
KEYS = [(t, f.name) for t in TABLES for f in dataclasses.fields(t.settings)]


def test_the_reference_is_the_generated_one():
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        f"docs/configuration.md is out of date: run {COMMAND}"
    )


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    return {part.splitlines()[0].strip("` "): part for part in parts[1:]}


@pytest.mark.parametrize(("table", "key"), KEYS, ids=[f"{t.header}-{k}" for t, k in KEYS])
def test_every_key_is_documented_in_its_table(table: Table, key: str):
    heading = "Top level" if not table.name else table.header
    section = _sections(REFERENCE.read_text(encoding="utf-8"))[heading]
    assert re.search(rf"^\| `{key}` \| [^|]+ \| [^|]+ \| \S", section, flags=re.MULTILINE)


@pytest.mark.parametrize(("table", "key"), KEYS, ids=[f"{t.header}-{k}" for t, k in KEYS])
def test_every_key_has_help_text(table: Table, key: str):
    spec = {f.name: f for f in dataclasses.fields(table.settings)}[key]
    assert spec.metadata.get("help", "").strip().endswith(".")
    assert table.settings.__doc__


def _readme_examples() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```toml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _unknown_keys(raw: dict[str, Any]) -> list[str]:
    tables = {t.name: t for t in TABLES}
    known_top = {f.name for f in dataclasses.fields(tables[""].settings)}
    unknown = []
    for key, value in raw.items():
        if key in known_top:
            continue
        if key not in tables:
            unknown.append(key)
            continue
        table = tables[key]
        fields = {f.name for f in dataclasses.fields(table.settings)}
        items = value if table.many else [value]
        unknown += [f"{table.header} {k}" for item in items for k in item if k not in fields]
    return unknown


def test_the_readme_has_config_examples():
    assert _readme_examples()


@pytest.mark.parametrize("example", _readme_examples())
def test_readme_config_examples_use_only_declared_keys(example: str):
    assert _unknown_keys(tomllib.loads(example)) == []


def test_the_shipped_config_uses_only_declared_keys():
    with (REPO / "config.toml").open("rb") as fh:
        assert _unknown_keys(tomllib.load(fh)) == []


def test_an_unknown_key_is_found():
    assert _unknown_keys({"fetch": {"retries": 3}, "policy": [{"colour": "red"}], "x": 1}) == [
        "[fetch] retries",
        "[[policy]] colour",
        "x",
    ]
