"""The PostgreSQL implementation of :class:`store.index.base.SearchIndex`.

The index is a schema of tables in a shared database (:mod:`store.index.postgresql.schema`),
written by one writer at a time (an advisory lock) on the primary and read by any number of
processes, from read replicas when there are any (:mod:`store.index.postgresql.replicas`).
Every search is one read-only snapshot; its time budget is the statements'
``statement_timeout`` and its own CPU time (:class:`store.index.budget.Budget`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg

from store.errors import StoreError
from store.git.versions import Version, VersionStore
from store.index.analysis import ANALYSED, field_language, query_language
from store.index.base import IndexStats, LanguageOf, Progress, SearchIndex, batches
from store.index.budget import Budget
from store.index.page import result_page
from store.index.policies import allowed_versions, every_version, policy_matches
from store.index.postgresql.catalog import Catalog, Catalogs, read_meta
from store.index.postgresql.evaluate import Evaluation, scores
from store.index.postgresql.replicas import Servers, where
from store.index.postgresql.schema import (
    BUILD_SCHEMA,
    LAYOUT,
    SCHEMA,
    create_indexes,
    create_tables,
    lock_for_reading,
    swap_in,
)
from store.index.postgresql.snippets import snippets
from store.index.postgresql.translate import Translator, Vocabulary
from store.index.postgresql.writer import Indexer, hold_writer_lock
from store.index.query import (
    TIME_BUDGET,
    IndexDamagedError,
    Node,
    PolicyMatches,
    SearchQuery,
    SearchResults,
    query_lang_filter,
    query_words,
)
from store.index.source import read_texts, texts_ahead

log = logging.getLogger(__name__)

BATCH_VERSIONS = 2000
PARALLEL_FROM = 2000  # an empty index catching up with this many versions is rebuilt instead
FLUSH_ROWS = 5000  # rows a rebuild keeps before writing them
REPORT_EVERY = 50


def _catalog(conn: psycopg.Connection, catalogs: Catalogs) -> Catalog | None:
    """The catalog of the index this snapshot holds (None: no index of this layout). The
    tables are locked before the snapshot is taken (a savepoint and LOCK take none)."""
    conn.execute("SAVEPOINT index_tables")
    try:
        lock_for_reading(conn)
    except psycopg.errors.UndefinedTable:
        conn.execute("ROLLBACK TO SAVEPOINT index_tables")
        return None
    meta = read_meta(conn)
    if meta.get("layout") != LAYOUT:
        return None
    return catalogs.get(conn, meta)


class PostgresIndex(SearchIndex):
    def __init__(self, url: str, *, replicas: tuple[str, ...] = (), readers: int = 2) -> None:
        self.servers = Servers(url, tuple(replicas), readers)
        self.where = where(url)
        self.catalogs = Catalogs()

    # ------------------------------------------------------------------ reading

    def _meta(self) -> dict[str, str] | None:
        """The primary's meta table (None: no index there)."""
        try:
            with self.servers.primary.connection() as conn:
                if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone() == (
                    None,
                ):
                    return None
                return read_meta(conn)
        except psycopg.Error as exc:
            raise self.servers._translated(exc, self.servers.primary) from None

    def exists(self) -> bool:
        meta = self._meta()
        return meta is not None and meta.get("layout") == LAYOUT

    def indexed_head(self) -> str | None:
        meta = self._meta()
        if meta is None or meta.get("layout") != LAYOUT:
            return None
        return meta.get("head") or None

    def _langs(self, catalog: Catalog, lang: str | None, current: bool) -> list[str]:
        present = catalog.current_analysers if current else catalog.analysers
        langs = [field_language(lang)] if lang else list(ANALYSED)
        return [x for x in langs if x in present]

    def _evaluation(
        self,
        conn: psycopg.Connection,
        catalog: Catalog,
        budget: Budget,
        node: Node,
        lang: str | None,
        current: bool,
    ) -> Evaluation:
        qlang = query_language(query_words(node), lang or query_lang_filter(node))
        return Evaluation(
            conn,
            catalog,
            Translator(Vocabulary(conn), qlang),
            budget,
            self._langs(catalog, lang, current),
            current,
        )

    def search(self, query: SearchQuery) -> SearchResults:
        def work(conn: psycopg.Connection) -> SearchResults:
            budget = Budget(query.time_budget)
            catalog = _catalog(conn, self.catalogs)
            if catalog is None:
                return SearchResults.empty(query)
            budget.restart_cpu()  # reading a new generation's catalog is not the query's work
            history = bool(query.history or query.date_from or query.date_to)
            ev = self._evaluation(conn, catalog, budget, query.tree, query.lang, not history)
            allowed = allowed_versions(catalog.policies, query)
            masks = ev.masks(query.tree, allowed) if allowed else {}
            policies = catalog.policies
            ranked = sorted(
                scores(ev, masks),
                key=lambda s: (-s[0], policies[s[1]].service, policies[s[1]].type),
            )
            return result_page(
                query, policies, ranked, lambda shown: snippets(ev, shown), catalog.head
            )

        return self.servers.read(work, query.time_budget)

    def match_versions(self, node: Node, time_budget: float = TIME_BUDGET) -> list[PolicyMatches]:
        def work(conn: psycopg.Connection) -> list[PolicyMatches]:
            budget = Budget(time_budget)
            catalog = _catalog(conn, self.catalogs)
            if catalog is None:
                return []
            budget.restart_cpu()
            ev = self._evaluation(conn, catalog, budget, node, None, current=False)
            allowed = every_version(catalog.policies)
            masks = ev.masks(node, allowed) if allowed else {}
            return policy_matches(catalog.policies, masks)

        return self.servers.read(work, time_budget)

    def stats(self) -> IndexStats:
        meta = self._meta()
        if meta is None or meta.get("layout") != LAYOUT:
            return IndexStats(policies=0, versions=0, sections=0, head=None)
        with self.servers.primary.connection() as conn:
            row = conn.execute(
                f"SELECT count(DISTINCT pid), count(*) FROM {SCHEMA}.version"
            ).fetchone()
        policies, versions = row if row else (0, 0)
        return IndexStats(
            policies=int(policies),
            versions=int(versions),
            sections=int(meta.get("sections", "0")),
            head=meta.get("head") or None,
        )

    def doubled(self) -> list[tuple[str, str, str]]:
        """(service, type, version id) of each version the index holds more than once (none:
        the writer skips what the index holds; kept for ``verify``, as the other engines')."""
        if not self.exists():
            return []
        with self.servers.primary.connection() as conn:
            rows = conn.execute(
                f"SELECT p.service, p.type, v.vid FROM {SCHEMA}.version v "
                f"JOIN {SCHEMA}.policy p USING (pid) GROUP BY 1, 2, 3 HAVING count(*) > 1"
            ).fetchall()
        return [(str(s), str(t), str(v)) for s, t, v in rows]

    def close(self) -> None:
        self.servers.close()

    # ------------------------------------------------------------------ writing

    def sync(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """As :meth:`SearchIndex.sync`; a missing index is built, a damaged one rebuilt."""
        try:
            if self.exists():
                return super().sync(versions, progress=progress, language_of=language_of)
            log.info("building the search index in %s from git", self.where)
        except IndexDamagedError as exc:
            log.warning("%s; rebuilding it from git now", exc)
        return self.rebuild(versions, progress=progress, language_of=language_of)

    def add(
        self,
        versions: VersionStore,
        new: Sequence[Version],
        *,
        head: str | None,
        progress: Progress | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        if not self.exists() or (len(new) >= PARALLEL_FROM and not self.stats().policies):
            return self.rebuild(versions, progress, language_of=language_of)
        with self.servers.writing() as conn:
            hold_writer_lock(conn, self.where)
            indexer = Indexer(conn, SCHEMA, language_of, fresh=False)
            seen = added = 0
            try:
                for batch, batch_head in batches(new, head, BATCH_VERSIONS):
                    with conn.transaction():
                        todo = list({v.id: v for v in batch if not indexer.holds(v)}.values())
                        texts = dict(
                            zip((v.id for v in todo), read_texts(versions, todo), strict=True)
                        )
                        for version in batch:
                            if version.id in texts and indexer.add(version, texts[version.id]):
                                added += 1
                            seen += 1
                            if progress and (seen % REPORT_EVERY == 0 or seen == len(new)):
                                progress(seen, len(new))
                        indexer.flush()
                        indexer.flush_vocabulary()
                        indexer.write_meta(batch_head)
            except psycopg.Error as exc:
                raise StoreError(
                    f"writing the search index in {self.where} failed: {exc}"
                ) from None
        if added < len(new):
            log.warning(
                "%d of the %d versions to index up to %s were in the search index already: skipped",
                len(new) - added,
                len(new),
                head[:12] if head else "(none)",
            )
        return added

    def rebuild(
        self,
        versions: VersionStore,
        progress: Progress | None = None,
        processes: int | None = None,
        language_of: LanguageOf | None = None,
    ) -> int:
        """Build the tables anew in a schema of their own, then swap them in (the old index
        is not read). One process reads and analyses (``processes`` is not used: PostgreSQL
        builds the indexes, with its own workers)."""
        with self.servers.writing() as conn:
            hold_writer_lock(conn, self.where)
            try:
                return self._rebuild(conn, versions, progress, language_of)
            except psycopg.Error as exc:
                raise StoreError(f"cannot build the search index in {self.where}: {exc}") from None
            finally:
                conn.execute(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE")

    def _rebuild(
        self,
        conn: psycopg.Connection,
        versions: VersionStore,
        progress: Progress | None,
        language_of: LanguageOf | None,
    ) -> int:
        head = versions.head()
        todo = list({(v.key, v.id): v for v in versions.log()}.values())  # each once
        groups: dict[tuple[str, str], list[Version]] = {}
        for version in todo:
            groups.setdefault(version.key, []).append(version)
        with conn.transaction():
            create_tables(conn, BUILD_SCHEMA)
        indexer = Indexer(conn, BUILD_SCHEMA, language_of, fresh=True)
        done = 0
        policies = list(groups.values())
        for policy_versions, texts in zip(policies, texts_ahead(versions, policies), strict=True):
            for version, text in zip(policy_versions, texts, strict=True):
                indexer.add(version, text)
                done += 1
                if progress and (done % REPORT_EVERY == 0 or done == len(todo)):
                    progress(done, len(todo))
            indexer.forget(*policy_versions[0].key)
            if indexer.pending >= FLUSH_ROWS:
                indexer.flush()
        indexer.flush()
        indexer.flush_vocabulary()
        indexer.write_meta(head)
        create_indexes(conn, BUILD_SCHEMA)
        conn.execute(f"ANALYZE {BUILD_SCHEMA}.section, {BUILD_SCHEMA}.version")
        with conn.transaction():
            swap_in(conn)
        return len(todo)

    def remove(self, service: str, type_: str) -> bool:
        if not self.exists():
            return False
        with self.servers.writing() as conn:
            hold_writer_lock(conn, self.where)
            with conn.transaction():
                row = conn.execute(
                    f"DELETE FROM {SCHEMA}.policy WHERE service = %s AND type = %s RETURNING pid",
                    (service, type_),
                ).fetchone()
                if row is None:
                    return False
                conn.execute(f"DELETE FROM {SCHEMA}.version WHERE pid = %s", row)
                gone = conn.execute(f"DELETE FROM {SCHEMA}.section WHERE pid = %s", row).rowcount
                conn.execute(
                    f"UPDATE {SCHEMA}.meta SET value = CASE key "
                    "WHEN 'sections' THEN (value::bigint - %s)::text "
                    "ELSE md5(random()::text) END WHERE key IN ('sections', 'generation')",
                    (gone,),
                )
        return True
