"""What the index holds, as plain arrays: policies, their versions, and each section's run.

Built from the columns of the index's segments. Segments never change once written (apart
from deletions), so each is read once into a :class:`SegmentView` (cached by segment id and
deletion count); a :class:`Catalog` for a new index generation reads only the new segments
and rebuilds the table of policies and versions.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass

from whoosh.reading import IndexReader

from store.index.policies import Policies, PolicyInfo
from store.index.whoosh.schema import (
    BAG,
    LANG_BYTES,
    POLICY,
    SECTION,
    VERSION,
    VID_BYTES,
    bytes_column,
    decode_lang,
    number_column,
)

VersionRow = tuple[int, int, bytes, int, int, int, bytes]  # pid seq vid date tz words lang


@dataclass
class SegmentView:
    """One segment's documents, by local docnum (live documents only).

    For sections and words documents: ``pid`` (-1 for other documents), ``first`` version,
    ``end`` (last version + 1, or 0 while a section's run is open: then its last version is
    the policy's latest, see :meth:`Catalog.last`), ``run`` id and ``ntok`` words.
    """

    pid: array
    first: array
    end: array
    run: array
    ntok: array
    docs_by_pid: dict[int, array]  # sections, ascending
    after_pid: dict[int, int]  # for a policy whose sections are contiguous: the docnum after
    bag_of: dict[int, int]  # the policy's words document
    versions: list[VersionRow]
    policies: list[tuple[int, str, str]]  # pid service type
    sections: int
    live_share: tuple[float, float]  # live share of sections, of words documents
    max_run: int

    @classmethod
    def read(cls, reader: IndexReader) -> SegmentView:
        count = reader.doc_count_all()
        kind = number_column(reader, "kind", "B")
        deleted = reader.deleted_docs_set if reader.has_deletions() else frozenset()
        pid_col = number_column(reader, "pid", "i")
        seq = number_column(reader, "seq", "i")
        end_col = number_column(reader, "end", "i")
        run_col = number_column(reader, "run", "i")
        ntok_col = number_column(reader, "ntok", "i")
        pid = array("i", [-1]) * count
        first = array("i", [0]) * count
        end = array("i", [0]) * count
        by_pid: dict[int, list[int]] = {}
        order: list[int] = []  # pids of the live sections, in docnum order
        bag_of: dict[int, int] = {}
        other: list[int] = []
        written = [0, 0]
        for d, k in enumerate(kind):
            if k == SECTION:
                written[0] += 1
                if d in deleted:
                    continue
                p = pid_col[d]
                pid[d], first[d], end[d] = p, seq[d], end_col[d]
                by_pid.setdefault(p, []).append(d)
                order.append(p)
            elif k == BAG:
                written[1] += 1
                if d in deleted:
                    continue
                p = pid_col[d]
                pid[d], first[d], end[d] = p, seq[d], seq[d] + 1
                bag_of[p] = d
            elif d not in deleted:
                other.append(d)
        versions, policies = cls._others(reader, kind, other, pid_col, seq, ntok_col)
        sections = len(order)
        return cls(
            pid=pid,
            first=first,
            end=end,
            run=run_col,
            ntok=ntok_col,
            docs_by_pid={p: array("i", docs) for p, docs in by_pid.items()},
            after_pid=_contiguous(order, by_pid),
            bag_of=bag_of,
            versions=versions,
            policies=policies,
            sections=sections,
            live_share=(
                sections / written[0] if written[0] else 1.0,
                len(bag_of) / written[1] if written[1] else 1.0,
            ),
            max_run=max((run_col[d] for docs in by_pid.values() for d in docs), default=0),
        )

    @staticmethod
    def _others(
        reader: IndexReader, kind: array, docs: list[int], pid: array, seq: array, ntok: array
    ) -> tuple[list[VersionRow], list[tuple[int, str, str]]]:
        versions: list[VersionRow] = []
        policies: list[tuple[int, str, str]] = []
        if not docs:
            return versions, policies
        dates = number_column(reader, "date", "q")
        tzs = number_column(reader, "tz", "h")
        vids = bytes_column(reader, "vid", VID_BYTES)
        langs = bytes_column(reader, "lang", LANG_BYTES)
        for d in docs:
            if kind[d] == VERSION:
                versions.append(
                    (
                        pid[d],
                        seq[d],
                        vids[d * VID_BYTES : (d + 1) * VID_BYTES],
                        dates[d],
                        tzs[d],
                        ntok[d],
                        langs[d * LANG_BYTES : (d + 1) * LANG_BYTES],
                    )
                )
            elif kind[d] == POLICY:
                stored = reader.stored_fields(d)
                policies.append((pid[d], stored["service"], stored["type"]))
        return versions, policies


def _contiguous(order: list[int], by_pid: dict[int, list[int]]) -> dict[int, int]:
    """For each policy whose live sections follow each other (no other policy's section in
    between): the docnum after its last section. A search can jump there once the policy
    is settled."""
    first_index: dict[int, int] = {}
    for i, p in enumerate(order):
        first_index.setdefault(p, i)
    out = {}
    for p, docs in by_pid.items():
        start = first_index[p]
        if order[start : start + len(docs)] == [p] * len(docs):
            out[p] = docs[-1] + 1
    return out


class Catalog(Policies):
    """Policies, versions and section runs of one generation of the index (read-only)."""

    def __init__(self, segments: list[SegmentView]) -> None:
        self.segments = segments
        policies: dict[int, PolicyInfo] = {}
        for view in segments:
            for pid, service, type_ in view.policies:
                policies[pid] = PolicyInfo(pid, service, type_)
        rows = sorted((v for view in segments for v in view.versions), key=lambda v: v[:2])
        for pid, _seq, vid, date, tz, ntok, lang in rows:
            info = policies.get(pid)
            if info is None:
                continue
            info.vids.append(vid.hex())
            info.dates.append(date)
            info.tzs.append(tz)
            info.ntoks.append(ntok)
            info.langs.append(decode_lang(lang))
        super().__init__(policies)
        # the last version of an open run: the policy's latest
        self.latest = {pid: p.count - 1 for pid, p in self.policies.items()}
        self.sections = sum(view.sections for view in segments)
        self.words_docs = sum(len(view.bag_of) for view in segments)
        self.max_run = max((view.max_run for view in segments), default=0)
        self.max_pid = max(self.policies, default=0)
        lengths = [n for p in self.policies.values() for n in p.ntoks]
        self.avg_length = (sum(lengths) / len(lengths)) if lengths else 1.0
        current = [p.ntoks[-1] for p in self.policies.values() if p.count]
        self.avg_current_length = (sum(current) / len(current)) if current else 1.0

    def last(self, view: SegmentView, docnum: int) -> int:
        """The last version a section (or words document) stands for."""
        end = view.end[docnum]
        return end - 1 if end else self.latest.get(view.pid[docnum], -1)


class CatalogCache:
    """Segment views and the catalogs of the latest ``keep`` index generations, shared by the
    threads of one process (several readers may briefly stand on different generations)."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        self._views: dict[tuple[str, int], SegmentView] = {}
        self._catalogs: OrderedDict[tuple[tuple[str, int], ...], Catalog] = OrderedDict()

    def get(self, leaves: list[IndexReader]) -> Catalog:
        keys = tuple((r.segment().segment_id(), r.segment().deleted_count()) for r in leaves)
        with self._lock:
            catalog = self._catalogs.get(keys)
            if catalog is not None:
                self._catalogs.move_to_end(keys)
                return catalog
            views = []
            for key, reader in zip(keys, leaves, strict=True):
                view = self._views.get(key)
                if view is None:
                    view = SegmentView.read(reader)
                    self._views[key] = view
                views.append(view)
            catalog = Catalog(views)
            self._catalogs[keys] = catalog
            while len(self._catalogs) > self.keep:
                self._catalogs.popitem(last=False)
            kept = {key for generation in self._catalogs for key in generation}
            self._views = {key: view for key, view in self._views.items() if key in kept}
            return catalog
