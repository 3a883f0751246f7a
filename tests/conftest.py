"""Shared fixtures: a config in a tmp dir, an opened archive, the CLI; seed policies, the corpus.

Plain helpers (recording versions, running the CLI) are in ``tests/support.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED_DIR = SHARED / "fixtures" / "seed-policies"
OTA_DIR = SHARED / "corpus" / "ota"
OTA_JSONL = OTA_DIR / "policy_histories.jsonl"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from archive.alerts import LISTENERS  # noqa: E402
from archive.app import Archive  # noqa: E402
from archive.config import Config, config_from_mapping  # noqa: E402
from tests.support import Cli  # noqa: E402

pytest_plugins = [
    "tests.browser",
    "tests.fixture_server",
    "tests.smtp_server",
    "tests.webhook_receiver",
]

SEED_POLICIES = {
    # file name -> (service, type, language)
    "workoptima-privacy-policy.txt": ("WorkOptima", "Privacy Policy", "en"),
    "back-office-privacy-policy.txt": ("Back Office", "Privacy Policy", "en"),
    "backofficeservices-co-in-privacy-policy.txt": ("Back Office Services", "Privacy Policy", "en"),
    "backoffice-ee-uldtingimused-et.txt": ("Backoffice.ee", "General Terms", "et"),
}


def seed_text(name: str) -> str:
    return (SEED_DIR / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- search engines

ENGINES = ("whoosh", "tantivy")
ENGINE_MODULES = {
    "tests.test_search",
    "tests.test_index",
    "tests.test_search_cli",
    "tests.test_web_search",
    "tests.test_snippets_text",
    "tests.test_search_corpus",
}
"""Test modules that run once per search engine (``[whoosh]``, ``[tantivy]`` in the ids)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in ENGINE_MODULES and "search_engine" in metafunc.fixturenames:
        metafunc.parametrize("search_engine", ENGINES, indirect=True, scope="module")


@pytest.fixture(scope="module")
def search_engine(request: pytest.FixtureRequest) -> str:
    """The search engine the tests' configs choose (whoosh outside :data:`ENGINE_MODULES`)."""
    return str(getattr(request, "param", ENGINES[0]))


@pytest.fixture
def whoosh_only(search_engine: str) -> None:
    """For a test of the whoosh engine's own parts (its searcher pool, crafted whoosh files):
    ``@pytest.mark.usefixtures("whoosh_only")`` skips its other-engine runs."""
    if search_engine != "whoosh":
        pytest.skip("tests a part of the whoosh engine")


def with_engine(text: str, engine: str) -> str:
    """A config.toml text that chooses ``engine`` (unless it has a [search] table already)."""
    if engine == ENGINES[0] or "[search]" in text:
        return text
    return f'{text.rstrip()}\n\n[search]\nengine = "{engine}"\n'


@pytest.fixture
def make_config(tmp_path: Path, search_engine: str) -> Callable[..., Config]:
    """Build a Config for tests: data in tmp_path, SSRF guard off (loopback fixtures), the
    search engine of :func:`search_engine`."""

    def factory(policies: list[dict[str, Any]] | None = None, **sections: Any) -> Config:
        raw: dict[str, Any] = {"data_dir": str(tmp_path / "data")}
        raw["search"] = {"engine": search_engine}
        fetch = {"allow_private_addresses": True, "per_host_delay": 0.0, "timeout": 5.0}
        fetch.update(sections.pop("fetch", {}))
        raw["fetch"] = fetch
        notify = {"allow_private_addresses": True}
        notify.update(sections.pop("notify", {}))
        raw["notify"] = notify
        raw.update(sections)
        if policies:
            raw["policy"] = policies
        return config_from_mapping(raw, path=tmp_path / "config.toml")

    return factory


@pytest.fixture
def archive(make_config: Callable[..., Config]) -> Iterator[Archive]:
    """An empty archive opened as the writer."""
    with Archive.open(make_config(), writer=True, listeners=LISTENERS, create=True) as arch:
        yield arch


@pytest.fixture
def make_cli(tmp_path: Path, search_engine: str) -> Callable[[str], Cli]:
    """Write ``tmp_path/config.toml`` with this text (and the search engine of
    :func:`search_engine`) and return the CLI that reads it."""

    def factory(text: str) -> Cli:
        path = tmp_path / "config.toml"
        path.write_text(with_engine(text, search_engine), encoding="utf-8")
        return Cli(path)

    return factory
