"""The search engines give the same answers on the OTA corpus (301 histories, 1,510 versions).

The corpus is imported once through the CLI (``import``, which builds the index of the engine
in its config: tantivy), copied, and reindexed with whoosh and with PostgreSQL through the CLI
(``reindex``). Every query then runs on whoosh and on each other engine: the same number of
hits, the same policies (all pages), the same matching versions with ``--history``, and the same
first hit where whoosh ranks it clearly first. And the tantivy engine indexes the terms of the
project's own analysers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from archive.app import Archive
from archive.config import load_config
from archive.search import MAX_LIMIT, parse_query, search
from store.index.analysis import ANALYSED, PolicyAnalyzer
from tests.conftest import OTA_JSONL
from tests.services import new_database
from tests.support import Cli

pytestmark = pytest.mark.slow

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("cookies", {}),
    ("retention", {}),
    ("arbitration", {}),
    ("biometric", {}),
    ("retention 30 days", {}),
    ("delete your account", {}),
    ("third party cookies", {}),
    ("children under 13", {}),
    ("données personnelles conservation", {}),
    ("sell personal information", {}),
    ('"30 days"', {}),
    ('"sell your personal information"', {}),
    ('"legitimate interest"', {}),
    ('"do not track"', {}),
    ('"données personnelles"', {}),
    ('"standard contractual clauses"', {}),
    ("arbitration -class", {}),
    ("arbitration NOT (class OR jury)", {}),
    ("transfer OR transmit", {}),
    ("cook*", {}),
    ("retent* days", {}),
    ("-cookies", {}),
    ("isikuandmete", {}),
    ("e-mail", {}),
    ("cookies", {"type": "Terms of Service"}),
    ("retention", {"lang": "fr"}),
    ("advertising lang:en", {}),
    ("location lang:de", {}),
    ('cookies type:"Privacy Policy"', {}),
    ("service:Facebook OR service:Instagram", {}),
    ("children", {"date_from": date(2022, 1, 1), "date_to": date(2022, 12, 31)}),
    ("cookies", {"history": True}),
    ("retention 30 days", {"history": True}),
    ('"sell your personal information"', {"history": True}),
    ('"30 days"', {"history": True}),
    ("biometric", {"history": True}),
    ("données personnelles", {"history": True}),
    ("arbitration -class", {"history": True}),
]
CLEARLY_FIRST = 1.25  # whoosh's first hit scores this much more than its second


OTHERS = ("tantivy", "postgresql")  # each compared with whoosh


@pytest.fixture(scope="module")
def engines(tmp_path_factory, request) -> Iterator[dict[str, Archive]]:
    root = tmp_path_factory.mktemp("engines")
    configs = {}
    with ExitStack() as stack:
        database = stack.enter_context(new_database(request.getfixturevalue("services")))
        for engine in ("tantivy", "whoosh", "postgresql"):
            path = root / engine / "config.toml"
            path.parent.mkdir()
            url = f'url = "{database}"\n' if engine == "postgresql" else ""
            path.write_text(
                f'data_dir = "{root / engine / "data"}"\n\n[search]\nengine = "{engine}"\n{url}',
                encoding="utf-8",
            )
            configs[engine] = path
        Cli(configs["tantivy"])("import", str(OTA_JSONL))
        for engine in ("whoosh", "postgresql"):
            shutil.copytree(
                root / "tantivy" / "data",
                root / engine / "data",
                ignore=shutil.ignore_patterns("index", "index.*"),
            )
            assert "Indexed 1,510 versions" in Cli(configs[engine])("reindex").output
        archives = {e: Archive(load_config(p), writer=False) for e, p in configs.items()}
        try:
            yield archives
        finally:
            for archive in archives.values():
                archive.close()


def every_hit(archive: Archive, q: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """All hits of a query, page by page, as the JSON API gives them."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        results = search(archive, q, limit=MAX_LIMIT, page=page, **options)
        out.extend(results.as_json()["hits"])
        if page >= results.pages:
            return out
        page += 1


@pytest.mark.parametrize("other", OTHERS)
def test_both_engines_index_the_same_versions(engines, other):
    whoosh, found = engines["whoosh"].index.stats(), engines[other].index.stats()
    assert (found.policies, found.versions, found.head) == (
        whoosh.policies,
        whoosh.versions,
        whoosh.head,
    )
    assert found.sections == whoosh.sections  # the same sections and runs


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize(("q", "options"), QUERIES, ids=[f"{q} {o}" for q, o in QUERIES])
def test_both_engines_find_the_same_policies(engines, q, options, other):
    found = {e: every_hit(engines[e], q, options) for e in ("whoosh", other)}
    assert len(found[other]) == len(found["whoosh"])
    keys = {e: {(h["service"], h["type"]): h for h in hits} for e, hits in found.items()}
    assert keys[other].keys() == keys["whoosh"].keys()
    shown = ("version", "lang", "current", "first_match", "last_match", "matched_versions")
    for key, hit in keys["whoosh"].items():
        theirs = keys[other][key]
        assert {k: theirs.get(k) for k in shown} == {k: hit.get(k) for k in shown}, key
        if "<mark>" in hit["snippet"]:  # a matched word shown (whoosh may show none)
            assert "<mark>" in theirs["snippet"], key
    ranked = found["whoosh"]
    if len(ranked) >= 2 and ranked[0]["score"] >= CLEARLY_FIRST * ranked[1]["score"] > 0:
        assert found[other][0]["service"] == ranked[0]["service"]


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize(
    "q", ['"30 days"', "arbitration -class", "biometric OR fingerprint", "cookies lang:fr"]
)
def test_both_engines_give_the_same_clause_timelines(engines, q, other):
    timelines = {e: engines[e].index.match_versions(parse_query(q)) for e in ("whoosh", other)}
    assert timelines[other] == timelines["whoosh"]
    assert timelines[other]


def test_the_tantivy_engine_indexes_the_project_analysers_terms():
    """It analyses in Python (a faster path to the same terms), so both engines match the
    same words."""
    from store.index.tantivy.terms import analysed

    with OTA_JSONL.open(encoding="utf-8") as fh:
        texts = [
            json.loads(line)["versions"][-1]["text"] for line, _ in zip(fh, range(40), strict=False)
        ]
    texts.append("Sécurité, SECURITE; e-mail e.g. example.com l'été 30 jours Ærø straße")
    for lang in ANALYSED:
        analyser = PolicyAnalyzer(lang)
        for text in texts:
            assert analysed(lang, text) == " ".join(analyser.terms(text))


def test_a_folder_of_the_other_engine_is_rebuilt_not_misread(tmp_path: Path):
    """Switching engine in the config: the next writer rebuilds the index."""
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    with OTA_JSONL.open(encoding="utf-8") as fh:
        items = [json.loads(line) for line, _ in zip(fh, range(3), strict=False)]
    for item in items:
        item["versions"] = item["versions"][:2]
    histories = tmp_path / "few.jsonl"
    histories.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    Cli(path)("import", str(histories))
    versions = sum(len(i["versions"]) for i in items)
    for engine in ("tantivy", "whoosh", "tantivy"):
        path.write_text(
            f'data_dir = "{tmp_path / "data"}"\n\n[search]\nengine = "{engine}"\n',
            encoding="utf-8",
        )
        with Archive(load_config(path), writer=False) as archive:
            assert not archive.index.exists()  # the other engine's folder is not this one's
        with Archive.open(load_config(path), writer=True) as archive:
            assert archive.index.stats().versions == versions
            assert search(archive, "*", history=True).total == len(items)
