"""Turn versions into index documents, with the sections each version shares with the last.

For each new version of a policy, in commit order: cut the text into sections; a section
that stood in the previous version continues its run (nothing written); a new one starts a
run; one that is gone ends its run, and its document moves from the ``cur_`` to the ``old_``
fields with the run's last version. So indexing grows with the amount of change, not with
versions × size, and each section is analysed about once: a run's document is only written
when the batch is flushed (ended runs longest first). Besides, each policy has one "words"
document with its whole current text (word counts only), rewritten once per batch in which
it changed. Every text goes into its language's stemmed field and its word-for-word twin
(:func:`~store.index.whoosh.schema.word_field`).

Indexing is idempotent per version: a version the policy already holds (in the index, or
earlier in this run) is skipped, so a caller that hands the same version over twice (a
lagging indexed head, a list of versions with a repeat) never indexes it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from whoosh.searching import Searcher

from store.git.versions import Version
from store.index.analysis import PLAIN, detect_language, field_language
from store.index.base import LanguageOf
from store.index.sections import split_sections
from store.index.whoosh.catalog import Catalog
from store.index.whoosh.schema import (
    BAG,
    CURRENT,
    PAST,
    POLICY,
    SECTION,
    VERSION,
    WORDS,
    encode_lang,
    encode_vid,
    is_text_field,
    text_field,
    word_field,
)


@dataclass
class Run:
    """A section standing in consecutive versions of a policy since ``first``."""

    run: int
    first: int
    key: str
    text: str
    words: int
    lang: str
    written: bool = False  # an open document for it is already in the index


@dataclass
class PolicyState:
    """What the writer needs to know about a policy to append its next version."""

    pid: int
    count: int
    lang: str | None
    analyser: str | None
    vids: set[str] = field(default_factory=set)  # every version indexed, by commit id
    open: dict[str, Run] = field(default_factory=dict)
    text: str | None = None  # of the latest version, until its words document is written
    words_in_index: bool = False
    ended: list[tuple[Run, int]] = field(default_factory=list)  # (run, end) to write


def fields_per_text(analyser: str) -> int:
    """How many fields a text of this analyser is indexed in: stemmed and word for word, or
    (no stemmer) one. What a posting pool holds grows with it (``DocumentSink.words``)."""
    return 1 if analyser == PLAIN else 2


class DocumentSink:
    """Where documents go: a whoosh writer."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.added = 0
        self.words = 0  # words indexed (once per field), to cut segments before pools spill

    def add(self, **doc: Any) -> None:
        self.writer.add_document(**doc)
        self.added += 1

    def delete(self, key: str) -> None:
        self.writer.delete_by_term("key", key)


class VersionIndexer:
    """Appends versions to the index, policy by policy, keeping each policy's open runs.

    ``catalog`` and ``searcher`` describe the index before this indexer's first document
    (None when building from nothing); ``run_step`` lets parallel builders share run ids.
    """

    def __init__(
        self,
        sink: DocumentSink,
        catalog: Catalog | None,
        searcher: Searcher | None,
        language_of: LanguageOf | None,
        *,
        first_run: int | None = None,
        run_step: int = 1,
    ) -> None:
        self.sink = sink
        self.catalog = catalog
        self.searcher = searcher
        self.language_of = language_of
        self.states: dict[tuple[str, str], PolicyState] = {}
        self.next_run = (
            first_run if first_run is not None else ((catalog.max_run if catalog else 0) + 1)
        )
        self.run_step = run_step
        self.next_pid = (catalog.max_pid if catalog else 0) + 1
        self.pids: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ policy state

    def state(self, service: str, type_: str) -> PolicyState:
        key = (service, type_)
        state = self.states.get(key)
        if state is not None:
            return state
        pid = self.catalog.pid_of(service, type_) if self.catalog else None
        if pid is None:
            pid = self.pids.get(key)
            if pid is None:
                pid = self.next_pid
                self.next_pid += 1
            state = PolicyState(pid, 0, None, None)
            self.sink.add(
                key=f"p{pid}", policy=str(pid), kind=POLICY, pid=pid, service=service, type=type_
            )
        else:
            state = self._load(pid)
        self.states[key] = state
        return state

    def _load(self, pid: int) -> PolicyState:
        """A policy already in the index: its version count, language and open runs."""
        assert self.catalog is not None and self.searcher is not None
        info = self.catalog.policies[pid]
        lang = info.lang
        state = PolicyState(
            pid,
            info.count,
            lang,
            field_language(lang) if info.count else None,
            set(info.vids),
            words_in_index=bool(info.count),
        )
        leaves = self.searcher.leaf_searchers()
        for view, (sub, _offset) in zip(self.catalog.segments, leaves, strict=True):
            for docnum in view.docs_by_pid.get(pid, ()):
                if view.end[docnum] or info.count == 0:
                    continue
                stored = sub.reader().stored_fields(docnum)
                name, text = next((k, v) for k, v in stored.items() if is_text_field(k))
                state.open[stored["hash"]] = Run(
                    run=view.run[docnum],
                    first=view.first[docnum],
                    key=stored["hash"],
                    text=text,
                    words=view.ntok[docnum],
                    lang=name[4:],
                    written=True,
                )
        return state

    def _language(self, service: str, type_: str, state: PolicyState, text: str) -> str | None:
        if self.language_of is not None:
            known = self.language_of(service, type_)
            if known:
                return known
        if state.count:
            return state.lang
        return detect_language(text)

    # ------------------------------------------------------------------ appending

    def holds(self, version: Version) -> bool:
        """Whether ``version`` is indexed already (in the index, or by this indexer)."""
        key = (version.service, version.type)
        state = self.states.get(key)
        if state is not None:
            return version.id in state.vids
        return self.catalog is not None and self.catalog.holds(*key, version.id)

    def add(self, version: Version, text: str | None) -> bool:
        """Index ``version`` of its policy (``text`` None: the file was deleted); False (and
        nothing written) when the policy holds that version already."""
        if self.holds(version):
            return False
        state = self.state(version.service, version.type)
        seq = state.count
        lang = self._language(version.service, version.type, state, text or "")
        analyser = field_language(lang)
        if state.analyser is not None and analyser != state.analyser:
            self._end_runs(state, list(state.open.values()), seq)
            state.open = {}
        current: dict[str, Run] = {}
        for section in split_sections(text) if text else []:
            run = state.open.get(section.key)
            if run is None:
                run = Run(self.next_run, seq, section.key, section.text, section.words, analyser)
                self.next_run += self.run_step
                self.sink.words += section.words * fields_per_text(analyser)
            current[section.key] = run
        self._end_runs(state, [r for k, r in state.open.items() if k not in current], seq)
        offset = version.date.utcoffset()
        self.sink.add(
            policy=str(state.pid),
            kind=VERSION,
            pid=state.pid,
            seq=seq,
            vid=encode_vid(version.id),
            date=int(version.date.timestamp()),
            tz=int(offset.total_seconds() // 60) if offset else 0,
            ntok=sum(r.words for r in current.values()),
            lang=encode_lang(lang),
        )
        state.open = current
        state.text = text or ""
        state.count = seq + 1
        state.vids.add(version.id)
        state.lang = lang
        state.analyser = analyser
        return True

    def _end_runs(self, state: PolicyState, runs: list[Run], seq: int) -> None:
        """Runs that stood until version ``seq - 1``: their documents move to ``old_`` (at
        the next flush)."""
        for run in runs:
            if run.written:
                self.sink.delete(f"r{run.run}")
            state.ended.append((run, seq))

    def _write(self, pid: int, run: Run, tier: str, end: int) -> None:
        texts = {text_field(run.lang, tier): run.text, word_field(run.lang, tier): run.text}
        self.sink.add(
            key=f"r{run.run}",
            policy=str(pid),
            kind=SECTION,
            pid=pid,
            seq=run.first,
            end=end,
            run=run.run,
            ntok=run.words,
            hash=run.key,
            **texts,
        )

    def flush(self, states: list[PolicyState] | None = None) -> None:
        """Write what stands in the latest versions: open runs not yet in the index, and the
        words document of each changed policy (at the end of a batch or of a policy)."""
        for state in self.states.values() if states is None else states:
            # Longest runs first: a search that has matched every version of a policy skips
            # the rest of its sections, and long runs cover the versions soonest.
            state.ended.sort(key=lambda e: e[0].first - e[1])
            for run, end in state.ended:
                self._write(state.pid, run, PAST, end=end)
            state.ended.clear()
            for run in state.open.values():
                if not run.written:
                    self._write(state.pid, run, CURRENT, end=0)
                    run.written = True
            if state.text is not None:
                lang = state.analyser or PLAIN
                texts = {text_field(lang, WORDS): state.text, word_field(lang, WORDS): state.text}
                if state.words_in_index:
                    self.sink.delete(f"b{state.pid}")
                self.sink.add(
                    key=f"b{state.pid}",
                    policy=str(state.pid),
                    kind=BAG,
                    pid=state.pid,
                    seq=state.count - 1,
                    **texts,
                )
                self.sink.words += len(state.text) // 6 * fields_per_text(lang)
                state.text = None
                state.words_in_index = True
