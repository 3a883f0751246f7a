"""Languages in search: accents fold both ways in every analyser, languages without a stemmer
match word for word, and a query's words are read in the query's language: English words are
not stemmed with French rules in French texts (``data`` is not ``date``), and English words in a
French text are found by their English stem (``arbitration`` finds ``Arbitrators``).

Real texts (French and German histories of the OTA corpus, the Estonian seed policy, an English
one) are recorded in a real archive and indexed by ``archive.sync_index()``; queries go through
``archive.search.search`` and the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from archive.app import Archive
from archive.config import config_from_mapping
from archive.search import parse_query, search
from store.index.analysis import PLAIN, PolicyAnalyzer, query_language
from store.index.query import query_lang_filter
from tests.conftest import OTA_JSONL, seed_text
from tests.support import Cli, record_change

CORPUS_LINES = {
    15: "WITHINGS Trackers Policy: 'date' and 'dates', never 'data'",
    22: "Vivoptim Terms of Service: 'sécurité' and 'securite'",
    77: "Mektoube Privacy Policy: 'sécurité'",
    54: "LoveScout24 Community Guidelines (German)",
}


ARBITRATION = ("Arbitrages", "Terms of Service")
# A French text that quotes English terms of a contract, as French policies of US services do.
ARBITRATION_TEXT = (
    "Conditions d'utilisation\n\nTout litige sera tranché par voie d'arbitrage. Les arbitres "
    "(« Arbitrators ») sont désignés selon le règlement de l'American Arbitration Association. "
    "La sentence est définitive et vous renoncez à toute action collective devant les "
    "tribunaux. Nous conservons vos données pendant la durée de votre abonnement."
)
WITHINGS = ("WITHINGS", "Trackers Policy")


def corpus_lines() -> list[dict[str, Any]]:
    with OTA_JSONL.open(encoding="utf-8") as fh:
        return [json.loads(line) for i, line in enumerate(fh) if i in CORPUS_LINES]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder = tmp_path_factory.mktemp("languages")
    config = config_from_mapping({"data_dir": str(folder / "data")}, path=folder / "c.toml")
    with Archive.open(config, writer=True, create=True) as archive:
        for h in corpus_lines():
            service, type_ = h["service"], h["document_type"]
            archive.state.set_meta(f"lang:{service}/{type_}", h["language"])
            for version in h["versions"][-2:]:
                record_change(archive, version["text"], service=service, type_=type_)
        archive.state.set_meta("lang:Backoffice.ee/General Terms", "et")
        record_change(
            archive,
            seed_text("backoffice-ee-uldtingimused-et.txt"),
            service="Backoffice.ee",
            type_="General Terms",
        )
        record_change(archive, seed_text("workoptima-privacy-policy.txt"))
        archive.state.set_meta(f"lang:{ARBITRATION[0]}/{ARBITRATION[1]}", "fr")
        record_change(archive, ARBITRATION_TEXT, service=ARBITRATION[0], type_=ARBITRATION[1])
        yield archive


@pytest.fixture(scope="module")
def cli(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    path = tmp_path_factory.mktemp("languages-cli") / "config.toml"
    path.write_text(f'data_dir = "{archive.config.data_dir}"\n', encoding="utf-8")
    return Cli(path)


def hits(archive: Archive, query: str, **options: Any) -> set[tuple[str, str]]:
    results = search(archive, query, limit=100, **options)
    assert results.total == len(results.hits)
    return {(h.service, h.type) for h in results.hits}


def cli_hits(cli: Cli, query: str) -> set[tuple[str, str]]:
    data = json.loads(cli("search", query, "--json", "--limit", "100").output)
    return {(h["service"], h["type"]) for h in data["hits"]}


@pytest.mark.parametrize(
    ("plain", "accented"),
    [("securite", "sécurité"), ("donnees", "données"), ("personlich", "persönlich")],
)
def test_accents_fold_both_ways(archive, cli, plain, accented):
    found = hits(archive, accented)
    assert found  # the word is in the texts
    assert hits(archive, plain) == found
    assert hits(archive, plain, lang="fr") == hits(archive, accented, lang="fr")
    assert hits(archive, f'"{plain}"', history=True) == hits(archive, f'"{accented}"', history=True)
    assert cli_hits(cli, plain) == cli_hits(cli, accented) == found


def test_securite_finds_both_spellings_in_the_text(archive):
    vivoptim = ("Vivoptim", "Terms of Service")
    mektoube = ("Mektoube", "Privacy Policy")
    assert {vivoptim, mektoube} <= hits(archive, "securite") == hits(archive, "sécurité")


@pytest.mark.parametrize("lang", ["en", "fr", "de", "es", "it", "xx"])
def test_every_analyser_gives_a_word_one_term_whatever_its_accents(lang):
    analyser = PolicyAnalyzer(lang)
    for accented, plain in [
        ("sécurité", "securite"),
        ("Données", "donnees"),
        ("Löschung", "loschung"),
        ("conservées", "conservees"),
        ("MÜÜGIKS", "muugiks"),
        ("año", "ano"),
    ]:
        assert analyser.term(accented) == analyser.term(plain), (lang, accented)


def test_french_stemming_still_conflates_after_folding():
    french = PolicyAnalyzer("fr")
    assert french.term("conservées") == french.term("conservation") == french.term("conserver")
    assert french.term("données") == french.term("donnée") == french.term("donnees")
    assert french.term("supprimées") == french.term("supprimer")


def test_estonian_word_for_word_with_and_without_accents(archive, cli):
    estonian = {("Backoffice.ee", "General Terms")}
    for accented, plain in [("õigus", "oigus"), ("ülevaate", "ulevaate"), ("müüki", "muuki")]:
        assert hits(archive, accented) == hits(archive, plain) == estonian, accented
        assert hits(archive, plain, lang="et") == estonian
        assert cli_hits(cli, plain) == estonian
    assert hits(archive, '"austab oma klientide soovi"') == estonian
    assert hits(archive, '"austab oma kliendi soovi"') == set()  # no stemmer: as written


def test_data_does_not_match_french_date(archive, cli):
    assert PolicyAnalyzer("fr").term("data") == PolicyAnalyzer("fr").term("date")
    assert hits(archive, "date", lang="fr") >= {WITHINGS}
    for options in ({}, {"history": True}):
        assert WITHINGS not in hits(archive, "data", **options)
        assert WITHINGS not in hits(archive, '"data"', **options)
        assert WITHINGS not in hits(archive, "location data", **options)
    assert WITHINGS not in cli_hits(cli, "data")
    assert WITHINGS in hits(archive, "date")  # an English query word in a French text


def test_arbitration_finds_arbitrators_in_a_french_text(archive, cli):
    assert PolicyAnalyzer("fr").term("Arbitrators") != PolicyAnalyzer("fr").term("arbitration")
    for query in ("arbitration", "arbitrators", "Arbitrators"):
        for options in ({}, {"history": True}, {"lang": "fr"}):
            assert ARBITRATION in hits(archive, query, **options), (query, options)
    assert ARBITRATION in cli_hits(cli, "arbitration")
    assert ARBITRATION in hits(archive, '"American arbitration"')
    results = search(archive, "arbitration", service=ARBITRATION[0])
    assert "<mark>Arbitrators</mark>" in results.hits[0].snippet
    assert "<mark>Arbitration</mark>" in results.hits[0].snippet


def test_the_query_language_rule():
    assert query_language(["data"]) == "en"  # no stop word: English
    assert query_language(["les", "données", "de", "vos", "comptes", "et"]) == "fr"
    assert query_language(["data"], "fr") == "fr"  # lang: decides
    assert query_language(["data"], "et") == PLAIN  # a language without a stemmer
    assert query_lang_filter(parse_query("data lang:fr")) == "fr"
    assert query_lang_filter(parse_query("data (lang:fr OR lang:de)")) is None


def test_a_french_query_finds_french_forms(archive):
    french = hits(archive, "donnée", lang="fr")
    assert {ARBITRATION, WITHINGS} <= french
    assert hits(archive, "données") >= french  # read in English: French forms still meet
    assert hits(archive, "lang:fr données") == french
    assert hits(archive, "conservées", lang="fr") == hits(archive, "conservation", lang="fr")
