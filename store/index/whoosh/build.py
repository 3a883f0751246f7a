"""Rebuild the whole index from git, in one process or several.

Policies are shared out between worker processes, balanced by number of versions. Each
worker reads its policies' versions from git itself, indexes them policy by policy (so the
sections of a policy sit together in a segment), and writes segments that no index lists
yet. When all are done, the parent, which has held the index's write lock throughout,
commits one new table of contents made of exactly those segments: readers see the old index
until that moment, then the new one. This is how whoosh's own multi-process writer
(``whoosh.multiproc.MpWriter``) works; we partition by policy instead of by document.
Workers are started with ``spawn``, which is safe from a process that runs threads, and die
with the process that started them (Linux's parent-death signal, else a watch on the parent),
so a killed rebuild leaves no worker behind.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import index
from whoosh.writing import SegmentWriter

from store.errors import StoreError
from store.git.versions import Version, VersionStore
from store.index.base import LanguageOf, Progress
from store.index.processes import die_with_parent
from store.index.source import read_text
from store.index.whoosh.schema import META, SCHEMA_VERSION
from store.index.whoosh.writer import DocumentSink, VersionIndexer

LIMIT_MB = 512
WORDS_PER_SEGMENT = 4_000_000  # keeps a worker's posting pool in memory (no spill to disk)
REPORT_EVERY = 50


@dataclass(frozen=True)
class BuildJob:
    """One worker's share: its policies, with their versions in commit order."""

    index_dir: str
    archive_dir: str
    policies: list[tuple[tuple[str, str], list[Version]]]
    pids: dict[tuple[str, str], int]
    languages: dict[tuple[str, str], str | None]
    worker: int
    workers: int


def build_part(job: BuildJob, report: Callable[[int], None]) -> list[Any]:
    """Index a share of the policies into new, unlisted segments; return the segments."""
    if not job.policies:
        # nothing to write; a writer cancelled here would delete the index's shared temporary
        # folder, under the parent's own writer
        return []
    ix = index.open_dir(job.index_dir)
    versions = VersionStore(Path(job.archive_dir))
    segments: list[Any] = []
    writer = SegmentWriter(ix, _lk=False, limitmb=LIMIT_MB)
    try:
        languages = job.languages
        indexer = VersionIndexer(
            DocumentSink(writer),
            None,
            None,
            lambda service, type_: languages.get((service, type_)),
            first_run=job.worker + 1,
            run_step=job.workers,
        )
        indexer.pids = job.pids
        done = 0
        for key, policy_versions in job.policies:
            for version in policy_versions:
                indexer.add(version, read_text(versions, version))
                done += 1
                if done % REPORT_EVERY == 0:
                    report(REPORT_EVERY)
            indexer.flush([indexer.states.pop(key)])
            if indexer.sink.words > WORDS_PER_SEGMENT:
                segments.append(writer._finalize_segment())
                writer = SegmentWriter(ix, _lk=False, limitmb=LIMIT_MB)
                indexer.sink = DocumentSink(writer)
        report(done % REPORT_EVERY)
        if indexer.sink.added:
            segments.append(writer._finalize_segment())
        else:
            writer.cancel()
    except BaseException:
        if not writer.is_closed:
            writer.cancel()
        raise
    finally:
        versions.git.close()
        ix.close()
    return segments


def _worker(job: BuildJob, messages: Any, parent: int) -> None:
    die_with_parent(parent)
    try:
        segments = build_part(job, lambda n: messages.put(("progress", job.worker, n)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        messages.put(("error", job.worker, traceback.format_exc()))
        return
    messages.put(("done", job.worker, segments))


def plan(
    todo: list[Version],
    workers: int,
    language_of: LanguageOf | None,
    index_dir: Path,
    archive_dir: Path,
) -> list[BuildJob]:
    groups: dict[tuple[str, str], list[Version]] = {}
    for version in todo:
        groups.setdefault(version.key, []).append(version)
    pids = {key: i for i, key in enumerate(groups, 1)}
    languages = {key: (language_of(*key) if language_of else None) for key in groups}
    shares: list[list[tuple[tuple[str, str], list[Version]]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for key, versions in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lightest = loads.index(min(loads))
        shares[lightest].append((key, versions))
        loads[lightest] += len(versions)
    return [
        BuildJob(
            str(index_dir),
            str(archive_dir),
            sorted(share, key=lambda kv: pids[kv[0]]),
            pids,
            languages,
            worker,
            workers,
        )
        for worker, share in enumerate(shares)
    ]


def rebuild(
    ix: index.Index,
    writer: Any,
    versions: VersionStore,
    progress: Progress | None,
    processes: int,
    language_of: LanguageOf | None,
) -> int:
    """Replace the whole index with the versions in git (``writer`` holds the lock)."""
    head = versions.head()
    todo = list({(v.key, v.id): v for v in versions.log()}.values())  # each version once
    workers = max(1, min(processes, len(todo) // 200 or 1))
    jobs = plan(todo, workers, language_of, Path(ix.storage.folder), versions.path)
    total, done = len(todo), 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    segments = build_part(jobs[0], report) if workers == 1 else _run_workers(jobs, report)
    writer.add_document(key="meta", kind=META, head=head, schema_version=SCHEMA_VERSION)
    writer.commit(mergetype=lambda _writer, _old: list(segments))
    return total


def _run_workers(jobs: list[BuildJob], report: Callable[[int], None]) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    parent = os.getpid()
    procs = [
        context.Process(target=_worker, args=(job, messages, parent), daemon=True) for job in jobs
    ]
    for proc in procs:
        proc.start()
    results: dict[int, list[Any]] = {}
    try:
        while len(results) < len(jobs):
            try:
                kind, worker, payload = messages.get(timeout=1.0)
            except queue.Empty:
                dead = [
                    p for i, p in enumerate(procs) if i not in results and p.exitcode is not None
                ]
                if dead:
                    raise StoreError(
                        f"an indexing process exited with code {dead[0].exitcode} before finishing"
                    ) from None
                continue
            if kind == "progress":
                report(payload)
            elif kind == "error":
                raise StoreError(f"indexing process {worker} failed:\n{payload}")
            else:
                results[worker] = payload
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        messages.close()
        messages.join_thread()
    return [segment for worker in sorted(results) for segment in results[worker]]
