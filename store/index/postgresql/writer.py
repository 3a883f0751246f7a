"""Versions into the PostgreSQL index, keeping the runs of sections that versions share.

The same bookkeeping as the other engines' writers, with the same sections
(:class:`store.index.sections.SectionSplitter`) and analysers: for each new version of a
policy, in commit order, a section of the previous version continues its run (nothing
written), a new one opens a run (one ``section`` row, analysed once), a gone one ends its run
(its ``stop`` is set). Rows go in with ``COPY``; a batch is one transaction that also writes
the head it reaches and a new generation, so readers see all of it or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from store.errors import StoreError
from store.git.versions import Version
from store.index.analysis import PLAIN, detect_language, field_language
from store.index.base import LanguageOf
from store.index.postgresql.schema import LAYOUT
from store.index.postgresql.terms import analysed, tsvector
from store.index.sections import Section, SectionSplitter

WRITER_LOCK = 7_202_611  # the advisory lock one writer holds (any number, the same for all)
LOCK_WAIT = "60s"
STEMMED_KIND, WORD_KIND = "s", "w"
NUL_STANDIN = "\ufffd"  # PostgreSQL text cannot hold NUL; no word contains one


@dataclass
class OpenRun:
    run: int
    words: int


@dataclass
class PolicyState:
    pid: int
    count: int = 0
    lang: str | None = None
    analyser: str | None = None
    open: dict[str, OpenRun] = field(default_factory=dict)
    vids: set[str] = field(default_factory=set)


def hold_writer_lock(conn: psycopg.Connection, where: str) -> None:
    """Be the one writer (a second waits a minute, then gets a StoreError)."""
    try:
        conn.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
        conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
        conn.execute("SET lock_timeout = 0")
        conn.commit()
    except errors.LockNotAvailable:
        conn.rollback()
        raise StoreError(
            f"the search index in {where} is being written by another process; "
            "try again when it has finished"
        ) from None


class PartTerms:
    """The terms of sections analysed paragraph by paragraph, each distinct paragraph once
    per analyser (an edit changes one paragraph; the others were analysed before)."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._seen: dict[str, dict[str, list[str]]] = {}

    def terms(self, analyser: str, section: Section) -> list[str]:
        seen = self._seen.setdefault(analyser, {})
        if len(seen) > self.limit:
            seen.clear()
        out: list[str] = []
        for part in section.parts or (section.text,):
            found = seen.get(part)
            if found is None:
                found = seen[part] = analysed(analyser, part)
            out += found
        return out


class Indexer:
    """Appends versions to the tables of ``schema`` through ``conn`` (the caller commits).

    ``fresh``: the tables are empty (a rebuild), so no policy is looked up."""

    def __init__(
        self, conn: psycopg.Connection, schema: str, language_of: LanguageOf | None, fresh: bool
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.language_of = language_of
        self.fresh = fresh
        self.states: dict[tuple[str, str], PolicyState] = {}
        meta: dict[str, str] = (
            {} if fresh else dict(conn.execute(self._sql("SELECT key, value FROM {}.meta")))
        )
        self.next_pid = int(meta.get("next_pid", "1"))
        self.next_run = int(meta.get("next_run", "1"))
        self.sections = int(meta.get("sections", "0"))
        self.splitter = SectionSplitter()
        self.parts = PartTerms()
        self._policies: list[tuple[int, str, str]] = []
        self._versions: list[tuple[object, ...]] = []
        self._sections: list[tuple[object, ...]] = []
        self._ended: list[tuple[int, int]] = []
        self.vocabulary: dict[tuple[str, str], set[str]] = {}

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(sql.Identifier(self.schema))

    @property
    def pending(self) -> int:
        return len(self._sections) + len(self._versions)

    # ------------------------------------------------------------------ policy state

    def state(self, service: str, type_: str) -> PolicyState:
        key = (service, type_)
        found = self.states.get(key)
        if found is not None:
            return found
        row = None
        if not self.fresh:
            row = self.conn.execute(
                self._sql("SELECT pid FROM {}.policy WHERE service = %s AND type = %s"),
                (service, type_),
            ).fetchone()
        if row is None:
            state = PolicyState(self.next_pid)
            self.next_pid += 1
            self._policies.append((state.pid, service, type_))
        else:
            state = PolicyState(int(row[0]))
            versions = self.conn.execute(
                self._sql("SELECT vid, lang FROM {}.version WHERE pid = %s ORDER BY seq"),
                (state.pid,),
            ).fetchall()
            state.vids = {v for v, _ in versions}
            state.count = len(versions)
            if versions:
                state.lang = versions[-1][1]
                state.analyser = field_language(state.lang)
            for run, key_, words in self.conn.execute(
                self._sql("SELECT run, key, words FROM {}.section WHERE pid = %s AND stop IS NULL"),
                (state.pid,),
            ):
                state.open[key_] = OpenRun(int(run), int(words))
        self.states[key] = state
        return state

    def holds(self, version: Version) -> bool:
        return version.id in self.state(version.service, version.type).vids

    def forget(self, service: str, type_: str) -> None:
        """Drop a written policy's state (a rebuild goes policy by policy)."""
        self.states.pop((service, type_), None)

    def _language(self, version: Version, state: PolicyState, text: str) -> str | None:
        if self.language_of is not None:
            known = self.language_of(version.service, version.type)
            if known:
                return known
        if state.count:
            return state.lang
        return detect_language(text)

    # ------------------------------------------------------------------ appending

    def add(self, version: Version, text: str | None) -> bool:
        """Index ``version`` (``text`` None: its file was deleted); False when the policy
        holds that version already."""
        state = self.state(version.service, version.type)
        if version.id in state.vids:
            return False
        lang = self._language(version, state, text or "")
        analyser = field_language(lang)
        seq = state.count
        if state.analyser is not None and analyser != state.analyser:
            self._ended += [(run.run, seq) for run in state.open.values()]
            state.open = {}
        current: dict[str, OpenRun] = {}
        for section in self.splitter.split(text) if text else []:
            run = state.open.get(section.key)
            if run is None:
                run = OpenRun(self.next_run, section.words)
                self.next_run += 1
                self._new_section(state.pid, seq, analyser, run, section)
            current[section.key] = run
        self._ended += [(r.run, seq) for k, r in state.open.items() if k not in current]
        offset = version.date.utcoffset()
        self._versions.append(
            (
                state.pid,
                seq,
                version.id,
                int(version.date.timestamp()),
                int(offset.total_seconds() // 60) if offset else 0,
                sum(r.words for r in current.values()),
                lang,
            )
        )
        state.open = current
        state.vids.add(version.id)
        state.count += 1
        state.lang = lang
        state.analyser = analyser
        return True

    def _new_section(
        self, pid: int, seq: int, analyser: str, run: OpenRun, section: Section
    ) -> None:
        terms = self.parts.terms(analyser, section)
        plain = self.parts.terms(PLAIN, section) if analyser != PLAIN else None
        self.vocabulary.setdefault((analyser, STEMMED_KIND), set()).update(terms)
        if plain is not None:
            self.vocabulary.setdefault((analyser, WORD_KIND), set()).update(plain)
        self._sections.append(
            (
                run.run,
                pid,
                seq,
                analyser,
                section.words,
                section.key,
                section.text.replace("\x00", NUL_STANDIN),  # text cannot hold NUL
                tsvector(terms),
                tsvector(plain) if plain is not None else None,
            )
        )
        self.sections += 1

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what was added since the last flush (in the caller's transaction)."""
        copies: Sequence[tuple[str, Sequence[tuple[object, ...]]]] = (
            ("COPY {}.policy (pid, service, type) FROM STDIN", self._policies),
            ("COPY {}.version (pid, seq, vid, date, tz, ntoks, lang) FROM STDIN", self._versions),
            (
                "COPY {}.section (run, pid, first, analyser, words, key, body, terms, plain) "
                "FROM STDIN",
                self._sections,
            ),
        )
        with self.conn.cursor() as cur:
            for statement, rows in copies:
                if rows:
                    with cur.copy(self._sql(statement)) as copy:
                        for row in rows:
                            copy.write_row(row)
            if self._ended:
                runs, stops = zip(*self._ended, strict=True)
                cur.execute(
                    self._sql(
                        "UPDATE {}.section AS s SET stop = e.stop "
                        "FROM unnest(%s::bigint[], %s::int[]) AS e(run, stop) WHERE s.run = e.run"
                    ),
                    (list(runs), list(stops)),
                )
        self._policies, self._versions, self._sections, self._ended = [], [], [], []

    def flush_vocabulary(self) -> None:
        """Add the terms met since the last call to the vocabulary."""
        with self.conn.cursor() as cur:
            for (lang, kind), terms in self.vocabulary.items():
                if not terms:
                    continue
                if self.fresh:
                    with cur.copy(
                        self._sql("COPY {}.vocabulary (lang, kind, term) FROM STDIN")
                    ) as c:
                        for term in terms:
                            c.write_row((lang, kind, term))
                else:
                    cur.execute(
                        self._sql(
                            "INSERT INTO {}.vocabulary (lang, kind, term) "
                            "SELECT %s, %s, t FROM unnest(%s::text[]) AS t ON CONFLICT DO NOTHING"
                        ),
                        (lang, kind, sorted(terms)),
                    )
        self.vocabulary = {}

    def write_meta(self, head: str | None) -> None:
        """Record ``head`` as indexed and a new generation (with this batch's rows)."""
        values = {
            "head": head or "",
            "layout": LAYOUT,
            "generation": uuid.uuid4().hex,
            "sections": str(self.sections),
            "next_pid": str(self.next_pid),
            "next_run": str(self.next_run),
        }
        self.conn.execute(
            self._sql(
                "INSERT INTO {}.meta (key, value) SELECT * FROM unnest(%s::text[], %s::text[]) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            (list(values), list(values.values())),
        )
