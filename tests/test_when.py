"""Clause timelines: when a phrase appeared in and disappeared from each policy."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.app import Archive
from archive.cli import main
from archive.search import QueryError, when
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion

T0 = datetime(2023, 5, 1, 8, 0, tzinfo=UTC)
CLAUSE = "We may sell your personal information to our partners for advertising."
FILLER = [
    f"Section {i} explains how the service handles topic number {i}, in plain words, "
    f"for the people who use it every day."
    for i in range(12)
]


def text(with_clause: bool, variant: str = "") -> str:
    paras = list(FILLER)
    if with_clause:
        paras.insert(5, CLAUSE)
    paras.append(f"Last updated {variant}.")
    return "\n\n".join(paras)


@pytest.fixture
def histories(archive: Archive) -> dict[str, list[str]]:
    """Alpha: clause from the start, removed, then back. Beta: added later, still there.
    Gamma: never."""
    plan = {
        "Alpha": [True, True, False, False, True],
        "Beta": [False, False, True],
        "Gamma": [False, False],
    }
    ids: dict[str, list[str]] = {}
    for step in range(5):
        for n, (service, flags) in enumerate(plan.items()):
            if step < len(flags):
                version = archive.versions.record(
                    NewVersion(
                        service,
                        "Privacy Policy",
                        text(flags[step], f"{service}{step}"),
                        T0 + timedelta(days=10 * step, hours=n),
                        FIRST_RECORD if step == 0 else CHANGE,
                    )
                )
                ids.setdefault(service, []).append(version.id)
    archive.sync_index()
    return ids


def test_timeline_of_a_phrase(archive, histories):
    timelines = when(archive, "sell your personal information")
    assert [t.service for t in timelines] == ["Alpha", "Beta"]  # by first appearance
    alpha, beta = timelines
    a = histories["Alpha"]
    assert alpha.first_seen.id == a[0] and alpha.still_present
    assert [v.id for v in alpha.appeared] == [a[0], a[4]]
    assert [v.id for v in alpha.disappeared] == [a[2]]
    assert (alpha.versions_with, alpha.versions_total) == (3, 5)
    assert alpha.first_seen.date == T0
    assert alpha.disappeared[0].date == T0 + timedelta(days=20)
    b = histories["Beta"]
    assert beta.first_seen.id == b[2] and beta.still_present and not beta.disappeared
    data = alpha.as_json()
    assert data["first_seen"] == {"version": a[0], "date": T0.isoformat()}
    assert data["last_seen"] is None and data["still_present"] is True
    assert data["appeared"][1]["version"] == a[4]
    assert data["disappeared"] == [{"version": a[2], "date": (T0 + timedelta(days=20)).isoformat()}]


def test_a_phrase_no_longer_present(archive, histories):
    archive.versions.record(
        NewVersion("Beta", "Privacy Policy", text(False, "gone"), T0 + timedelta(days=90))
    )
    archive.sync_index()
    beta = next(t for t in when(archive, '"sell your personal information"') if t.service == "Beta")
    assert not beta.still_present
    assert beta.last_seen.id == histories["Beta"][2]
    assert beta.as_json()["last_seen"]["version"] == histories["Beta"][2]
    assert beta.disappeared[0].id == archive.versions.head()


def test_words_must_be_adjacent_and_in_order(archive, histories):
    assert when(archive, "information personal your sell") == []
    assert when(archive, "sell personal information") == []
    assert [t.service for t in when(archive, "personal information")] == ["Alpha", "Beta"]


def test_bad_phrases(archive, histories):
    with pytest.raises(QueryError, match="give a phrase"):
        when(archive, '  "" ')
    with pytest.raises(QueryError, match="limit is 500"):
        when(archive, "word " * 200)


def test_when_command(archive, histories, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{archive.config.data_dir}"\n', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(
        main, ["--config", str(config), "when", "sell your personal information", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [t["service"] for t in data] == ["Alpha", "Beta"]
    assert data[0]["disappeared"][0]["version"] == histories["Alpha"][2]
    text_out = runner.invoke(
        main, ["--config", str(config), "when", "sell your personal information"]
    ).output
    assert "Alpha · Privacy Policy" in text_out and "still present" in text_out
    assert "disappeared" in text_out
    none = runner.invoke(main, ["--config", str(config), "when", "no such clause anywhere"])
    assert none.exit_code == 0 and "No version of any policy" in none.output


def test_a_long_phrase_of_common_words_is_refused_within_its_cpu_budget(archive):
    from store.index import Phrase, QueryTooBroadError

    archive.versions.bulk_import(
        NewVersion(
            f"Service {n % 30}",
            "Privacy Policy",
            "\n\n".join(f"The clause {n}-{i} of the the policy." for i in range(3)),
            T0 + timedelta(days=n),
            FIRST_RECORD if n < 30 else CHANGE,
        )
        for n in range(300)
    )
    archive.sync_index()
    phrase = Phrase(("the",) * 120)  # every section holds every word: each step is costly
    began = time.thread_time()
    with pytest.raises(QueryTooBroadError, match="too long to answer"):
        archive.index.match_versions(phrase, time_budget=1e-6)
    # refused at one of the first checks: the budget is checked per amount of work done,
    # not only every few thousand documents
    assert time.thread_time() - began < 0.2


def test_waiting_is_not_cpu_time_a_busy_index_says_retry(archive, histories):
    from store.index import IndexBusyError, Term
    from store.index.whoosh.engine import READERS

    with contextlib.ExitStack() as held:  # every searcher lent out: the query must wait
        for _ in range(READERS):
            held.enter_context(archive.index._readers.reader())
        began = time.thread_time()
        with pytest.raises(IndexBusyError, match="try again"):
            archive.index.match_versions(Term("section"), time_budget=0.05)
        assert time.thread_time() - began < 0.05  # it waited; it did not spend its budget
    assert archive.index.match_versions(Term("section"), time_budget=0.05)
