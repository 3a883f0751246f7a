"""The web UI's routes and their JSON twins, with the Flask test client on a real archive."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.config import Config
from archive.fetch import Fetcher
from archive.tracking.pipeline import Pipeline
from store.git.versions import CHANGE, FIRST_RECORD, REEXTRACT, NewVersion, Version
from store.state import PolicyState
from tests.conftest import seed_text
from tests.pages import policy_page
from webui import close_app, create_app
from webui.security import CSP

WO = ("WorkOptima", "Privacy Policy")
EE = ("Backoffice.ee", "General Terms")
WO_URL = "/policies/WorkOptima/Privacy%20Policy"
EE_URL = "/policies/Backoffice.ee/General%20Terms"
DAY = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
POLICIES = [
    {"service": WO[0], "type": WO[1], "url": "https://workoptima.example/privacy",
     "language": "en"},
    {"service": EE[0], "type": EE[1], "url": "https://backoffice.example/tingimused",
     "language": "et"},
    {"service": "Never Fetched", "type": "Terms", "url": "https://never.example/terms"},
]  # fmt: skip


@dataclass
class Web:
    app: Flask
    client: FlaskClient
    archive: Archive
    wo: list[Version]
    ee: list[Version]

    def get(self, url: str, status: int = 200) -> str:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code, response.text[:500])
        return response.text

    def json(self, url: str, status: int = 200) -> object:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code, response.text[:500])
        assert response.mimetype == "application/json"
        return json.loads(response.text)


def record_history(archive: Archive) -> tuple[list[Version], list[Version]]:
    """WorkOptima: first record, a change (30 → 60 days, a new paragraph), a re-extract."""
    text = seed_text("workoptima-privacy-policy.txt")
    v2 = text.replace("on the expiry of 30 days", "on the expiry of 60 days").replace(
        "\nAdditionally, you retain", "\nWe now share usage statistics.\nAdditionally, you retain"
    )
    v3 = v2.replace("Effective Date", "Effective date")
    url = (POLICIES[0]["url"],)
    record = archive.versions.record
    wo = [
        record(NewVersion(*WO, text, DAY, FIRST_RECORD, url)),
        record(NewVersion(*WO, v2, DAY + timedelta(days=40), CHANGE, url)),
        record(NewVersion(*WO, v3, DAY + timedelta(days=50), REEXTRACT, url)),
    ]
    ee = [
        record(
            NewVersion(
                *EE, seed_text("backoffice-ee-uldtingimused-et.txt"), DAY + timedelta(days=1),
                FIRST_RECORD, (POLICIES[1]["url"],),
            )
        )
    ]  # fmt: skip
    archive.state.put(
        PolicyState(
            service=EE[0], type=EE[1], last_check=DAY + timedelta(days=60), failures=4,
            last_error="HTTP 503 from https://backoffice.example/tingimused",
            last_error_transient=True,
        )
    )  # fmt: skip
    archive.state.put(
        PolicyState(service=WO[0], type=WO[1], last_check=DAY + timedelta(days=61),
                    last_success=DAY + timedelta(days=61))
    )  # fmt: skip
    return wo, ee


@pytest.fixture
def web(make_config: Callable[..., Config]) -> Iterator[Web]:
    config = make_config(policies=POLICIES)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        wo, ee = record_history(archive)
        app = create_app(config, archive=archive)
        yield Web(app, app.test_client(), archive, wo, ee)


# --------------------------------------------------------------------------- home & lists


def test_home_shows_counts_recent_changes_and_failing_policies(web: Web) -> None:
    page = web.get("/")
    assert '<dd id="count-policies">3</dd>' in page
    assert '<dd id="count-versions">4</dd>' in page
    assert '<dd id="count-failing">1</dd>' in page
    assert "HTTP 503 from https://backoffice.example/tingimused" in page
    assert 'name="q"' in page and "re-extract" in page
    api = web.json("/api/")
    assert api["counts"] == {
        "policies": 3,
        "versions": 4,
        "last_check": (DAY + timedelta(days=61)).isoformat(),
        "failing": 1,
    }
    assert [f["service"] for f in api["failing"]] == ["Backoffice.ee"]
    assert api["recent"][0]["version"] == web.wo[2].id
    assert api["endpoints"]["search"] == "/api/search"


def test_policies_list_and_its_json(web: Web) -> None:
    page = web.get("/policies")
    assert "Never Fetched" in page and "failing ×4" in page and "not checked" in page
    items = web.json("/api/policies")
    by_name = {(i["service"], i["type"]): i for i in items}
    assert set(by_name) == {WO, EE, ("Never Fetched", "Terms")}
    wo = by_name[WO]
    assert wo["versions"] == 3 and wo["language"] == "en"
    assert wo["current"] == web.wo[2].as_json()
    assert wo["status"]["failing"] is False
    assert by_name[EE]["status"]["last_error"].startswith("HTTP 503")
    assert by_name[("Never Fetched", "Terms")]["current"] is None


# --------------------------------------------------------------------------- policy pages


def test_policy_page_renders_current_text_status_and_timeline(web: Web) -> None:
    page = web.get(WO_URL)
    assert "<h1>WorkOptima · Privacy Policy</h1>" in page
    assert 'href="https://workoptima.example/privacy"' in page
    assert "Current version" in page and "60 days" in page
    assert page.count('class="diff-link"') == 3
    assert "Re-extract" in page and "First record" in page
    assert re.search(r"\(\+\d+\)", page)  # the change grew the text
    failing = web.get(EE_URL)
    assert "failing (4 in a row, may recover by itself)" in failing
    assert "HTTP 503 from https://backoffice.example/tingimused" in failing
    assert 'lang="et"' in failing


def test_any_version_and_the_version_in_force_at_a_date(web: Web) -> None:
    first = web.get(f"{WO_URL}?version={web.wo[0].id[:10]}")
    assert "past version" in first and "on the expiry of 30 days" in first
    at = web.get(f"{WO_URL}?at=2024-04-01")  # after the first record, before the change
    assert "on the expiry of 30 days" in at and "in force on 2024-04-01" in at
    later = web.get(f"{WO_URL}?at=2024-04-10T12:00:00Z")
    assert "on the expiry of 60 days" in later
    api = web.json("/api/policies/WorkOptima/Privacy%20Policy?at=2024-04-01")
    assert api["version"] == web.wo[0].as_json()
    assert "on the expiry of 30 days" in api["text"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("version=HEAD", 400, "is not a version id"),
        ("version=../../etc/passwd", 400, "is not a version id"),
        ("version=ABCDEF1", 400, "is not a version id"),
        ("version=--output%3D%2Ftmp%2Fx", 400, "is not a version id"),
        ("version=0000000", 404, "has no version 0000000"),
        ("at=yesterday", 400, "is not a date"),
        ("at=2024-13-45", 400, "is not a date"),
        ("at=1999-01-01", 404, "the first was recorded on 2024-03-01"),
        ("at=2024-04-01&version=0000000", 400, "either version or at"),
    ],
)
def test_bad_versions_and_dates_say_what_was_wrong(
    web: Web, query: str, status: int, message: str
) -> None:
    page = web.get(f"{WO_URL}?{query}", status)
    assert message in page.replace("&#39;", "'")
    assert "Traceback" not in page
    api = web.json(f"/api/policies/WorkOptima/Privacy%20Policy?{query}", status)
    assert message in api["error"]["message"] and api["error"]["status"] == status


def test_unknown_policy_is_a_404_that_names_it(web: Web) -> None:
    page = web.get("/policies/Nobody/Privacy%20Policy", 404)
    assert "There is no policy &#39;Nobody&#39; / &#39;Privacy Policy&#39;" in page
    assert web.json("/api/policies/Nobody/Terms/versions", 404)["error"]["status"] == 404
    assert "not yet" not in web.get("/policies/Never%20Fetched/Terms")  # configured: a page
    assert web.json("/api/policies/Never%20Fetched/Terms/versions") == []


def test_versions_api_has_the_history_json_shape(web: Web) -> None:
    assert web.json("/api/policies/WorkOptima/Privacy%20Policy/versions") == [
        v.as_json() for v in web.wo
    ]


# --------------------------------------------------------------------------- diffs


def test_default_diff_is_the_current_version_against_its_predecessor(web: Web) -> None:
    page = web.get(f"{WO_URL}/diff")
    assert "re-extract" in page and "Alerts and feeds leave it out" in page
    assert "<del>Date</del><ins>date</ins>" in page


def test_diff_between_two_versions_inline_and_side_by_side(web: Web) -> None:
    old, new = web.wo[0].id, web.wo[1].id
    inline = web.get(f"{WO_URL}/diff?from={old}&to={new}")
    assert "<del>30</del><ins>60</ins>" in inline
    assert "<ins>We now share usage statistics.</ins>" in inline
    assert 'id="change-1"' in inline and 'id="change-2"' in inline
    assert 'href="#change-2"' in inline  # next-change navigation
    assert "<details" in inline and "unchanged paragraph" in inline
    assert "+6 words" in inline and "−1 words" in inline
    side = web.get(f"{WO_URL}/diff?from={old}&to={new}&view=side")
    assert 'class="text old"' in side and 'class="text new"' in side
    old_col = re.search(r'<div class="text old">(.*?)</div>', side, re.S).group(1)
    assert "<del>30</del>" in old_col and "<ins>" not in old_col
    wider = web.get(f"{WO_URL}/diff?from={old}&to={new}&context=10")
    assert wider.count("<details") < inline.count("<details") or len(wider) > len(inline)


def test_diff_json_twin(web: Web) -> None:
    old, new = web.wo[0].id, web.wo[1].id
    data = web.json(f"/api/policies/WorkOptima/Privacy%20Policy/diff?from={old[:7]}&to={new}")
    assert data["from"] == web.wo[0].as_json() and data["to"] == web.wo[1].as_json()
    assert data["reextract"] is False
    assert data["summary"] == {
        "changes": 2,
        "words_added": 6,
        "words_removed": 1,
        "formatting_changes": 0,
        "sections": [],
        "excerpts": [
            {
                "section": "",
                "before": "expiry of 30 days after",
                "after": "expiry of 60 days after",
            },
            {"section": "", "before": "", "after": "We now share usage statistics."},
        ],
        "coarse": False,
    }
    spans = [s for h in data["hunks"] for s in h["spans"]]
    assert {"op": "delete", "text": "30"} in spans and {"op": "insert", "text": "60"} in spans
    default = web.json("/api/policies/WorkOptima/Privacy%20Policy/diff")
    assert default["reextract"] is True and default["from"]["version"] == new


def test_first_record_diff_shows_the_whole_text_inserted(web: Web) -> None:
    page = web.get(f"{EE_URL}/diff")
    assert "First record:" in page and "<ins>" in page and "<del>" not in page


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("from=nothex", 400),
        ("to=%3Cscript%3E", 400),
        ("from=0000000", 404),
        ("context=-1", 400),
        ("context=1000", 400),
        ("view=sideways", 400),
        ("from=" + "a" * 41, 400),
    ],
)
def test_bad_diff_parameters(web: Web, query: str, status: int) -> None:
    web.get(f"{WO_URL}/diff?{query}", status)
    if not query.startswith("view="):  # the JSON twin has no views
        web.json(f"/api/policies/WorkOptima/Privacy%20Policy/diff?{query}", status)


def test_a_version_of_another_policy_is_not_found(web: Web) -> None:
    web.get(f"{WO_URL}/diff?from={web.ee[0].id}", 404)


def test_diffs_are_cached_by_version_ids(web: Web) -> None:
    cache = web.app.extensions["policy_archive"].diffs
    web.get(f"{WO_URL}/diff")
    web.get(f"{WO_URL}/diff?view=side")
    assert cache.misses == 1 and cache.hits == 1


# --------------------------------------------------------------------------- changes & feeds


def test_changes_page_filters_and_paginates(web: Web) -> None:
    page = web.get("/changes")
    assert page.count("<tr>") == 5  # header + 4 versions
    only = web.get("/changes?service=Backoffice.ee")
    assert only.count("<tr>") == 2
    data = web.json("/api/changes?type=Privacy%20Policy")
    assert [c["version"] for c in data["changes"]] == [v.id for v in reversed(web.wo)]
    assert data["changes"][0]["kind"] == "reextract" and data["pages"] == 1
    assert data["changes"][0]["diff"].startswith(f"{WO_URL}/diff?to=")
    web.get("/changes?page=2", 404)
    web.get("/changes?page=0", 400)
    web.get("/changes?page=abc", 400)


def test_changes_say_what_changed_and_filter_by_date(web: Web) -> None:
    page = web.get("/changes")
    assert "+6 / −1 words" in page
    assert "<del>“expiry of 30 days after”</del> → <ins>“expiry of 60 days after”</ins>" in page
    assert "added <ins>“We now share usage statistics.”</ins>" in page
    assert "First record, " in page
    day2 = (DAY + timedelta(days=40)).date().isoformat()
    only = web.get(f"/changes?from={day2}&to={day2}")
    assert only.count("<tr>") == 2 and "+6 / −1 words" in only
    assert f'value="{day2}"' in only  # the form keeps the dates
    data = web.json(f"/api/changes?from={day2}")
    assert [c["version"] for c in data["changes"]] == [web.wo[2].id, web.wo[1].id]
    change = data["changes"][1]
    assert change["kind"] == "change" and change["diff"].startswith(f"{WO_URL}/diff?to=")
    assert change["summary"] == {
        "sections": [],
        "words_added": 6,
        "words_removed": 1,
        "formatting_changes": 0,
        "excerpts": [
            {
                "section": "",
                "before": "expiry of 30 days after",
                "after": "expiry of 60 days after",
            },
            {"section": "", "before": "", "after": "We now share usage statistics."},
        ],
    }
    assert data["changes"][0]["summary"]["excerpts"] == [
        {"section": "", "before": "Effective Date", "after": "Effective date"}
    ]
    web.get("/changes?from=2024-05-01&to=2024-04-01", 400)
    web.get("/changes?from=someday", 400)


def test_summaries_are_computed_once_and_kept_in_state(web: Web) -> None:
    state = web.app.extensions["policy_archive"]
    web.get("/changes")
    misses = state.diffs.summaries.misses
    assert misses == 4 and state.diffs.summaries.hits == 0
    web.get("/changes")
    web.get(WO_URL)  # the timeline reads the same summaries
    assert state.diffs.summaries.misses == misses
    stored = web.archive.state.get_meta(
        f"diff-summary/v2/{WO[0]}/{WO[1]}/{web.wo[0].id}/{web.wo[1].id}"
    )
    assert stored is not None and json.loads(stored)["words_added"] == 6
    state.diffs.summaries._items.clear()  # a restarted server: read back, not diffed again
    diff_misses = state.diffs.misses
    web.get("/changes")
    assert state.diffs.misses == diff_misses


def test_policy_timeline_shows_each_versions_summary(web: Web) -> None:
    page = web.get(WO_URL)
    timeline = page[page.index('id="timeline"') :]
    assert "+6 / −1 words" in timeline and "First record, " in timeline
    assert "<ins>“We now share usage statistics.”</ins>" in timeline


def atom_entries(xml: str) -> list[str]:
    return re.findall(r"<entry>.*?</entry>", xml, re.S)


def test_feeds_leave_reextracts_out(web: Web) -> None:
    response = web.client.get("/feeds/changes.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    entries = atom_entries(response.text)
    assert len(entries) == 3
    assert "re-extract" not in response.text.lower()
    assert "6 words added, 1 removed." in response.text
    assert "Main edits: “expiry of 30 days after” → “expiry of 60 days after”" in response.text
    assert "http://127.0.0.1:8000/policies/WorkOptima/Privacy%20Policy/diff?to=" in response.text
    service = web.get("/feeds/services/Backoffice.ee.atom")
    assert len(atom_entries(service)) == 1 and "Started tracking" in service
    policy = web.get("/feeds/policies/WorkOptima/Privacy%20Policy.atom")
    assert len(atom_entries(policy)) == 2
    web.get("/feeds/services/Nobody.atom", 404)
    web.get("/feeds/policies/Nobody/Terms.atom", 404)


# --------------------------------------------------------------------------- errors & limits


def test_errors_are_pages_never_tracebacks(make_config: Callable[..., Config]) -> None:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        app = create_app(config, archive=archive)

        def broken() -> str:
            raise RuntimeError("secret internal detail")

        app.add_url_rule("/broken", view_func=broken)
        app.add_url_rule("/api/broken", "api_broken", view_func=broken)
        client = app.test_client()
        page = client.get("/broken")
        assert page.status_code == 500 and "Something went wrong" in page.text
        assert "secret internal detail" not in page.text and "Traceback" not in page.text
        api = client.get("/api/broken")
        assert api.status_code == 500 and api.json["error"]["status"] == 500
        assert client.get("/nowhere").status_code == 404
        assert "/nowhere is not a page" in client.get("/nowhere").text
        assert client.post("/").status_code == 405
        assert client.get("/search?q=" + "x" * 5000).status_code == 414
        assert client.get("/api/search?q=" + "x" * 1001).status_code == 400
        big = client.post("/api/", data=b"x" * 2_000_000)
        assert big.status_code in (405, 413)


def test_every_response_carries_the_security_headers(web: Web) -> None:
    for url in ("/", WO_URL, f"{WO_URL}/diff", "/nowhere", "/api/policies",
                "/feeds/changes.atom", "/static/style.css", "/static/ui.js"):  # fmt: skip
        response = web.client.get(url)
        assert response.headers["Content-Security-Policy"] == CSP, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        response.close()
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_pages_have_no_inline_script_or_style(web: Web) -> None:
    for url in ("/", "/policies", WO_URL, f"{WO_URL}/diff?view=side", "/changes", "/when"):
        page = web.get(url)
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert " style=" not in page and "<style" not in page, url
        assert not re.search(r"\son[a-z]+=", page), url


def test_create_app_opens_and_closes_its_own_archive(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(policies=POLICIES)
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record_history(archive)
    app = create_app(dataclasses.replace(config))
    try:
        assert app.test_client().get(WO_URL).status_code == 200
        assert app.extensions["policy_archive"].archive.writer is False
    finally:
        close_app(app)
    close_app(app)  # idempotent


def test_imported_policies_show_the_language_the_import_recorded(web: Web) -> None:
    web.archive.versions.record(
        NewVersion("Imported", "Conditions", "Nous gardons vos données 30 jours.", DAY)
    )
    web.archive.state.set_meta("lang:Imported/Conditions", "fr")
    items = {i["service"]: i for i in web.json("/api/policies")}
    assert items["Imported"]["language"] == "fr" and items["Imported"]["configured"] is False
    assert 'lang="fr"' in web.get("/policies/Imported/Conditions")


def test_version_links_to_its_raw_snapshot(make_config, fixture_server):
    fixture_server.set("/p", policy_page("A", seed_text("workoptima-privacy-policy.txt")))
    config = make_config(
        [
            {
                "service": "A",
                "type": "Privacy Policy",
                "select": "main",
                "url": fixture_server.url("/p"),
            }
        ]
    )
    with (
        Archive.open(config, writer=True, listeners=LISTENERS, create=True) as arch,
        Fetcher(config.fetch) as fetcher,
    ):
        Pipeline(arch, fetcher).track(config.policies[0])
        version = arch.versions.current("A", "Privacy Policy")
        client = create_app(config, archive=arch).test_client()
        page = client.get("/policies/A/Privacy%20Policy").text
        link = f"/policies/A/Privacy%20Policy/snapshot/{version.snapshot}"
        assert link in page and fixture_server.url("/p") in page
        raw = client.get(link)
        assert raw.status_code == 200 and raw.mimetype == "text/plain"
        assert b"<main" in raw.data and "sandbox" in raw.headers["Content-Security-Policy"]
        assert client.get(link + "?page=2").status_code == 400
        assert client.get("/policies/A/Privacy%20Policy/snapshot/HEAD").status_code == 400
        assert client.get("/policies/A/Privacy%20Policy/snapshot/" + "0" * 40).status_code == 404
