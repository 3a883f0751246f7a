"""Search engines side by side: whoosh, the tantivy engine, and raw tantivy, on one archive.

    .venv/bin/python bench/bench_engines.py [--versions 20000] [--rounds 3] [--reuse]
                                            [--skip-whoosh] [--skip-raw]

Builds (or, with --reuse, reuses) the synthetic archive of bench/bench_search.py (policy
histories from the OTA corpus, varied and extended to N versions) in bench/out/engines-<N>/,
then for each engine: reindex time and versions/s, and p50/p95 of the standard 25 queries on
current versions (one term, three terms, phrase, filtered) and of the 10 ``--history``
queries, each the top 10 with highlighted snippets. "raw tantivy" is a plain tantivy index of
the same texts built here with tantivy's own ``default`` analyser: one document per version
(full text, stored), a flag for current versions, the query's words as a conjunction
(phrases as phrase queries), the top 10 documents with tantivy's own snippets. The last lines
give the tantivy engine's p95 over raw tantivy's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tantivy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_search import QUERIES, load_histories, percentile, synthetic_versions  # noqa: E402

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.search import language_resolver, search  # noqa: E402

OUT = HERE / "out"
CURRENT_KINDS = ("one term", "three terms", "phrase", "filtered")
WORD = re.compile(r"\w+")


def open_archive(data: Path, engine: str, create: bool = False) -> Archive:
    config = config_from_mapping(
        {"data_dir": str(data), "search": {"engine": engine}}, path=data.parent / "c.toml"
    )
    return Archive(config, writer=True, create=create)


def build_archive(folder: Path, versions: int) -> None:
    """The synthetic git archive (as bench_search.py builds it), with policy languages."""
    import re as _re

    histories = load_histories()
    with open_archive(folder / "data-whoosh", "whoosh", create=True) as archive:
        began = time.perf_counter()
        count = archive.versions.bulk_import(synthetic_versions(histories, versions))
        print(f"git import: {count:,} versions in {time.perf_counter() - began:.0f} s")
        langs = {(h["service"], h["document_type"]): h["language"] for h in histories}
        with archive.state.connect() as db:
            for service, type_ in archive.versions.policies():
                base = _re.sub(r" \d{3}$", "", service)
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    (f"lang:{service}/{type_}", langs.get((base, type_))),
                )


def data_for(folder: Path, engine: str) -> Path:
    """The engine's data dir: the same git archive and state (links), its own index."""
    source = folder / "data-whoosh"
    data = folder / f"data-{engine}"
    if engine != "whoosh":
        data.mkdir(exist_ok=True)
        for entry in source.iterdir():
            if entry.name.startswith("index"):
                continue
            link = data / entry.name
            if not link.exists():
                link.symlink_to(entry)
    return data


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = func()
    return time.perf_counter() - began, result


def measure(run: Callable[[str, dict[str, Any]], Any], rounds: int) -> dict[str, list[float]]:
    """Milliseconds per query, by kind ("current": the four current kinds together)."""
    out: dict[str, list[float]] = {"current": [], "history": []}
    for round_ in range(rounds + 1):
        for kind, queries in QUERIES.items():
            for params in queries:
                args = dict(params)
                q = args.pop("q")
                seconds, _ = timed(lambda q=q, args=args: run(q, args))
                if round_:  # the first round warms the file cache
                    out["history" if kind == "history" else "current"].append(seconds * 1000)
    return {k: sorted(v) for k, v in out.items()}


def report(label: str, rate: float | None, times: dict[str, list[float]]) -> dict[str, float]:
    cur, hist = times["current"], times["history"]
    figures = {
        "cur50": percentile(cur, 50),
        "cur95": percentile(cur, 95),
        "hist50": percentile(hist, 50),
        "hist95": percentile(hist, 95),
    }
    shown = f"{rate:7,.0f} versions/s" if rate else " " * 18
    print(
        f"  {label:<16} reindex {shown}   current p50 {figures['cur50']:6.1f} ms "
        f"p95 {figures['cur95']:6.1f} ms   history p50 {figures['hist50']:6.1f} ms "
        f"p95 {figures['hist95']:6.1f} ms",
        flush=True,
    )
    return figures


# --------------------------------------------------------------------------- the engines


def bench_engine(folder: Path, engine: str, rounds: int, processes: int) -> dict[str, float]:
    data = data_for(folder, engine)
    with open_archive(data, engine) as archive:
        count = len(archive.versions.log())
        seconds, _ = timed(
            lambda: archive.index.rebuild(
                archive.versions, processes=processes, language_of=language_resolver(archive)
            )
        )
        times = measure(lambda q, args: search(archive, q, **args), rounds)
        return report(f"{engine} engine", count / seconds, times)


class RawTantivy:
    """A plain tantivy index of the same texts: one document per version, tantivy's analyser."""

    def __init__(self, path: Path) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", stored=True, tokenizer_name="default")
        for name in ("service", "type", "lang"):
            builder.add_text_field(name, stored=True, tokenizer_name="raw")
        builder.add_unsigned_field("current", indexed=True)
        builder.add_integer_field("date", indexed=True, fast=True)
        self.schema = builder.build()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.index = tantivy.Index(self.schema, path=str(path))

    def build(self, archive: Archive) -> int:
        language = language_resolver(archive)
        writer = self.index.writer(512_000_000, 2)
        versions = archive.versions
        count = 0
        for service, type_ in versions.policies():
            history = versions.history(service, type_)
            lang = (language(service, type_) or "").lower()
            for i, version in enumerate(history):
                doc = tantivy.Document()
                doc.add_text("body", versions.read_text_at(version))
                doc.add_text("service", service)
                doc.add_text("type", type_)
                doc.add_text("lang", lang)
                doc.add_unsigned("current", 1 if i == len(history) - 1 else 0)
                doc.add_integer("date", int(version.date.timestamp()))
                writer.add_document(doc)
                count += 1
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        return count

    def query(self, q: str, args: dict[str, Any]) -> tantivy.Query:
        must = tantivy.Occur.Must
        clauses: list[tuple[Any, tantivy.Query]] = []
        for phrase in re.findall(r'"([^"]+)"', q):
            words = [w.lower() for w in WORD.findall(phrase)]
            clauses.append((must, tantivy.Query.phrase_query(self.schema, "body", words)))
        rest = re.sub(r'"[^"]+"', " ", q)
        for token in rest.split():
            name, _, value = token.partition(":")
            if value and name in ("type", "lang"):
                args = {**args, name: value.strip('"')}
                continue
            for word in WORD.findall(token.lower()):
                clauses.append((must, tantivy.Query.term_query(self.schema, "body", word)))
        for name in ("type", "lang"):
            if args.get(name):
                clauses.append((must, tantivy.Query.term_query(self.schema, name, args[name])))
        if not args.get("history") and not args.get("date_from"):
            clauses.append((must, tantivy.Query.term_query(self.schema, "current", 1)))
        return tantivy.Query.boolean_query(clauses)

    def search(self, q: str, args: dict[str, Any]) -> list[str]:
        searcher = self.index.searcher()
        query = self.query(q, args)
        hits = searcher.search(query, 10).hits
        snippets = tantivy.SnippetGenerator.create(searcher, query, self.schema, "body")
        return [snippets.snippet_from_doc(searcher.doc(a)).to_html() for _, a in hits]


def bench_raw(folder: Path, rounds: int) -> dict[str, float]:
    raw = RawTantivy(folder / "raw-tantivy")
    with open_archive(folder / "data-whoosh", "whoosh") as archive:
        seconds, count = timed(lambda: raw.build(archive))
    times = measure(raw.search, rounds)
    return report("raw tantivy", count / seconds, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="processes for reindex")
    parser.add_argument("--reuse", action="store_true", help="reuse the git archive built")
    parser.add_argument("--skip-whoosh", action="store_true")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build the archive, no bench")
    args = parser.parse_args()
    folder = OUT / f"engines-{args.versions}"
    if not (args.reuse and (folder / "data-whoosh").is_dir()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build_archive(folder, args.versions)
    if args.build_only:
        return
    print(f"Synthetic archive, {args.versions:,} versions; {os.cpu_count()} CPUs")
    figures = {}
    if not args.skip_whoosh:
        figures["whoosh"] = bench_engine(folder, "whoosh", args.rounds, args.processes)
    figures["tantivy"] = bench_engine(folder, "tantivy", args.rounds, args.processes)
    if not args.skip_raw:
        figures["raw"] = bench_raw(folder, args.rounds)
        mine, raw = figures["tantivy"], figures["raw"]
        print(
            f"  tantivy engine / raw tantivy: current p95 {mine['cur95'] / raw['cur95']:.1f}x, "
            f"history p95 {mine['hist95'] / raw['hist95']:.1f}x (target <= 2x)"
        )


if __name__ == "__main__":
    main()
