"""What a tantivy index holds, as plain Python: policies, versions, section runs, head.

Read from the index's ``pol`` and ``meta`` documents, once per index generation (a searcher),
and shared by the threads of the process. The run tables are arrays indexed by run id, so a
matching section document (found by its ``run`` fast field) gives its policy and versions in
O(1).
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import tantivy

from store.index.analysis import ANALYSED, PLAIN, field_language
from store.index.policies import Policies, PolicyInfo
from store.index.tantivy.schema import META, POL

RunRow = list[Any]  # [run, first, end (0: open), words, section key, analyser]


@dataclass
class PolicyEntry:
    """A policy's stored catalog entry (what its ``pol`` document holds)."""

    pid: int
    service: str
    type: str
    vids: list[str] = field(default_factory=list)
    dates: list[int] = field(default_factory=list)
    tzs: list[int] = field(default_factory=list)
    ntoks: list[int] = field(default_factory=list)
    langs: list[str | None] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "pid": self.pid,
                "service": self.service,
                "type": self.type,
                "vids": self.vids,
                "dates": self.dates,
                "tzs": self.tzs,
                "ntoks": self.ntoks,
                "langs": self.langs,
                "runs": self.runs,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> PolicyEntry:
        data = json.loads(raw)
        return cls(**data)

    def info(self) -> PolicyInfo:
        return PolicyInfo(
            self.pid,
            self.service,
            self.type,
            list(self.vids),
            array("q", self.dates),
            array("h", self.tzs),
            array("i", self.ntoks),
            list(self.langs),
        )


def stored_bytes(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> bytes:
    value = searcher.doc(address).get_first("text")
    return bytes(value) if value is not None else b""


def kind_query(schema: tantivy.Schema, kind: str) -> tantivy.Query:
    return tantivy.Query.term_query(schema, "kind", kind)


class Catalog(Policies):
    """Policies, versions and runs of one generation of the index (read-only once built)."""

    def __init__(self, entries: list[PolicyEntry], meta: dict[str, Any]) -> None:
        self.entries = {e.pid: e for e in entries}
        super().__init__({e.pid: e.info() for e in entries})
        self.head: str | None = meta.get("head")
        self.layout: str | None = meta.get("layout")
        self.max_pid = max([meta.get("max_pid", 0), *self.policies], default=0)
        runs = [(r, e.pid) for e in entries for r in e.runs]
        self.max_run = max([meta.get("max_run", 0), *(r[0] for r, _ in runs)], default=0)
        size = self.max_run + 1
        self.run_pid = array("i", [-1]) * size
        self.run_first = array("i", [0]) * size
        self.run_last = array("i", [0]) * size
        self._run_lang = bytearray(size)
        codes = {lang: i for i, lang in enumerate(ANALYSED)}
        for (run, first, end, _words, _key, lang), pid in runs:
            self.run_pid[run] = pid
            self.run_first[run] = first
            self.run_last[run] = end - 1 if end else self.policies[pid].count - 1
            self._run_lang[run] = codes.get(lang, codes[PLAIN])
        self.analysers = {ANALYSED[self._run_lang[r[0]]] for r, _ in runs}
        self.sections = len(runs)
        self.current_analysers = {field_language(p.lang) for p in self.policies.values() if p.count}
        lengths = [n for p in self.policies.values() for n in p.ntoks]
        self.avg_length = (sum(lengths) / len(lengths)) if lengths else 1.0

    @classmethod
    def read(cls, searcher: tantivy.Searcher, schema: tantivy.Schema) -> Catalog:
        meta: dict[str, Any] = {}
        found = searcher.search(kind_query(schema, META), 1, count=False).hits
        if found:
            meta = json.loads(stored_bytes(searcher, found[0][1]))
        limit = max(searcher.num_docs, 1)
        hits = searcher.search(kind_query(schema, POL), limit, count=False).hits
        entries = [PolicyEntry.from_json(stored_bytes(searcher, a)) for _, a in hits]
        entries.sort(key=lambda e: e.pid)
        return cls(entries, meta)

    @cached_property
    def run_bits(self) -> list[int]:
        """Per run id, the versions it stands for as a bit set (0 for no run)."""
        return [
            ((1 << (last + 1)) - (1 << first)) if pid >= 0 else 0
            for pid, first, last in zip(self.run_pid, self.run_first, self.run_last, strict=True)
        ]

    def run_lang(self, run: int) -> str:
        """The analyser of a run's text."""
        return ANALYSED[self._run_lang[run]]

    def stands_in(self, run: int, seq: int) -> bool:
        return self.run_first[run] <= seq <= self.run_last[run]
