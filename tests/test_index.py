"""The search index as a store: incremental sync, catch-up after a crash, rebuild, removal,
deduplicated sections, and searchers that keep working while a writer commits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from archive.alerts import LISTENERS
from archive.app import Archive
from archive.search import language_resolver, search
from store.git.repository import BRANCH
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from store.index import open_index
from store.index.sections import MAX_WORDS, split_sections
from tests.conftest import seed_text

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
WO = ("WorkOptima", "Privacy Policy")


def paragraphs(n: int, tag: str = "") -> list[str]:
    return [
        f"Paragraph {i}{tag} says something about clause{i} and its conditions, with "
        f"enough ordinary words around it to be a paragraph of a policy {i}."
        for i in range(n)
    ]


def record(
    archive: Archive, text: str, when: datetime, key: tuple[str, str] = WO, kind: str = CHANGE
) -> str:
    return archive.versions.record(NewVersion(*key, text, when, kind)).id


def sync(archive: Archive) -> int:
    return archive.index.sync(archive.versions, language_of=language_resolver(archive))


def hits(archive: Archive, q: str, **kw) -> list[tuple[str, str]]:
    return [(h.service, h.version.id) for h in search(archive, q, **kw).hits]


def test_sections_are_stable_under_edits():
    paras = paragraphs(40)
    before = {s.key for s in split_sections("\n\n".join(paras))}
    edited = list(paras)
    edited.insert(3, "A brand new paragraph inserted near the top of the policy.")
    edited[30] = edited[30].replace("conditions", "terms")
    after = {s.key for s in split_sections("\n\n".join(edited))}
    # two edits change a few sections; everything else is shared
    assert len(before - after) <= 4 and len(after & before) >= len(before) - 4
    huge = " ".join(["word"] * (MAX_WORDS * 3)) + "."
    assert all(s.words <= MAX_WORDS for s in split_sections(huge))
    twice = split_sections("Same paragraph here.\n\nSame paragraph here.")
    assert len({s.key for s in twice}) == len(twice)


def test_sync_indexes_each_new_version_once_and_records_head(archive):
    assert sync(archive) == 0 and archive.index.indexed_head() is None
    text = "\n\n".join(paragraphs(30))
    record(archive, text, T0, kind=FIRST_RECORD)
    assert sync(archive) == 1
    first = archive.index.stats()
    assert archive.index.indexed_head() == archive.versions.head()
    assert sync(archive) == 0
    record(archive, text.replace("clause7 ", "clause7 zebra "), T0 + timedelta(days=1))
    assert sync(archive) == 1
    second = archive.index.stats()
    assert (second.versions, second.policies) == (2, 1)
    # one changed paragraph: one new section, the rest is shared by both versions
    assert second.sections - first.sections == 1
    assert hits(archive, "zebra") == [("WorkOptima", archive.versions.head())]
    assert hits(archive, "zebra", history=True)[0][1] == archive.versions.head()
    assert search(archive, "clause7", history=True).hits[0].matched_versions == 2


def test_crash_between_commit_and_index_loses_nothing(make_config):
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        record(archive, seed_text("workoptima-privacy-policy.txt"), T0, kind=FIRST_RECORD)
        # the process dies here: committed to git, never indexed
        assert archive.index.indexed_head() is None
    with Archive.open(
        config, writer=True, listeners=LISTENERS
    ) as archive:  # a writer catches up on opening
        assert archive.index.indexed_head() == archive.versions.head()
        assert hits(archive, "retention 30 days")[0][0] == "WorkOptima"
    with Archive.open(config) as reader:
        assert hits(reader, "retention 30 days")[0][0] == "WorkOptima"


def test_rebuild_gives_the_same_answers_as_incremental_syncs(archive):
    texts = [
        seed_text("workoptima-privacy-policy.txt"),
        seed_text("back-office-privacy-policy.txt"),
    ]
    for day in range(6):
        for i, text in enumerate(texts):
            edited = text.replace("Privacy", f"Privacy{day}", 1) if day else text
            record(
                archive,
                edited,
                T0 + timedelta(days=day, hours=i),
                key=(f"S{i}", "Privacy Policy"),
                kind=FIRST_RECORD if day == 0 else CHANGE,
            )
        sync(archive)
    queries = [
        ("retention 30 days", {}),
        ('"personal information"', {"history": True}),
        ("privacy3", {"history": True}),
        ("*", {"history": True}),
    ]

    def answers():
        out = [search(archive, q, **kw).as_json() for q, kw in queries]
        scores = [h.pop("score") for a in out for h in a["hits"]]
        return out, scores

    (incremental, scores), stats = answers(), archive.index.stats()
    for processes in (1, 2):
        assert archive.index.rebuild(archive.versions, processes=processes) == 12
        rebuilt, new_scores = answers()
        assert rebuilt == incremental and archive.index.stats() == stats
        # idf is estimated while an incremental index still holds deleted documents
        assert new_scores == pytest.approx(scores, rel=0.2)


def test_remove_a_policy(archive):
    record(archive, seed_text("workoptima-privacy-policy.txt"), T0, kind=FIRST_RECORD)
    record(
        archive,
        seed_text("back-office-privacy-policy.txt"),
        T0,
        key=("Back Office", "PP"),
        kind=FIRST_RECORD,
    )
    sync(archive)
    assert archive.index.remove("WorkOptima", "Privacy Policy") is True
    assert archive.index.remove("WorkOptima", "Privacy Policy") is False
    assert [s for s, _ in hits(archive, "*", history=True)] == ["Back Office"]


def test_rewritten_history_is_rebuilt(archive):
    first = record(archive, "\n\n".join(paragraphs(20)), T0, kind=FIRST_RECORD)
    record(archive, "\n\n".join(paragraphs(20, "b")), T0 + timedelta(days=1))
    sync(archive)
    archive.versions.git.repo.git.update_ref(f"refs/heads/{BRANCH}", first)  # history rewritten
    record(archive, "\n\n".join(paragraphs(20, "c")), T0 + timedelta(days=2))
    sync(archive)
    assert archive.index.indexed_head() == archive.versions.head()
    assert search(archive, "*", history=True).hits[0].matched_versions == 2
    assert search(archive, "paragraph 3b", history=True).total == 0


def test_language_of_and_detection(archive):
    fr = (
        "Nous conservons vos données personnelles pendant la durée nécessaire. "
        "Les données sont utilisées pour le service et ne sont pas vendues à des tiers.\n\n"
        "Vous pouvez exercer vos droits sur vos données à tout moment."
    )
    record(archive, fr, T0, key=("Detected", "CGU"), kind=FIRST_RECORD)
    record(archive, fr, T0, key=("Declared", "CGU"), kind=FIRST_RECORD)
    archive.state.set_meta("lang:Declared/CGU", "fr")
    sync(archive)
    facets = search(archive, "*").facets["lang"]
    assert facets == {"fr": 2}
    # French stemming: "donnée" and "données" are one word
    assert {s for s, _ in hits(archive, "donnée")} == {"Detected", "Declared"}


def test_searchers_keep_working_while_a_writer_commits(archive):
    text = "\n\n".join(paragraphs(30))
    record(archive, text, T0, kind=FIRST_RECORD)
    sync(archive)
    errors: list[BaseException] = []
    seen: list[list[int]] = [[], []]
    stop = threading.Event()

    def reader(mine: list[int]) -> None:
        try:
            while not stop.is_set():
                mine.append(search(archive, "clause5", history=True).hits[0].matched_versions)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(mine,)) for mine in seen]
    for t in threads:
        t.start()
    try:
        for day in range(1, 6):
            record(archive, text.replace("clause9 ", f"clause9 v{day} "), T0 + timedelta(days=day))
            sync(archive)
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and not all(mine and mine[-1] == 6 for mine in seen)
            and not errors
        ):
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    for mine in seen:
        assert mine and mine[-1] == 6  # each thread's searcher saw the last commit
        assert mine == sorted(mine)  # never an older state after a newer one


def test_a_second_index_object_sees_commits(archive):
    record(archive, seed_text("workoptima-privacy-policy.txt"), T0, kind=FIRST_RECORD)
    sync(archive)
    other = open_index(
        archive.config.index_dir,
        engine=archive.config.search.engine,
        url=archive.config.search_url,
    )
    try:
        assert other.indexed_head() == archive.versions.head()
        record(
            archive,
            "A new text about zebras and retention.\n\nSecond paragraph.",
            T0 + timedelta(days=1),
        )
        sync(archive)
        assert other.indexed_head() == archive.versions.head()
        assert other.stats().versions == 2
    finally:
        other.close()


@pytest.mark.usefixtures("whoosh_only")
def test_writer_lock_gives_a_clear_error(archive):
    from whoosh import index as whoosh_index

    from store.errors import StoreError
    from store.index.whoosh import engine

    record(archive, "Some text here.\n\nMore text.", T0, kind=FIRST_RECORD)
    ix = whoosh_index.open_dir(archive.config.index_dir)
    held = ix.writer()
    old = engine.WRITE_TIMEOUT
    engine.WRITE_TIMEOUT = 0.2
    try:
        with pytest.raises(StoreError, match="being written by another process"):
            sync(archive)
    finally:
        engine.WRITE_TIMEOUT = old
        held.cancel()
        ix.close()
    assert sync(archive) == 1


def test_tantivy_writer_lock_gives_a_clear_error(archive, search_engine):
    if search_engine != "tantivy":
        pytest.skip("tests a part of the tantivy engine")
    import tantivy

    from store.errors import StoreError

    record(archive, "Some text here.\n\nMore text.", T0, kind=FIRST_RECORD)
    sync(archive)
    record(archive, "Other text here.\n\nMore words.", T0 + timedelta(days=1))
    held = tantivy.Index.open(str(archive.config.index_dir / "sections")).writer(15_000_000, 1)
    try:
        with pytest.raises(StoreError, match="being written by another process"):
            sync(archive)
    finally:
        held.rollback()
        held.wait_merging_threads()
    assert sync(archive) == 1


@pytest.mark.usefixtures("whoosh_only")
def test_threads_share_a_bounded_pool_of_searchers(archive, monkeypatch):
    from store.index.whoosh import engine
    from store.index.whoosh.readers import ReaderPool

    record(archive, "Some words about cookies.\n\nAnd more words.", T0, kind=FIRST_RECORD)
    sync(archive)
    opened: list[object] = []
    real_open = ReaderPool._open

    def counting_open(pool: ReaderPool, gen: tuple[int, int]):
        reader = real_open(pool, gen)
        opened.append(reader)
        return reader

    monkeypatch.setattr(ReaderPool, "_open", counting_open)
    errors: list[BaseException] = []

    def requests() -> None:
        try:
            for _ in range(20):
                assert search(archive, "cookies").total == 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=requests) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # eight threads, 160 searches: at most READERS searchers, each opened once
    assert 1 <= len(opened) <= engine.READERS
    record(archive, "Cookies and more cookies.\n\nNew words.", T0 + timedelta(days=1))
    sync(archive)
    assert search(archive, "new words").total == 1  # a new generation: a new searcher
    assert len(opened) <= engine.READERS + 1
    assert sum(1 for r in opened if not r.searcher.is_closed) <= engine.READERS


# ---------------------------------------------------------------------- idempotent per version


def record_three(archive: Archive) -> list[str]:
    """Three versions of two policies, indexed; their ids in commit order."""
    ids = [
        record(archive, "\n\n".join(paragraphs(12)), T0, kind=FIRST_RECORD),
        record(archive, "\n\n".join(paragraphs(12, "b")), T0, ("Other", "Terms"), FIRST_RECORD),
        record(archive, "\n\n".join(paragraphs(12, "c")), T0 + timedelta(days=1)),
    ]
    sync(archive)
    return ids


def test_a_lagging_indexed_head_never_indexes_a_version_twice(archive, caplog):
    first, _, last = record_three(archive)
    archive.index.add(archive.versions, [], head=first)  # the head lags what the index holds
    assert archive.index.indexed_head() == first and archive.index.stats().versions == 3
    assert sync(archive) == 0  # both versions after `first` are in the index: skipped
    assert "2 of the 2 versions to index" in caplog.text
    stats = archive.index.stats()
    assert (stats.versions, stats.policies, stats.head) == (3, 2, last)
    matched = {h.service: h.matched_versions for h in search(archive, "*", history=True).hits}
    assert matched == {"WorkOptima": 2, "Other": 1}
    record(archive, "\n\n".join(paragraphs(12, "d")), T0 + timedelta(days=2))
    assert sync(archive) == 1 and archive.index.stats().versions == 4


def test_versions_handed_over_twice_are_indexed_once(archive):
    record(archive, "\n\n".join(paragraphs(12)), T0, kind=FIRST_RECORD)
    sync(archive)
    for day in (1, 2):
        record(archive, "\n\n".join(paragraphs(12, f"v{day}")), T0 + timedelta(days=day))
    new = archive.versions.log()[1:]
    doubled = [new[0], new[0], new[1], new[0], new[1]]
    assert archive.index.add(archive.versions, doubled, head=archive.versions.head()) == 2
    assert archive.index.stats().versions == 3
    assert [h.matched_versions for h in search(archive, "paragraph", history=True).hits] == [3]


def test_a_version_store_read_while_another_thread_commits_is_indexed_once(archive):
    """Threads that read the versions while another records (as ``check``'s do) could make
    ``log()`` list a version twice (a stale HEAD in the version cache); the index takes each
    version once whatever the log says."""
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            archive.versions.current(*WO)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for n in range(60):
            text = "\n\n".join(paragraphs(4, f"r{n}"))
            record(archive, text, T0 + timedelta(hours=n), key=(f"S{n % 3}", "Privacy Policy"))
            if n % 20 == 19:
                sync(archive)
    finally:
        stop.set()
        for t in readers:
            t.join()
    sync(archive)
    ids = [c.sha for c in archive.versions.git.log()]  # git itself, not the version cache
    stats = archive.index.stats()
    assert (stats.versions, stats.policies, stats.head) == (len(set(ids)), 3, ids[-1])
    assert not archive.index.doubled()


def add_a_repeat(archive: Archive, vid: str) -> None:
    """Write a second version document for ``vid`` into the index, as a writer that did not
    skip what the index held did (a crafted index: the real writer cannot do it now)."""
    from whoosh import index as whoosh_index

    from store.index.whoosh.schema import VERSION, encode_lang, encode_vid

    version = next(v for v in archive.versions.log() if v.id == vid)
    with archive.index._readers.reader() as reader:
        catalog = reader.catalog
        pid = catalog.pid_of(version.service, version.type)
        count = catalog.policies[pid].count
    ix = whoosh_index.open_dir(archive.config.index_dir)
    try:
        writer = ix.writer()
        writer.add_document(
            policy=str(pid),
            kind=VERSION,
            pid=pid,
            seq=count,
            vid=encode_vid(vid),
            date=int(version.date.timestamp()),
            tz=0,
            ntok=10,
            lang=encode_lang("en"),
        )
        writer.commit()
    finally:
        ix.close()


@pytest.mark.usefixtures("whoosh_only")
def test_an_index_holding_a_version_twice_is_rebuilt_by_the_next_writer(make_config, caplog):
    config = make_config()
    with Archive.open(config, writer=True, listeners=LISTENERS, create=True) as archive:
        ids = record_three(archive)
        add_a_repeat(archive, ids[-1])
        assert archive.index.stats().versions == 4  # what `verify` reported: 4 against 3
    with Archive.open(
        config, writer=True, listeners=LISTENERS
    ) as archive:  # its catch-up finds and rebuilds
        stats = archive.index.stats()
        assert (stats.versions, stats.policies, stats.head) == (3, 2, ids[-1])
        assert not archive.index.doubled()
    assert f"holds 1 version(s) more than once (WorkOptima Privacy Policy {ids[-1][:12]}" in (
        caplog.text
    )
    assert "rebuilding it from git now" in caplog.text


def test_small_batches_never_rewrite_the_large_segment(tmp_path, monkeypatch) -> None:
    """whoosh's default merge policy rewrites every segment once there are many (10+ minutes
    on a 500 MB index, inside one batch's commit); ours merges only the small ones."""
    from whoosh import index as whoosh_index
    from whoosh.fields import TEXT, Schema

    from store.index.whoosh import engine
    from store.index.whoosh.engine import MERGE_AT, merge_small_only

    monkeypatch.setattr(engine, "LARGE_INDEX_DOCS", 1000)  # this index counts as a large one

    ix = whoosh_index.create_in(str(tmp_path), Schema(body=TEXT(stored=True)))
    writer = ix.writer()
    for i in range(6000):
        writer.add_document(body=f"large segment document {i}")
    writer.commit()
    (large,) = ix._segments()
    for batch in range(MERGE_AT * 3):
        writer = ix.writer()
        writer.add_document(body=f"batch {batch}")
        writer.commit(mergetype=merge_small_only)
        segments = ix._segments()
        assert any(s.segment_id() == large.segment_id() for s in segments)
        assert len(segments) <= MERGE_AT + 1  # the large one and at most MERGE_AT small ones
    assert ix.doc_count() == 6000 + MERGE_AT * 3
