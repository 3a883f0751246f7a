"""Search benchmark: reindex speed and query latency, on the OTA corpus and a synthetic archive.

    .venv/bin/python bench/bench_search.py [--versions 100000] [--processes 2] [--skip-ota]
                                           [--keep DIR] [--reuse DIR]

Prints, for the OTA corpus (1,510 versions, 49 MB) and for a synthetic archive of N versions:
git import time, reindex time and versions/s (1 process and --processes), index size,
distinct sections, and p50/p95 latency of five query kinds (one term, three terms, a phrase,
a filtered query, a --history query), each returning the top 10 with highlighted snippets.

The synthetic archive is built from the corpus: policy k copies history k mod 301 under a new
service name; a few paragraphs per copy are varied; after the corpus's own versions, each new
version makes 1-3 small edits (a number changed, a word replaced, a sentence added, a
paragraph dropped or added). Versions per policy follow the corpus's own distribution
(``total_versions_in_repo``: median 11, mean 40), so N versions means about N/40 policies.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.search import language_resolver, search  # noqa: E402
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion  # noqa: E402

OTA = REPO.parent / "shared" / "corpus" / "ota" / "policy_histories.jsonl"

QUERIES: dict[str, list[dict[str, Any]]] = {
    "one term": [
        {"q": w}
        for w in (
            "cookies",
            "retention",
            "advertising",
            "children",
            "arbitration",
            "encryption",
            "location",
            "transfer",
            "minors",
            "biometric",
        )
    ],
    "three terms": [
        {"q": q}
        for q in (
            "retention 30 days",
            "delete your account",
            "third party cookies",
            "transfer outside europe",
            "children under 13",
            "données personnelles conservation",
            "sell personal information",
            "contact data protection",
            "legal basis consent",
            "security breach notification",
        )
    ],
    "phrase": [
        {"q": q}
        for q in (
            '"30 days"',
            '"sell your personal information"',
            '"legitimate interest"',
            '"do not track"',
            '"google analytics"',
            '"données personnelles"',
            '"right to erasure"',
            '"standard contractual clauses"',
            '"age of 13"',
            '"without notice"',
        )
    ],
    "filtered": [
        {"q": "cookies", "type": "Terms of Service"},
        {"q": "retention", "lang": "fr"},
        {"q": "données", "lang": "fr"},
        {"q": "arbitration", "type": "Terms of Service"},
        {"q": 'cookies type:"Privacy Policy"'},
        {"q": "advertising lang:en"},
        {"q": "children", "date_from": date(2022, 1, 1), "date_to": date(2022, 12, 31)},
        {"q": "transfer", "type": "Privacy Policy"},
        {"q": "location lang:de"},
        {"q": "consent", "lang": "en", "type": "Privacy Policy"},
    ],
    "history": [
        {"q": q, "history": True}
        for q in (
            "retention 30 days",
            '"sell your personal information"',
            "cookies",
            "arbitration",
            '"30 days"',
            "children under 13",
            "données personnelles",
            "biometric",
            '"legitimate interest"',
            "transfer outside europe",
        )
    ],
}


def load_histories() -> list[dict[str, Any]]:
    with OTA.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def open_archive(folder: Path, create: bool = True) -> Archive:
    config = config_from_mapping({"data_dir": str(folder)}, path=folder.parent / "c.toml")
    archive = Archive(config, writer=True, create=create)
    return archive


# --------------------------------------------------------------------------- synthetic


class Mutator:
    """Small, realistic edits to a policy text (seeded, so runs are repeatable)."""

    NUMBER = re.compile(r"\b\d{1,3}\b")

    def __init__(self, rng: random.Random, vocabulary: list[str]) -> None:
        self.rng = rng
        self.vocabulary = vocabulary

    def vary_word(self, para: str) -> str:
        words = para.split(" ")
        if len(words) < 4:
            return para + " " + self.rng.choice(self.vocabulary)
        i = self.rng.randrange(len(words))
        words[i] = self.rng.choice(self.vocabulary)
        return " ".join(words)

    def edit(self, paras: list[str]) -> list[str]:
        paras = list(paras)
        for _ in range(self.rng.randint(1, 3)):
            i = self.rng.randrange(len(paras))
            kind = self.rng.random()
            if kind < 0.35 and self.NUMBER.search(paras[i]):
                paras[i] = self.NUMBER.sub(str(self.rng.randint(1, 120)), paras[i], count=1)
            elif kind < 0.65:
                paras[i] = self.vary_word(paras[i])
            elif kind < 0.8:
                paras[i] += " " + " ".join(self.rng.choices(self.vocabulary, k=12)) + "."
            elif kind < 0.9 and len(paras) > 10:
                del paras[i]
            else:
                paras.insert(i, " ".join(self.rng.choices(self.vocabulary, k=40)) + ".")
        return paras


def synthetic_versions(
    histories: list[dict[str, Any]], total: int, seed: int = 7
) -> Iterator[NewVersion]:
    """About ``total`` versions, round by round so every policy's dates increase."""
    rng = random.Random(seed)
    vocabulary = sorted(
        {
            w
            for h in histories[:40]
            for w in h["versions"][-1]["text"].split()
            if w.isalpha() and 3 < len(w) < 12
        }
    )
    sizes = [max(2, min(h["total_versions_in_repo"], 500)) for h in histories]
    plan: list[tuple[dict[str, Any], str, int]] = []
    count = 0
    k = 0
    while count < total:
        h = histories[k % len(histories)]
        n = min(sizes[(k * 7) % len(sizes)], total - count)
        copy = k // len(histories)
        service = h["service"] if copy == 0 else f"{h['service']} {copy:03d}"
        plan.append((h, service, max(n, 1)))
        count += max(n, 1)
        k += 1
    mutators = [Mutator(random.Random(rng.random()), vocabulary) for _ in plan]
    state: list[list[str]] = [[] for _ in plan]
    start = datetime(2019, 1, 1, tzinfo=UTC)
    for round_ in range(max(n for _, _, n in plan)):
        for i, (h, service, n) in enumerate(plan):
            if round_ >= n:
                continue
            mut = mutators[i]
            if round_ < len(h["versions"]):
                paras = [p for p in h["versions"][round_]["text"].split("\n\n") if p.strip()]
                varied = random.Random(f"{service}")
                paras = [mut.vary_word(p) if varied.random() < 0.05 else p for p in paras]
                if round_ and paras == state[i]:
                    paras = mut.edit(paras)
            else:
                paras = mut.edit(state[i])
            state[i] = paras
            yield NewVersion(
                service=service,
                type=h["document_type"],
                text="\n\n".join(paras),
                date=start + timedelta(days=round_ * 3, minutes=i % 1440),
                kind=FIRST_RECORD if round_ == 0 else CHANGE,
            )


# --------------------------------------------------------------------------- measuring


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def rebuild(archive: Archive, processes: int) -> tuple[float, int]:
    seconds, count = timed(
        lambda: archive.index.rebuild(
            archive.versions, processes=processes, language_of=language_resolver(archive)
        )
    )
    return seconds, count


def latency(archive: Archive, rounds: int) -> None:
    """p50/p95 of each query kind (wall and CPU time), after one warm-up round."""
    first, _ = timed(lambda: search(archive, "privacy"))
    print(f"  first query after opening (reads the catalog): {first * 1000:.0f} ms")
    for kind, queries in QUERIES.items():
        walls, cpus, totals, slowest = [], [], [], []
        for round_ in range(rounds + 1):
            for params in queries:
                args = dict(params)
                q = args.pop("q")
                cpu = time.process_time()
                seconds, results = timed(lambda q=q, args=args: search(archive, q, **args))
                if round_ == 0:
                    continue  # warm-up: the operating system's file cache
                walls.append(seconds * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                totals.append(results.total)
                slowest.append((seconds * 1000, q, args))
        walls.sort()
        cpus.sort()
        worst = sorted(slowest, reverse=True)[0]
        print(
            f"  {kind:<12} p50 {percentile(walls, 50):6.1f} ms  p95 {percentile(walls, 95):6.1f} ms"
            f"  (CPU p50 {percentile(cpus, 50):6.1f}, p95 {percentile(cpus, 95):6.1f})"
            f"  median hits {statistics.median(totals):,.0f}; slowest {worst[1]!r} "
            f"{worst[0]:.0f} ms"
        )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def report_index(archive: Archive, label: str, seconds: float, count: int) -> None:
    stats = archive.index.stats()
    size = dir_size(archive.config.index_dir)
    print(
        f"  reindex {label}: {count:,} versions in {seconds:.1f} s = "
        f"{count / seconds:,.0f} versions/s; {stats.sections:,} distinct sections; "
        f"index {size / 1e6:,.0f} MB"
    )


def bench(archive: Archive, processes: int, rounds: int, both: bool, reindex: bool = True) -> None:
    if reindex and both and processes > 1:
        seconds, count = rebuild(archive, 1)
        report_index(archive, "1 process", seconds, count)
    if reindex:
        seconds, count = rebuild(archive, processes)
        report_index(archive, f"{processes} processes", seconds, count)
    else:
        stats = archive.index.stats()
        size = dir_size(archive.config.index_dir)
        print(
            f"  index as built: {stats.versions:,} versions, {stats.sections:,} distinct "
            f"sections, {size / 1e6:,.0f} MB"
        )
    latency(archive, rounds)


def bench_ota(tmp: Path, processes: int, rounds: int) -> None:
    from archive.tracking.importer import import_histories

    print(f"OTA corpus ({OTA.name})")
    with open_archive(tmp / "ota") as archive:
        seconds, report = timed(lambda: import_histories(archive, OTA))
        print(f"  git import + sync: {report.commits:,} versions in {seconds:.1f} s")
        bench(archive, processes, rounds, both=True)


def bench_synthetic(
    tmp: Path, versions: int, processes: int, rounds: int, reuse: bool, reindex: bool
) -> None:
    print(f"Synthetic archive: {versions:,} versions")
    folder = tmp / "synthetic"
    if not reuse:
        histories = load_histories()
        with open_archive(folder) as archive:
            seconds, count = timed(
                lambda: archive.versions.bulk_import(synthetic_versions(histories, versions))
            )
            print(
                f"  git import: {count:,} versions of {len(archive.versions.policies()):,} "
                f"policies in {seconds:.1f} s"
            )
            langs = {(h["service"], h["document_type"]): h["language"] for h in histories}
            with archive.state.connect() as db:
                for service, type_ in archive.versions.policies():
                    base = re.sub(r" \d{3}$", "", service)
                    db.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                        (f"lang:{service}/{type_}", langs.get((base, type_))),
                    )
    with open_archive(folder, create=False) as archive:
        bench(archive, processes, rounds, both=False, reindex=reindex)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--versions", type=int, default=100_000, help="size of the synthetic archive (0: skip it)"
    )
    parser.add_argument("--processes", type=int, default=2, help="processes for reindex")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of each query set")
    parser.add_argument("--skip-ota", action="store_true")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: reuse the synthetic git archive already there",
    )
    parser.add_argument(
        "--queries-only",
        action="store_true",
        help="with --reuse: measure queries on the index already built",
    )
    args = parser.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench-search-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_ota:
            bench_ota(tmp, args.processes, args.rounds)
        if args.versions:
            bench_synthetic(
                tmp,
                args.versions,
                args.processes,
                args.rounds,
                args.reuse,
                reindex=not args.queries_only,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
