"""Search over the four seed policies: ranking, languages, phrases, history, syntax, snippets."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from archive.app import Archive
from archive.search import QueryError, language_resolver, parse_query, search
from store.git.versions import FIRST_RECORD
from store.index import And, FieldMatch, MatchAll, Not, Or, Phrase, Prefix, Term
from store.index.sections import split_sections
from tests.conftest import SEED_POLICIES, seed_text
from tests.support import record_version

T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
WORKOPTIMA = ("WorkOptima", "Privacy Policy")
REMOVED = "We delete all Your Data on the expiry of 30 days after the termination"


def sync(archive: Archive) -> int:
    return archive.index.sync(archive.versions, language_of=language_resolver(archive))


@pytest.fixture
def seeded(archive: Archive) -> Archive:
    for i, (name, (service, type_, lang)) in enumerate(SEED_POLICIES.items()):
        archive.state.set_meta(f"lang:{service}/{type_}", lang)
        record_version(
            archive, service, type_, seed_text(name), T0 + timedelta(hours=i), FIRST_RECORD
        )
    assert sync(archive) == 4
    return archive


def services(results) -> list[str]:
    return [h.service for h in results.hits]


# --------------------------------------------------------------------------- ranking, languages


def test_retention_30_days_ranks_workoptima_first(seeded):
    results = search(seeded, "retention 30 days")
    assert results.hits[0].service == "WorkOptima"
    data = results.as_json()
    hit = data["hits"][0]
    assert set(hit) >= {
        "service",
        "type",
        "version",
        "date",
        "valid_from",
        "valid_to",
        "current",
        "score",
        "snippet",
    }
    assert hit["current"] is True and hit["valid_to"] is None
    assert hit["version"] == seeded.versions.current(*WORKOPTIMA).id
    assert "<mark>30</mark> <mark>days</mark>" in hit["snippet"]
    assert data["total"] == len(data["hits"]) and data["page"] == 1 and data["pages"] == 1
    scores = [h["score"] for h in data["hits"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_all_words_anywhere_in_the_policy_not_in_one_section(seeded):
    text = seed_text("workoptima-privacy-policy.txt")
    # "Effective Date" is at the top, "termination" far below: no section holds both.
    assert not any("Effective" in s.text and "termination" in s.text for s in split_sections(text))
    assert "WorkOptima" in services(search(seeded, "effective termination"))
    assert search(seeded, '"effective termination"').total == 0


def test_estonian_word_finds_the_estonian_policy(seeded):
    results = search(seeded, "isikuandmed")
    assert services(results) == ["Backoffice.ee"]
    assert "<mark>isikuandme" in results.hits[0].snippet
    assert results.hits[0].lang == "et"
    assert services(search(seeded, "üldtingimused")) == ["Backoffice.ee"]
    # accents folded, as typed without them
    assert services(search(seeded, "uldtingimused")) == ["Backoffice.ee"]


def test_english_stemming(seeded):
    # "retained" and "retention" share no stem with Porter, but "terminate"/"termination" do
    plain = {h.service for h in search(seeded, "terminate").hits}
    assert "WorkOptima" in plain
    assert {h.service for h in search(seeded, "terminating").hits} == plain


def test_lang_filter_and_facets(seeded):
    results = search(seeded, "*")
    assert results.total == 4
    assert results.facets["lang"] == {"en": 3, "et": 1}
    assert results.facets["type"] == {"Privacy Policy": 3, "General Terms": 1}
    assert sum(results.facets["service"].values()) == 4
    assert services(search(seeded, "*", lang="et")) == ["Backoffice.ee"]
    assert services(search(seeded, "* lang:et")) == ["Backoffice.ee"]
    assert search(seeded, "privacy", lang="fr").total == 0


# --------------------------------------------------------------------------- history


@pytest.fixture
def changed(seeded: Archive) -> dict[str, str]:
    """WorkOptima's policy loses the 30-days sentence at T1, and gets it back at T2."""
    text = seed_text("workoptima-privacy-policy.txt")
    assert REMOVED in text
    v1 = seeded.versions.current(*WORKOPTIMA).id
    v2 = record_version(
        seeded,
        *WORKOPTIMA,
        text.replace(REMOVED, "We delete Your Data promptly after the termination"),
        T0 + timedelta(days=30),
    ).id
    assert sync(seeded) == 1
    return {"v1": v1, "v2": v2, "text": text}


def test_removed_phrase_found_only_with_history(seeded, changed):
    assert search(seeded, '"30 days after the termination"').total == 0
    results = search(seeded, '"30 days after the termination"', history=True)
    assert services(results) == ["WorkOptima"]
    hit = results.as_json()["hits"][0]
    assert hit["version"] == changed["v1"] and hit["current"] is False
    assert hit["first_match"] == hit["valid_from"] == T0.isoformat()
    assert hit["valid_to"] == (T0 + timedelta(days=30)).isoformat()
    assert hit["match_until"] == hit["valid_to"]
    assert hit["last_match"] == T0.isoformat()
    assert "<mark>30</mark>" in hit["snippet"]


def test_history_hit_that_still_matches(seeded, changed):
    t2 = T0 + timedelta(days=60)
    v3 = record_version(seeded, *WORKOPTIMA, changed["text"], t2).id
    sync(seeded)
    hit = search(seeded, '"30 days"', history=True).as_json()["hits"][0]
    assert hit["version"] == v3 and hit["current"] is True
    assert hit["first_match"] == T0.isoformat() and hit["last_match"] is None
    assert hit["matched_versions"] == 2
    assert search(seeded, '"30 days"').hits[0].version.id == v3


def test_date_range_selects_versions_in_force(seeded, changed):
    day = (T0 + timedelta(days=10)).date()
    # On that day the first version was in force: the phrase matched then.
    results = search(seeded, '"30 days after"', date_from=day, date_to=day)
    assert services(results) == ["WorkOptima"]
    assert results.hits[0].version.id == changed["v1"]
    later = (T0 + timedelta(days=40)).date()
    assert search(seeded, '"30 days after"', date_from=later).total == 0
    assert search(seeded, "privacy", date_to=date(2000, 1, 1)).total == 0
    with pytest.raises(QueryError, match="after it ends"):
        search(seeded, "privacy", date_from=later, date_to=day)


# --------------------------------------------------------------------------- syntax


def test_parse_query_tree():
    assert parse_query("retention 30 days") == And((Term("retention"), Term("30"), Term("days")))
    assert parse_query('"30 days" OR week') == Or((Phrase(("30", "days")), Term("week")))
    assert parse_query("cookies -google") == And((Term("cookies"), Not(Term("google"))))
    assert parse_query("cookies NOT (google OR meta)") == And(
        (Term("cookies"), Not(Or((Term("google"), Term("meta")))))
    )
    assert parse_query('type:"Privacy Policy" service:Work*') == And(
        (FieldMatch("type", "Privacy Policy"), FieldMatch("service", "Work", prefix=True))
    )
    assert parse_query("retent*") == Prefix("retent")
    assert parse_query("*") == MatchAll()
    assert parse_query("e-mail") == Phrase(("e-mail",)) or parse_query("e-mail") == Term("e-mail")
    assert parse_query('"unbalanced quote') == Phrase(("unbalanced", "quote"))
    assert parse_query("https://example.com/x") == Term("https://example.com/x")


def test_boolean_operators_and_fields(seeded):
    assert set(services(search(seeded, "isikuandmed OR workoptima"))) == {
        "Backoffice.ee",
        "WorkOptima",
    }
    everyone = set(services(search(seeded, "*")))
    assert set(services(search(seeded, "* NOT isikuandmed"))) == everyone - {"Backoffice.ee"}
    assert set(services(search(seeded, "-isikuandmed"))) == everyone - {"Backoffice.ee"}
    assert services(search(seeded, "privacy service:workoptima")) == ["WorkOptima"]
    assert services(search(seeded, "privacy", service="WorkOptima")) == ["WorkOptima"]
    assert set(services(search(seeded, 'type:"privacy policy"'))) == everyone - {"Backoffice.ee"}
    assert services(search(seeded, "* type:General*")) == ["Backoffice.ee"]
    assert "WorkOptima" in services(search(seeded, "workopt*"))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("foo:bar", "unknown field 'foo'"),
        ("x" * 10_000, "10,000 characters"),
        ("a*", "at least two letters"),
        ("( " * 40 + "privacy", "nests parentheses"),
        ("&& !!", "no word to search for"),
        ("", "no word to search for"),
        ('type:""', "needs a value"),
        (" ".join(f"w{i}" for i in range(100)), "more than 64 words"),
    ],
)
def test_bad_queries_get_a_clear_error(seeded, query, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        search(seeded, query)


def test_sane_readings(seeded):
    assert search(seeded, '"30 days').hits[0].service == "WorkOptima"  # quote closed at the end
    assert search(seeded, "retention 30 days)").hits[0].service == "WorkOptima"
    assert search(seeded, "((retention 30 days").hits[0].service == "WorkOptima"
    assert search(seeded, "retention AND AND 30 OR").hits[0].service == "WorkOptima"
    assert search(seeded, "30 days?").hits[0].service == "WorkOptima"
    assert search(seeded, "*").total == 4


def test_paging(seeded):
    first = search(seeded, "*", limit=3, page=1)
    second = search(seeded, "*", limit=3, page=2)
    assert first.total == second.total == 4 and first.pages == 2
    assert len(first.hits) == 3 and len(second.hits) == 1
    assert not set(services(first)) & set(services(second))
    assert search(seeded, "*", limit=3, page=9).hits == []
    with pytest.raises(QueryError):
        search(seeded, "*", limit=0)


def test_snippets_escape_the_text_and_mark_the_words(archive):
    text = (
        "Intro paragraph about nothing in particular.\n\n"
        'We keep <script>alert("x")</script> logs & cookies for 30 days.\n\n'
        "Outro paragraph."
    )
    record_version(archive, "Evil", "Terms", text, T0, FIRST_RECORD)
    sync(archive)
    snippet = search(archive, "cookies").hits[0].snippet
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet and "&amp;" in snippet
    assert "<mark>cookies</mark>" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    filters_only = search(archive, "service:Evil").hits[0].snippet
    assert "<" not in filters_only.replace("&lt;", "")
