"""Ranking people expect: words that stand together rank first, ``"…"~N`` proximity, phrases
across a paragraph break within a section, and queries that run out of time budget.

Texts are recorded in a real archive and indexed by ``archive.sync_index()``; queries go through
``archive.search.search`` and the CLI, and the saved-search matcher agrees on ``~N``. One test
takes distinctive passages of real policies (the OTA corpus) and types them without quotes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from archive.alerts.listener import parse_saved_search
from archive.app import Archive
from archive.config import config_from_mapping
from archive.search import QueryError, parse_query, search
from archive.search.matching import PolicyText, matches
from store.index.analysis import PolicyAnalyzer, field_language, fold, words
from store.index.query import IndexBusyError, Phrase, QueryTooBroadError, SearchQuery, Term
from store.index.sections import split_sections
from tests.conftest import OTA_JSONL
from tests.support import Cli, record_change

TYPE = "Privacy Policy"
FILLER = (
    "This notice is for all of you who use the site; it tells you what we do with what you "
    "give us and how to reach us when you have a question about it."
)
TEXTS = {
    # the four words in one sentence
    "Together": f"{FILLER}\n\nWe keep account records for a retention period of thirty days.",
    # the same words more often, but apart (BM25 alone ranks this one first)
    "Scattered": (
        f"{FILLER} Retention matters to us. Retention is reviewed.\n\n"
        + "\n\n".join(
            [
                "## Records\n\nAccount records are kept while the account is open. " * 3,
                "## Periods\n\nEach period is reviewed every year by our team. " * 3,
                "## Days\n\nFor thirty days after a request we answer your questions. " * 3,
            ]
        )
    ),
    # a sentence ending a paragraph, the next paragraph in the same section
    "Breaks": f"{FILLER}\n\nWe keep it safe.\n\nShare nothing else with anyone, ever.",
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder = tmp_path_factory.mktemp("ranking")
    config = config_from_mapping({"data_dir": str(folder / "data")}, path=folder / "c.toml")
    with Archive.open(config, writer=True, create=True) as archive:
        for service, text in TEXTS.items():
            archive.state.set_meta(f"lang:{service}/{TYPE}", "en")
            record_change(archive, text, service=service, type_=TYPE)
        yield archive


@pytest.fixture(scope="module")
def cli(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    path = tmp_path_factory.mktemp("ranking-cli") / "config.toml"
    path.write_text(f'data_dir = "{archive.config.data_dir}"\n', encoding="utf-8")
    return Cli(path)


def ranked(archive: Archive, query: str, **options: Any) -> list[str]:
    return [h.service for h in search(archive, query, limit=100, **options).hits]


def saved(archive: Archive, query: str) -> set[str]:
    tree = parse_saved_search(query)
    return {s for s, text in TEXTS.items() if matches(tree, PolicyText(s, TYPE, text, "en"))}


def test_words_standing_together_rank_above_scattered_ones(archive, cli):
    query = "retention period thirty days"
    assert ranked(archive, query) == ["Together", "Scattered"]
    assert ranked(archive, query, history=True) == ["Together", "Scattered"]
    hits = json.loads(cli("search", query, "--json").output)["hits"]
    assert [h["service"] for h in hits] == ["Together", "Scattered"]
    assert hits[0]["score"] > hits[1]["score"]


def test_proximity_phrase_allows_n_words_between_in_order(archive, cli):
    assert parse_query('"retention days"~10') == Phrase(("retention", "days"), slop=10)
    assert parse_query('"retention"~3') == Term("retention")
    assert ranked(archive, '"retention days"') == []
    for query, expected in [
        ('"retention days"~10', ["Together"]),
        ('"retention days"~3', ["Together"]),  # period of thirty: three words between
        ('"retention days"~2', []),
        ('"days retention"~10', []),  # in order
        ('"retention period thirty days"~2', ["Together"]),  # "of" between: one in all
    ]:
        assert ranked(archive, query) == expected, query
        assert ranked(archive, query, history=True) == expected, query
        assert sorted(saved(archive, query)) == expected, query
    hits = json.loads(cli("search", '"retention days"~10', "--json").output)["hits"]
    assert [h["service"] for h in hits] == ["Together"]
    assert "<mark>retention</mark>" in hits[0]["snippet"]
    with pytest.raises(QueryError, match="at most 50"):
        parse_query('"retention days"~51')


def test_a_phrase_crosses_a_paragraph_break_within_a_section(archive, cli):
    assert len(split_sections(TEXTS["Breaks"])) == 1
    for query in ['"keep it safe share nothing"', '"safe share"']:
        assert ranked(archive, query) == ["Breaks"]
        assert ranked(archive, query, history=True) == ["Breaks"]
        assert saved(archive, query) == {"Breaks"}
        hits = json.loads(cli("search", query, "--json").output)["hits"]
        assert [h["service"] for h in hits] == ["Breaks"]


@pytest.fixture(scope="module")
def long_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """One policy of 2,500 sections, each with the words searched: enough postings that a
    search checks its budget many times while reading them."""
    folder = tmp_path_factory.mktemp("ranking-long")
    config = config_from_mapping({"data_dir": str(folder / "data")}, path=folder / "c.toml")
    parts = [
        f"## Part {k}\n\nRecords of part {k} are kept for a retention period of {k % 90} days; "
        f"the retention of part {k} is reviewed each year. {FILLER}"
        for k in range(2500)
    ]
    with Archive.open(config, writer=True, create=True) as archive:
        archive.state.set_meta(f"lang:Long/{TYPE}", "en")
        record_change(archive, "\n\n".join(parts[:1000]), service="Long", type_=TYPE)
        record_change(archive, "\n\n".join(parts), service="Long", type_=TYPE)
        for service, text in TEXTS.items():
            record_change(archive, text, service=service, type_=TYPE)
        yield archive


@pytest.mark.parametrize("history", [False, True])
def test_a_query_out_of_budget_is_refused_never_broken(long_archive, history):
    """Whatever point a query's budget runs out at, the answer is the full one or a refusal
    (QueryTooBroadError, IndexBusyError): never another error (a KeyError from a reader's
    jump), never a partial answer."""
    index = long_archive.index
    queries = ['"retention period"', '"retention days"~10', "retention period days", "retent*"]
    for text in queries:
        tree = parse_query(text)
        full = index.search(SearchQuery(text, tree, history=history))
        assert {"Together", "Long"} <= {h.service for h in full.hits}
        answered = refused = 0
        for budget in [0.0, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]:
            query = SearchQuery(text, tree, history=history, time_budget=budget)
            try:
                got = index.search(query)
            except (QueryTooBroadError, IndexBusyError):
                refused += 1
                continue
            answered += 1
            assert [(h.service, h.matched_versions) for h in got.hits] == [
                (h.service, h.matched_versions) for h in full.hits
            ]
        assert refused, text  # a budget of 0 is over at the first check
        try:
            timeline = index.match_versions(tree, time_budget=1e-4)
        except (QueryTooBroadError, IndexBusyError):
            continue
        assert timeline == index.match_versions(tree)


def _passages(histories: list[dict[str, Any]], count: int, n: int) -> list[tuple[str, str]]:
    """(policy, passage): ``n`` consecutive words of one section of a current text, in no
    other policy's current text as the search box reads it."""
    texts = {}
    for h in histories:
        analyser = PolicyAnalyzer(field_language(h["language"]))
        sections = [
            [m.group() for m in words(s.text)] for s in split_sections(h["versions"][-1]["text"])
        ]
        texts[h["service"] + "/" + h["document_type"]] = (sections, analyser)
    seen: dict[tuple[str, ...], int] = {}
    for sections, analyser in texts.values():
        grams = set()
        for tokens in sections:
            for terms in ([analyser.term(t) for t in tokens], [fold(t) for t in tokens]):
                grams |= {tuple(terms[i : i + n]) for i in range(len(terms) - n + 1)}
        for gram in grams:
            seen[gram] = seen.get(gram, 0) + 1
    rng = random.Random(3)
    out = []
    for name in sorted(texts):
        sections, analyser = texts[name]
        long = [t for t in sections if len(t) >= n]
        for _ in range(30):
            if not long:
                break
            tokens = rng.choice(long)
            start = rng.randrange(len(tokens) - n + 1)
            chosen = tokens[start : start + n]
            if any(w in ("AND", "OR", "NOT") or len(w) < 2 for w in chosen):
                continue
            if seen[tuple(analyser.term(w) for w in chosen)] == 1 == seen[tuple(map(fold, chosen))]:
                out.append((name, " ".join(chosen)))
                break
    return out[:count]


@pytest.mark.slow
def test_distinctive_passages_of_real_policies_typed_without_quotes(tmp_path):
    with OTA_JSONL.open(encoding="utf-8") as fh:
        histories = [json.loads(line) for i, line in enumerate(fh) if i % 7 == 0]
    config = config_from_mapping({"data_dir": str(tmp_path / "data")}, path=tmp_path / "c.toml")
    with Archive.open(config, writer=True, create=True) as archive:
        for h in histories:
            service, type_ = h["service"], h["document_type"]
            archive.state.set_meta(f"lang:{service}/{type_}", h["language"])
            record_change(archive, h["versions"][-1]["text"], service=service, type_=type_)
        passages = _passages(histories, 40, 6)
        assert len(passages) >= 30
        top3 = quoted = 0
        for name, passage in passages:
            unquoted_hits = [
                f"{h.service}/{h.type}" for h in search(archive, passage, limit=3).hits
            ]
            top3 += name in unquoted_hits
            quoted_hits = search(archive, f'"{passage}"', limit=1).hits
            quoted += (
                bool(quoted_hits) and f"{quoted_hits[0].service}/{quoted_hits[0].type}" == name
            )
    assert quoted == len(passages)
    assert top3 >= 0.9 * len(passages)
