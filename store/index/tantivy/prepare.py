"""Rebuilding with several processes: workers read and analyse, the parent writes.

What costs a rebuild is Python: reading each version from git, cutting it into sections,
analysing the new ones. Worker processes do that for whole policies (so each knows a policy's
previous version and sends only its new sections' text and terms) and the parent replays
their results into the :class:`~store.index.tantivy.writer.Indexer`, which keeps the run
bookkeeping and hands documents to tantivy's writer threads. Workers are started with
``spawn`` and die with the process that started them
(:func:`store.index.processes.die_with_parent`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from store.git.versions import Version, VersionStore
from store.index.analysis import PLAIN, detect_language, field_language
from store.index.processes import die_with_parent
from store.index.sections import SectionSplitter
from store.index.source import read_texts
from store.index.tantivy.terms import PartTerms


@dataclass(frozen=True)
class NewSection:
    """A section its policy's previous version did not have: its text, analysed."""

    text: str
    terms: str
    words: str | None


@dataclass(frozen=True)
class Prepared:
    """One version as the indexer needs it: its language and sections in order (key and
    words), the new ones with their text and terms."""

    lang: str | None
    sections: list[tuple[str, int]]
    new: dict[str, NewSection]


Job = tuple[list[Version], str | None]  # a policy's versions, its known language


@dataclass
class Worker:
    """What a worker process keeps between jobs: the archive, and the memories of the
    paragraphs it has cut and analysed."""

    store: VersionStore
    splitter: SectionSplitter
    parts: PartTerms


_WORKER: Worker | None = None


def _start(archive_dir: str, parent: int) -> None:
    global _WORKER
    die_with_parent(parent)
    _WORKER = Worker(VersionStore(Path(archive_dir)), SectionSplitter(), PartTerms())


def prepare_policy(job: Job) -> list[Prepared]:
    """Read, cut and analyse one policy's versions (in a worker)."""
    assert _WORKER is not None
    return list(prepared(_WORKER, *job))


def prepared(worker: Worker, versions: list[Version], known: str | None) -> Iterator[Prepared]:
    lang = known
    previous: set[str] = set()
    parts = worker.parts
    for i, text in enumerate(read_texts(worker.store, versions)):
        text = text or ""
        if i == 0 and lang is None:
            lang = detect_language(text)
        analyser = field_language(lang)
        sections = worker.splitter.split(text) if text else []
        new = {
            s.key: NewSection(
                s.text,
                parts.terms(analyser, s.parts),
                parts.terms(PLAIN, s.parts) if analyser != PLAIN else None,
            )
            for s in sections
            if s.key not in previous
        }
        previous = {s.key for s in sections}
        yield Prepared(lang, [(s.key, s.words) for s in sections], new)


def prepare_all(archive_dir: Path, jobs: list[Job], processes: int) -> Iterator[list[Prepared]]:
    """Each job's prepared versions, in the jobs' order, from ``processes`` workers."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(
        processes, initializer=_start, initargs=(str(archive_dir), os.getpid())
    ) as pool:
        yield from pool.imap(prepare_policy, jobs, chunksize=1)
