"""Turn versions into tantivy documents, keeping the runs of sections versions share.

The same idea as the whoosh writer (:mod:`store.index.whoosh.writer`), with the same sections
(:func:`store.index.sections.split_sections`) and analysers: for each new version of a policy,
in commit order, a section that stood in the previous version continues its run (nothing
written), a new one starts a run (one ``sec`` document, analysed once), a gone one ends its run
(only the policy's catalog entry changes: runs' versions are not in their documents). At the
end of a batch, each changed policy gets its ``cur`` document (its current text) and ``pol``
document (catalog entry) rewritten. Idempotent per version, as the whoosh writer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import tantivy

from store.git.versions import Version
from store.index.analysis import (
    PLAIN,
    detect_language,
    field_language,
)
from store.index.base import LanguageOf
from store.index.sections import Section, SectionSplitter
from store.index.tantivy.catalog import Catalog, PolicyEntry, RunRow, stored_bytes
from store.index.tantivy.schema import (
    CUR,
    CUR_TIER,
    LAYOUT,
    META,
    POL,
    SEC,
    SEC_TIER,
    text_field,
    word_field,
)
from store.index.tantivy.terms import PartTerms, analysed

if TYPE_CHECKING:
    from store.index.tantivy.prepare import Prepared

log = logging.getLogger(__name__)


@dataclass
class OpenRun:
    """A section standing in the latest version of its policy."""

    row: RunRow  # the run's row in the policy's catalog entry
    text: str | None = None  # Markdown, while it is at hand
    terms: str | None = None  # analysed, joined by spaces; None until needed
    words: str | None = None  # folded, not stemmed (for stemmed languages)


@dataclass
class PolicyState:
    entry: PolicyEntry
    analyser: str | None
    open: dict[str, OpenRun] = field(default_factory=dict)
    vids: set[str] = field(default_factory=set)
    changed: bool = False
    in_index: bool = False


class Sink:
    """The writers of the two tantivy indexes (``current/`` and ``sections/``), with deletion
    by document key."""

    def __init__(self, sections: tantivy.IndexWriter, current: tantivy.IndexWriter) -> None:
        self.sections = sections
        self.current = current

    def add(self, doc: tantivy.Document) -> None:
        self.sections.add_document(doc)

    def add_current(self, doc: tantivy.Document) -> None:
        self.current.add_document(doc)

    def delete(self, key: str) -> None:
        self.sections.delete_documents_by_term("key", key)

    def delete_current(self, key: str) -> None:
        self.current.delete_documents_by_term("key", key)

    def commit(self) -> None:
        """Current texts first, then the catalog: a reader never sees a catalog whose
        current texts are missing."""
        self.current.commit()
        self.sections.commit()

    def rollback(self) -> None:
        self.current.rollback()
        self.sections.rollback()

    def close(self) -> None:
        self.current.wait_merging_threads()
        self.sections.wait_merging_threads()


def fill(run: OpenRun, text: str) -> None:
    """A run's analysed text: its stems, and its words (folded) for a stemmed language."""
    run.terms = analysed(run.row[5], text)
    run.words = analysed(PLAIN, text) if run.row[5] != PLAIN else None


def section_terms(parts: PartTerms, analyser: str, section: Section) -> tuple[str, str | None]:
    """A new section's stems, and its words (folded) for a stemmed language."""
    terms = parts.terms(analyser, section.parts)
    return terms, parts.terms(PLAIN, section.parts) if analyser != PLAIN else None


def meta_document(head: str | None, max_pid: int, max_run: int) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("key", META)
    doc.add_text("kind", META)
    payload = {"head": head, "layout": LAYOUT, "max_pid": max_pid, "max_run": max_run}
    doc.add_bytes("text", json.dumps(payload).encode("utf-8"))
    return doc


class Indexer:
    """Appends versions to a tantivy index, policy by policy.

    ``catalog`` and ``searcher`` describe the index before the first document (None when
    building from nothing).
    """

    def __init__(
        self,
        sink: Sink,
        schema: tantivy.Schema,
        catalog: Catalog | None,
        searcher: tantivy.Searcher | None,
        language_of: LanguageOf | None,
    ) -> None:
        self.sink = sink
        self.schema = schema
        self.catalog = catalog
        self.searcher = searcher
        self.language_of = language_of
        self.states: dict[tuple[str, str], PolicyState] = {}
        self.next_run = (catalog.max_run if catalog else 0) + 1
        self.next_pid = (catalog.max_pid if catalog else 0) + 1
        self.splitter = SectionSplitter()
        self.parts = PartTerms()

    # ------------------------------------------------------------------ policy state

    def state(self, service: str, type_: str) -> PolicyState:
        key = (service, type_)
        state = self.states.get(key)
        if state is not None:
            return state
        pid = self.catalog.pid_of(service, type_) if self.catalog else None
        if pid is None or self.catalog is None:
            state = PolicyState(PolicyEntry(self.next_pid, service, type_), None)
            self.next_pid += 1
        else:
            entry = PolicyEntry.from_json(self.catalog.entries[pid].to_json())  # a copy
            lang = entry.langs[-1] if entry.langs else None
            state = PolicyState(
                entry,
                field_language(lang) if entry.vids else None,
                {row[4]: OpenRun(row) for row in entry.runs if not row[2]},
                set(entry.vids),
                in_index=True,
            )
        self.states[key] = state
        return state

    def holds(self, version: Version) -> bool:
        state = self.states.get(version.key)
        if state is not None:
            return version.id in state.vids
        return self.catalog is not None and self.catalog.holds(*version.key, version.id)

    def _language(self, version: Version, state: PolicyState, text: str) -> str | None:
        if self.language_of is not None:
            known = self.language_of(version.service, version.type)
            if known:
                return known
        if state.entry.vids:
            return state.entry.langs[-1]
        return detect_language(text)

    # ------------------------------------------------------------------ appending

    def add(self, version: Version, text: str | None) -> bool:
        """Index ``version`` (``text`` None: the file was deleted); False when the policy
        holds that version already."""
        if self.holds(version):
            return False
        state = self.state(version.service, version.type)
        lang = self._language(version, state, text or "")
        sections = self.splitter.split(text) if text else []
        by_key = {s.key: s for s in sections}

        def new_run(row: RunRow) -> OpenRun:
            section = by_key[row[4]]
            return OpenRun(row, section.text, *section_terms(self.parts, row[5], section))

        self._append(version, state, lang, [(s.key, s.words) for s in sections], new_run)
        return True

    def add_prepared(self, version: Version, prepared: Prepared) -> None:
        """Index a version a worker read and analysed (:mod:`store.index.tantivy.prepare`)."""
        state = self.state(version.service, version.type)

        def new_run(row: RunRow) -> OpenRun:
            new = prepared.new[row[4]]
            return OpenRun(row, new.text, new.terms, new.words)

        self._append(version, state, prepared.lang, prepared.sections, new_run)

    def _append(
        self,
        version: Version,
        state: PolicyState,
        lang: str | None,
        sections: list[tuple[str, int]],
        new_run: Callable[[RunRow], OpenRun],
    ) -> None:
        """Append a version of ``sections`` (key, words) to its policy: sections of the
        previous version continue their runs, new ones open runs (``new_run`` gives their
        text and terms), gone ones end theirs."""
        entry = state.entry
        seq = len(entry.vids)
        analyser = field_language(lang)
        if state.analyser is not None and analyser != state.analyser:
            for run in state.open.values():
                run.row[2] = seq
            state.open = {}
        current: dict[str, OpenRun] = {}
        for key, words in sections:
            found = state.open.get(key)
            if found is not None:
                run = found
            else:
                row: RunRow = [self.next_run, seq, 0, words, key, analyser]
                self.next_run += 1
                entry.runs.append(row)
                run = new_run(row)
                self._write_section(entry.pid, run)
            current[key] = run
        for key, run in state.open.items():
            if key not in current:
                run.row[2] = seq
        offset = version.date.utcoffset()
        entry.vids.append(version.id)
        entry.dates.append(int(version.date.timestamp()))
        entry.tzs.append(int(offset.total_seconds() // 60) if offset else 0)
        entry.ntoks.append(sum(r.row[3] for r in current.values()))
        entry.langs.append(lang)
        state.open = current
        state.vids.add(version.id)
        state.analyser = analyser
        state.changed = True

    def _write_section(self, pid: int, run: OpenRun) -> None:
        doc = tantivy.Document()
        doc.add_text("kind", SEC)
        doc.add_unsigned("pid", pid)
        doc.add_unsigned("run", run.row[0])
        lang = run.row[5]
        doc.add_text(text_field(SEC_TIER, lang), run.terms or "")
        if run.words is not None:
            doc.add_text(word_field(SEC_TIER, lang), run.words)
        doc.add_bytes("text", (run.text or "").encode("utf-8"))
        self.sink.add(doc)
        run.text = None  # the document has it

    def flush(self, states: list[PolicyState] | None = None) -> None:
        """Write the ``cur`` and ``pol`` documents of every changed policy."""
        todo = [s for s in (self.states.values() if states is None else states) if s.changed]
        self._fill_terms(todo)
        for state in todo:
            entry = state.entry
            pid = entry.pid
            # always: a batch whose ``current/`` commit landed without its catalog left one
            self.sink.delete_current(f"c{pid}")
            if state.in_index:
                self.sink.delete(f"p{pid}")
            cur = tantivy.Document()
            cur.add_text("key", f"c{pid}")
            cur.add_text("kind", CUR)
            cur.add_unsigned("pid", pid)
            cur.add_text("service", entry.service.casefold())
            cur.add_text("type", entry.type.casefold())
            lang = (entry.langs[-1] or "").casefold() if entry.langs else ""
            for value in {lang, lang.split("-")[0]} - {""}:
                cur.add_text("lang", value)
            lang = state.analyser or PLAIN
            for run in state.open.values():
                cur.add_text(text_field(CUR_TIER, lang), run.terms or "")
                if run.words is not None:
                    cur.add_text(word_field(CUR_TIER, lang), run.words)
            self.sink.add_current(cur)
            pol = tantivy.Document()
            pol.add_text("key", f"p{pid}")
            pol.add_text("kind", POL)
            pol.add_unsigned("pid", pid)
            pol.add_bytes("text", entry.to_json())
            self.sink.add(pol)
            state.changed = False
            state.in_index = True

    def _fill_terms(self, states: list[PolicyState]) -> None:
        """Analyse the open runs of policies loaded from the index (their text is stored)."""
        missing = {r.row[0]: r for s in states for r in s.open.values() if r.terms is None}
        if not missing:
            return
        assert self.searcher is not None
        query = tantivy.Query.term_set_query(self.schema, "run", list(missing))
        hits = self.searcher.search(query, len(missing) * 2, count=False).hits
        addresses = [a for _, a in hits]
        for run_id, address in zip(
            self.searcher.fast_field_values("run", addresses), addresses, strict=True
        ):
            run = missing.get(run_id)
            if run is not None:
                fill(run, stored_bytes(self.searcher, address).decode("utf-8"))
        for run in missing.values():
            if run.terms is None:
                log.warning("section run %d is missing from the search index", run.row[0])
                run.terms = ""

    def forget(self, state: PolicyState) -> None:
        """Drop a flushed policy's state (a rebuild goes policy by policy)."""
        self.states.pop((state.entry.service, state.entry.type), None)

    def meta(self, head: str | None) -> tantivy.Document:
        return meta_document(head, self.next_pid - 1, self.next_run - 1)
