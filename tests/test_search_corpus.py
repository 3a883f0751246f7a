"""Search over the imported OTA corpus (301 histories, 1,510 versions): known items, French
stemming, date ranges, facets, and query fuzzing within a time budget."""

from __future__ import annotations

import heapq
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest

from archive.app import Archive
from archive.config import config_from_mapping
from archive.search import QueryError, language_resolver, search, when
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from store.index.analysis import PolicyAnalyzer
from tests.conftest import OTA_JSONL
from tests.services import new_database

pytestmark = pytest.mark.slow

SENTENCE = re.compile(r"[A-ZÀ-Ý][^.!?\n*#|\[\]()]{80,200}[.!?]")


def histories() -> list[dict[str, Any]]:
    with OTA_JSONL.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def new_versions(items: list[dict[str, Any]]) -> Iterator[NewVersion]:
    """Each history in its own order (dates made increasing), histories merged by date."""
    plans = []
    for h in items:
        plan, last_text, last_date = [], None, None
        for i, v in enumerate(h["versions"]):
            if v["text"] == last_text:
                continue
            when = datetime.fromisoformat(v["date"].replace("Z", "+00:00"))
            if last_date is not None and when <= last_date:
                when = last_date + timedelta(seconds=1)
            plan.append(
                NewVersion(
                    h["service"],
                    h["document_type"],
                    v["text"],
                    when,
                    FIRST_RECORD if i == 0 else CHANGE,
                )
            )
            last_text, last_date = v["text"], when
        plans.append(plan)
    return heapq.merge(*plans, key=lambda v: v.date)


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory, search_engine, request
) -> Iterator[tuple[Archive, list[dict[str, Any]]]]:
    items = histories()
    folder = tmp_path_factory.mktemp("ota")
    with ExitStack() as stack:
        settings: dict[str, Any] = {"engine": search_engine}
        if search_engine == "postgresql":  # a database of this module's own
            settings["url"] = stack.enter_context(new_database(request.getfixturevalue("services")))
        config = config_from_mapping(
            {"data_dir": str(folder / "data"), "search": settings}, path=folder / "c.toml"
        )
        yield from _imported(config, items)


def _imported(config, items) -> Iterator[tuple[Archive, list[dict[str, Any]]]]:
    with Archive(config, writer=True, create=True) as archive:
        archive.versions.bulk_import(new_versions(items))
        with archive.state.connect() as db:
            for h in items:
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (f"lang:{h['service']}/{h['document_type']}", h["language"]),
                )
        count = archive.index.rebuild(
            archive.versions, processes=2, language_of=language_resolver(archive)
        )
        assert count == sum(len(h["versions"]) for h in items)
        yield archive, items


def words_of(text: str, lang: str) -> set[str]:
    """Index terms (stemmed) of ``text``."""
    return set(PolicyAnalyzer(lang).terms(text))


def distinctive_sentences(
    items: list[dict[str, Any]], lang: str, count: int
) -> list[tuple[str, Any]]:
    """Sentences of current versions whose words do not all occur in any other policy."""
    current = [words_of(h["versions"][-1]["text"], h["language"]) for h in items]
    out = []
    for i, h in enumerate(items):
        if h["language"] != lang:
            continue
        for sentence in SENTENCE.findall(h["versions"][-1]["text"]):
            if re.search(r"[/%@_=&]|\w\.\w", sentence):  # links, addresses: not typed words
                continue
            words = words_of(sentence, lang)
            if len(words) >= 8 and not any(
                words <= other for j, other in enumerate(current) if j != i
            ):
                out.append((sentence, h))
                break
        if len(out) == count:
            break
    return out


def test_known_item_search(corpus):
    archive, items = corpus
    cases = distinctive_sentences(items, "en", 12) + distinctive_sentences(items, "fr", 8)
    assert len(cases) == 20
    for sentence, h in cases:
        words = " ".join(re.findall(r"\w+", sentence))
        first = search(archive, words).hits[0]
        assert (first.service, first.type) == (h["service"], h["document_type"]), sentence
        phrase = search(archive, f'"{words}"')
        assert [(x.service, x.type) for x in phrase.hits] == [(h["service"], h["document_type"])]


def test_french_stemming(corpus):
    archive, items = corpus
    current = {
        (h["service"], h["document_type"]): h["versions"][-1]["text"]
        for h in items
        if h["language"] == "fr"
    }
    only_noun = {
        key
        for key, text in current.items()
        if re.search(r"\bconservation\b", text, re.I)
        and not re.search(r"\bconserv(é|ée|és|ées|er|ons)\b", text, re.I)
    }
    assert only_noun
    found = {(h.service, h.type) for h in search(archive, "conservées", lang="fr", limit=100).hits}
    assert only_noun <= found
    # and "données" with or without its accents
    accented = search(archive, "données", lang="fr").total
    assert accented > 50 and search(archive, "donnée", lang="fr").total == accented


def test_date_range_finds_the_version_then_in_force(corpus):
    archive, items = corpus
    checked = 0
    for h in items:
        versions = archive.versions.history(h["service"], h["document_type"])
        if len(versions) < 3:
            continue
        texts = [v["text"] for v in h["versions"]]
        gone = [
            s
            for s in SENTENCE.findall(texts[-3])
            if all(s not in t for t in texts[-2:])
            and all(
                s not in v["text"] for other in items if other is not h for v in other["versions"]
            )
        ]
        if not gone:
            continue
        phrase = '"' + " ".join(re.findall(r"\w+", gone[0])) + '"'
        old = versions[-3]
        day = (old.date + (versions[-2].date - old.date) / 2).date()
        if day in (old.date.date(), versions[-2].date.date()):
            continue
        assert search(archive, phrase).total == 0
        dated = search(archive, phrase, date_from=day, date_to=day)
        assert [(x.service, x.version.id) for x in dated.hits] == [(h["service"], old.id)]
        assert dated.hits[0].current is False
        assert dated.hits[0].version.valid_to == versions[-2].date
        history = search(archive, phrase, history=True).hits[0]
        assert history.last_match.id == old.id
        timeline = when(archive, phrase.strip('"'))
        assert [(t.service, t.type) for t in timeline] == [(h["service"], h["document_type"])]
        assert timeline[0].disappeared[-1].id == versions[-2].id
        checked += 1
        if checked == 5:
            break
    assert checked == 5


def test_facets_count_policies(corpus):
    archive, items = corpus
    results = search(archive, "*", limit=5)
    assert results.total == len(items)
    assert results.facets["lang"] == dict(Counter(h["language"] for h in items).most_common())
    types = Counter(h["document_type"] for h in items)
    assert results.facets["type"] == dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))
    cookies = search(archive, "cookies")
    assert sum(cookies.facets["lang"].values()) == cookies.total
    assert search(archive, "cookies", lang="fr").total == cookies.facets["lang"]["fr"]


def test_query_fuzzing_within_a_time_budget(corpus):
    archive, _ = corpus
    rng = random.Random(20240501)
    pieces = [
        "retention",
        "30",
        "days",
        "données",
        "cookies",
        '"',
        "(",
        ")",
        "OR",
        "AND",
        "NOT",
        "-",
        "*",
        "a*",
        "co*",
        "service:",
        "type:",
        "lang:fr",
        "foo:bar",
        "?",
        "é",
        "\u200b",
        "\\",
        "'",
        ":",
        "service:Work*",
        'type:"Privacy Policy"',
        "the",
        "of",
        "personal",
        "information",
        "x" * 300,
        "🙂",
        "-(",
        "))",
        "NOT NOT",
    ]
    budget = 6.0  # the engine's own budget is 3 s; the margin absorbs a loaded machine
    for _ in range(300):
        query = "".join(
            rng.choice(pieces) + rng.choice(["", " ", "  "]) for _ in range(rng.randint(1, 12))
        )
        start = time.monotonic()
        try:
            results = search(archive, query, history=rng.random() < 0.3)
        except QueryError as exc:
            assert str(exc)
        else:
            assert results.total >= 0
            for hit in results.hits:
                assert "<" not in re.sub(r"</?mark>", "", hit.snippet)
        assert time.monotonic() - start < budget, query
