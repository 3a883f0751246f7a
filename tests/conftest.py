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
    "tests.services",
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

ENGINES = ("whoosh", "tantivy", "postgresql")
ENGINE_MODULES = {
    "tests.test_search",
    "tests.test_index",
    "tests.test_search_cli",
    "tests.test_web_search",
    "tests.test_snippets_text",
    "tests.test_search_corpus",
}
"""Test modules that run once per search engine (``[whoosh]``, ``[tantivy]`` in the ids)."""


STATE_BACKENDS = ("sqlite", "postgresql")
STATE_MODULES: set[str] = set()
"""Test modules that run once per state backend (``[sqlite]``, ``[postgresql]`` in the ids)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in ENGINE_MODULES and "search_engine" in metafunc.fixturenames:
        metafunc.parametrize("search_engine", ENGINES, indirect=True, scope="module")
    if metafunc.module.__name__ in STATE_MODULES and "state_backend" in metafunc.fixturenames:
        metafunc.parametrize("state_backend", STATE_BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def state_backend(request: pytest.FixtureRequest) -> str:
    """Where the tests' configs keep state: ``sqlite`` (state.sqlite, the default) or
    ``postgresql`` (a database of the test's own) in :data:`STATE_MODULES`."""
    return str(getattr(request, "param", STATE_BACKENDS[0]))


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


def service_tables(request: pytest.FixtureRequest, engine: str) -> dict[str, Any]:
    """The config tables that put this test's state and search where its parameters say:
    ``[database] url`` for a PostgreSQL state backend or search engine (a database of the
    test's own, from ``postgres_url``)."""
    backend = (
        request.getfixturevalue("state_backend")
        if "state_backend" in (request.fixturenames)
        else "sqlite"
    )
    if engine != "postgresql" and backend != "postgresql":
        return {}
    return {"database": {"url": request.getfixturevalue("postgres_url")}}


def with_engine(text: str, engine: str, tables: dict[str, Any] | None = None) -> str:
    """A config.toml text that chooses ``engine`` (unless it has a [search] table already) and
    adds ``tables`` (``{"database": {"url": ...}}``) it does not have."""
    if engine != ENGINES[0] and "[search]" not in text:
        text = f'{text.rstrip()}\n\n[search]\nengine = "{engine}"\n'
    for name, values in (tables or {}).items():
        if f"[{name}]" not in text:
            body = "".join(f'{k} = "{v}"\n' for k, v in values.items())
            text = f"{text.rstrip()}\n\n[{name}]\n{body}"
    return text


@pytest.fixture
def make_config(
    tmp_path: Path, search_engine: str, request: pytest.FixtureRequest
) -> Callable[..., Config]:
    """Build a Config for tests: data in tmp_path, SSRF guard off (loopback fixtures), the
    search engine of :func:`search_engine`."""

    def factory(policies: list[dict[str, Any]] | None = None, **sections: Any) -> Config:
        raw: dict[str, Any] = {"data_dir": str(tmp_path / "data")}
        raw["search"] = {"engine": search_engine}
        raw.update(service_tables(request, search_engine))
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
def make_cli(
    tmp_path: Path, search_engine: str, request: pytest.FixtureRequest
) -> Callable[[str], Cli]:
    """Write ``tmp_path/config.toml`` with this text (and the search engine of
    :func:`search_engine`, the state backend of ``state_backend``) and return the CLI that
    reads it."""

    def factory(text: str) -> Cli:
        path = tmp_path / "config.toml"
        tables = service_tables(request, search_engine)
        path.write_text(with_engine(text, search_engine, tables), encoding="utf-8")
        return Cli(path)

    return factory
