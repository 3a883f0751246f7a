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

pytest_plugins = ["tests.fixture_server", "tests.smtp_server", "tests.webhook_receiver"]

SEED_POLICIES = {
    # file name -> (service, type, language)
    "workoptima-privacy-policy.txt": ("WorkOptima", "Privacy Policy", "en"),
    "back-office-privacy-policy.txt": ("Back Office", "Privacy Policy", "en"),
    "backofficeservices-co-in-privacy-policy.txt": ("Back Office Services", "Privacy Policy", "en"),
    "backoffice-ee-uldtingimused-et.txt": ("Backoffice.ee", "General Terms", "et"),
}


def seed_text(name: str) -> str:
    return (SEED_DIR / name).read_text(encoding="utf-8")


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a Config for tests: data in tmp_path, SSRF guard off (loopback fixtures)."""

    def factory(policies: list[dict[str, Any]] | None = None, **sections: Any) -> Config:
        raw: dict[str, Any] = {"data_dir": str(tmp_path / "data")}
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
def make_cli(tmp_path: Path) -> Callable[[str], Cli]:
    """Write ``tmp_path/config.toml`` with this text and return the CLI that reads it."""

    def factory(text: str) -> Cli:
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        return Cli(path)

    return factory
