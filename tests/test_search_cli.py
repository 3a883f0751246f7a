"""The search, when and reindex commands through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.search import MAX_QUERY_CHARS, QueryError, parse_query
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from tests.conftest import SEED_POLICIES, seed_text
from tests.support import Cli
from webui import create_app

T0 = datetime(2024, 2, 1, tzinfo=UTC)


@pytest.fixture
def cli(make_config, make_cli) -> Cli:
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        for name, (service, type_, lang) in SEED_POLICIES.items():
            archive.state.set_meta(f"lang:{service}/{type_}", lang)
            archive.versions.record(NewVersion(service, type_, seed_text(name), T0, FIRST_RECORD))
        text = seed_text("workoptima-privacy-policy.txt")
        archive.versions.record(
            NewVersion(
                "WorkOptima",
                "Privacy Policy",
                text.replace("30 days", "90 days"),
                T0 + timedelta(days=7),
                CHANGE,
            )
        )
    return make_cli(f'data_dir = "{config.data_dir}"\n')


def test_reindex_then_search(cli):
    # the archive was written without syncing the index: search warns it is behind
    assert "behind" in cli("search", "privacy").output
    out = cli("reindex", "--processes", "1").output
    assert "Indexed 5 versions of 4 policies" in out
    out = cli("search", "retention 30 days", "--history").output
    assert "WorkOptima · Privacy Policy" in out and "behind" not in out
    data = json.loads(cli("search", "retention 90 days", "--json").output)
    assert data["query"] == "retention 90 days" and data["total"] >= 1
    hit = data["hits"][0]
    assert hit["service"] == "WorkOptima" and hit["current"] is True
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
    assert set(data["facets"]) == {"service", "type", "lang"}


def test_search_options_and_history_json(cli):
    cli("reindex")
    data = json.loads(cli("search", '"30 days after"', "--history", "--json").output)
    hit = data["hits"][0]
    assert hit["current"] is False and hit["first_match"].startswith("2024-02-01")
    assert hit["last_match"].startswith("2024-02-01")
    assert hit["match_until"].startswith("2024-02-08")
    assert json.loads(cli("search", '"30 days after"', "--json").output)["total"] == 0
    dated = json.loads(
        cli(
            "search", '"30 days after"', "--from", "2024-02-02", "--to", "2024-02-03", "--json"
        ).output
    )
    assert [h["service"] for h in dated["hits"]] == ["WorkOptima"]
    et = json.loads(cli("search", "*", "--lang", "et", "--json").output)
    assert [h["service"] for h in et["hits"]] == ["Backoffice.ee"]
    paged = json.loads(cli("search", "*", "--limit", "2", "--page", "2", "--json").output)
    assert paged["page"] == 2 and paged["pages"] == 2 and len(paged["hits"]) == 2
    typed = json.loads(cli("search", "privacy", "--type", "General Terms", "--json").output)
    assert typed["total"] == 0
    svc = json.loads(cli("search", "*", "--service", "workoptima", "--json").output)
    assert [h["service"] for h in svc["hits"]] == ["WorkOptima"]


def test_errors_are_one_clear_line(cli):
    cli("reindex", "--processes", "1")
    out = cli("search", "foo:bar", code=1).output
    assert "unknown field 'foo'" in out and "Traceback" not in out
    assert "YYYY-MM-DD" in cli("search", "x", "--from", "yesterday", code=2).output
    assert "at least two letters" in cli("search", "a*", code=1).output


def test_the_web_and_the_cli_refuse_an_over_long_query_with_one_message(cli: Cli) -> None:
    query = "x" * (MAX_QUERY_CHARS + 1)
    with pytest.raises(QueryError) as refused:
        parse_query(query)
    message = str(refused.value)
    assert f"the limit is {MAX_QUERY_CHARS:,}" in message
    assert f"Error: {message}" in cli("search", query, code=1).output
    with Archive.open(cli.config) as archive:
        client = create_app(cli.config, archive=archive).test_client()
        for path in ("/api/search", "/search"):
            response = client.get(path, query_string={"q": query})
            assert response.status_code == 400, response.text
            assert f"The query could not be read: {message}" in response.text
