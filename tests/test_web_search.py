"""Search and clause-timeline pages and their JSON twins, on a real index of real policies."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest
from flask.testing import FlaskClient

from archive import search as engine
from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from archive.search import MAX_QUERY_CHARS
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.conftest import SEED_POLICIES, seed_text
from webui import create_app

DAY = datetime(2024, 1, 10, tzinfo=UTC)
REMOVED = "We delete all Your Data on the expiry of 30 days after the termination of your Account"
FILLER = "Customer privacy notice number {n}. We process privacy requests within thirty days."


@dataclass
class Site:
    client: FlaskClient
    archive: Archive

    def get(self, url: str, status: int = 200) -> str:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code, response.text[:300])
        return response.text


@pytest.fixture
def site(make_config: Callable[..., Config]) -> Iterator[Site]:
    policies = [
        {"service": s, "type": t, "url": f"https://{i}.example/p", "language": lang}
        for i, (s, t, lang) in enumerate(SEED_POLICIES.values())
    ]
    with Archive.open(
        make_config(policies=policies), writer=True, listeners=LISTENERS, create=True
    ) as archive:
        for name, (service, type_, _) in SEED_POLICIES.items():
            archive.versions.record(NewVersion(service, type_, seed_text(name), DAY, FIRST_RECORD))
        text = seed_text("workoptima-privacy-policy.txt")
        assert REMOVED in text
        archive.versions.record(
            NewVersion("WorkOptima", "Privacy Policy", text.replace(REMOVED, "We keep it."),
                       DAY + timedelta(days=100), CHANGE)
        )  # fmt: skip
        archive.versions.bulk_import(
            NewVersion(f"Filler {n:02d}", "Privacy Notice", FILLER.format(n=n), DAY, FIRST_RECORD)
            for n in range(25)
        )
        archive.sync_index()
        yield Site(create_app(archive.config, archive=archive).test_client(), archive)


def test_search_page_matches_the_api_and_the_engine(site: Site) -> None:
    params = {"q": "retention 30 days", "history": "1"}
    page = site.get("/search?" + urlencode(params))
    api = site.client.get("/api/search?" + urlencode(params)).json
    assert api == engine.search(site.archive, "retention 30 days", history=True).as_json()
    assert api["hits"][0]["service"] == "WorkOptima"
    first = re.search(r'<a class="hit-link" href="([^"]+)">([^<]+)</a>', page)
    assert first and first.group(2) == "WorkOptima · Privacy Policy"
    assert "<mark>" in page and "Matched from 2024-01-10" in page


def test_history_toggle_finds_removed_text_only_in_history(site: Site) -> None:
    phrase = quote('"expiry of 30 days"')
    current = site.get(f"/search?q={phrase}")
    assert "Nothing matched" in current and "Include history" in current
    history = site.get(f"/search?q={phrase}&history=1")
    assert "WorkOptima" in history and "Current versions only" in history
    assert "Matched from 2024-01-10 to 2024-" in history


def test_facets_filter_and_pagination(site: Site) -> None:
    page = site.get("/search?q=privacy")
    facet = re.search(r'href="(/search\?[^"]*service=Filler\+03[^"]*)"', page)
    assert facet, "facet links carry the filter"
    assert re.search(r"and \d+ more</summary>", page)  # long facets show their top values
    filtered = site.get(facet.group(1).replace("&amp;", "&"))
    assert filtered.count('class="hit-link"') == 1 and "× any service" in filtered
    assert 'rel="next"' in page and "Page 1 of" in page
    second = site.get("/search?q=privacy&page=2")
    assert "Page 2 of" in second and 'rel="prev"' in second
    api = site.client.get("/api/search?q=privacy&page=2").json
    assert api["page"] == 2 and api["pages"] >= 3 and len(api["hits"]) == 10
    assert site.client.get("/api/search?q=privacy&type=Privacy+Notice").json["total"] == 25


def test_date_range_and_bad_dates(site: Site) -> None:
    assert "WorkOptima" in site.get("/search?q=WorkOptima&from=2024-01-01&to=2024-12-31")
    site.get("/search?q=privacy&from=tomorrow", 400)
    site.get("/search?q=privacy&to=2024-02-30", 400)
    assert site.client.get("/api/search?q=privacy&from=x").status_code == 400
    assert site.client.get("/api/search").status_code == 400


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "*", "a*", "service:", "nosuchfield:x", "AND OR NOT", "((((", "x" * 499,
     "' OR 1=1 --", "../../etc/passwd", "\x00\x01", "日本語 検索", "<script>alert(1)</script>"],
)  # fmt: skip
def test_hostile_queries_get_an_answer_or_a_clear_400(site: Site, query: str) -> None:
    for url in ("/search?", "/api/search?"):
        response = site.client.get(url + urlencode({"q": query, "history": "1"}))
        assert response.status_code in (200, 400), (query, response.status_code)
        assert "Traceback" not in response.text
        if response.status_code == 400 and url == "/search?":
            assert "The query could not be read" in response.text


def test_overlong_queries_are_refused(site: Site) -> None:
    assert site.client.get("/search?q=" + "x" * (MAX_QUERY_CHARS + 1)).status_code == 400
    assert site.client.get("/search?q=" + "x" * 5000).status_code == 414


def test_when_page_and_api(site: Site) -> None:
    phrase = "expiry of 30 days"
    page = site.get("/when?" + urlencode({"phrase": phrase}))
    api = site.client.get("/api/when?" + urlencode({"phrase": phrase})).json
    assert api == [t.as_json() for t in engine.when(site.archive, phrase)]
    assert [(t["service"], t["still_present"]) for t in api] == [("WorkOptima", False)]
    assert "WorkOptima · Privacy Policy" in page and "2024-01-10" in page
    assert "No version of any policy" in site.get("/when?phrase=zebra+unicorn+xylophone")
    assert site.client.get("/api/when").status_code == 400
    assert "Type a phrase" in site.get("/when")


@pytest.mark.usefixtures("whoosh_only")
def test_an_overloaded_server_answers_503_with_retry_after(site: Site, monkeypatch) -> None:
    from store.index import budget
    from store.index.whoosh.engine import READERS

    monkeypatch.setattr(budget, "WALL_FACTOR", 0.05)  # give up waiting after 0.15 s
    with contextlib.ExitStack() as held:  # every searcher is busy with other requests
        for _ in range(READERS):
            held.enter_context(site.archive.index._readers.reader())
        response = site.client.get("/api/search?q=privacy")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "busy" in response.json["error"]["message"]
        page = site.client.get("/when?phrase=privacy+policy")
        assert page.status_code == 503 and page.headers["Retry-After"] == "5"
        assert "too busy" in page.text and "Traceback" not in page.text
    assert site.client.get("/api/search?q=privacy").status_code == 200


def test_a_phrase_over_its_cpu_budget_is_a_clear_400(site: Site, monkeypatch) -> None:
    from archive.search import clauses

    monkeypatch.setattr(clauses, "TIME_BUDGET", 1e-6)
    phrase = " ".join(["the"] * 120)
    response = site.client.get("/api/when?" + urlencode({"phrase": phrase}))
    assert response.status_code == 400, response.text
    assert "too long to answer" in response.json["error"]["message"]


def test_caches_are_bounded_in_bytes() -> None:
    from webui.context import LRU

    cache = LRU(maxsize=1000, max_bytes=10_000)
    for n in range(50):
        assert cache.get(n, lambda n=n: str(n) * 1000) == str(n) * 1000
    assert cache.bytes <= 10_000 and 1 <= len(cache) < 50
    assert cache.get(49, lambda: "recomputed") == "49" * 1000  # the newest stayed
    assert cache.get(0, lambda: "recomputed") == "recomputed"  # the oldest went
    assert cache.get("huge", lambda: "x" * 20_000) == "x" * 20_000  # larger than it: not kept
    assert cache.bytes <= 10_000


def test_home_page_counts_are_cached_until_head_moves(site: Site) -> None:
    versions = re.compile(r'id="count-versions">(\d+)<')
    before = int(versions.search(site.get("/")).group(1))
    assert int(versions.search(site.get("/")).group(1)) == before  # served from the cache
    site.archive.versions.record(
        NewVersion(
            "Back Office",
            "Privacy Policy",
            "A new text.\n\nZebras.",
            DAY + timedelta(days=200),
            CHANGE,
        )
    )
    page = site.get("/")
    assert int(versions.search(page).group(1)) == before + 1
    assert "Back Office" in page.split('class="recent"')[1][:600]
