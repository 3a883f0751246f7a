"""Extraction speed and fidelity on the 52 Open Terms Archive snapshots.

    .venv/bin/python bench/bench_extract.py [--repeat 5]

Prints ms/page (p50, p95, max; the best of --repeat runs per page, so that a busy machine
does not count) and the word similarity with OTA's recorded Markdown (mean and min over the
comparable snapshots, as tests/test_extract_corpus.py defines them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_extract_corpus import (  # noqa: E402
    SNAPSHOTS,
    group_of,
    load_entries,
    sources_of,
    word_similarity,
)

from archive.errors import ExtractError  # noqa: E402
from archive.extract import extract_document  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (best is kept)")
    args = parser.parse_args()
    times, scores, failures = [], [], []
    for entry in load_entries():
        body = (SNAPSHOTS / entry["html_file"]).read_bytes()
        expected = (SNAPSHOTS / entry["expected_markdown_file"]).read_text(encoding="utf-8")
        pieces = [(s, body, "text/html", s.url) for s in sources_of(entry)]
        best, text = float("inf"), ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            try:
                text = extract_document(pieces)
            except ExtractError:
                text = ""
            best = min(best, (time.perf_counter() - started) * 1000)
        times.append(best)
        if group_of(entry, expected) == "comparable":
            scores.append((word_similarity(text, expected), entry["id"]))
        else:
            failures.append(entry["id"])
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"{len(times)} pages, {sum(e['html_bytes'] for e in load_entries()) / 1e6:.1f} MB HTML")
    print(f"ms/page: p50 {statistics.median(times):.1f}  p95 {p95:.1f}  max {times[-1]:.1f}")
    values = [s for s, _ in scores]
    worst = min(scores)
    print(
        f"similarity over {len(values)} comparable snapshots: mean {statistics.mean(values):.4f}"
        f"  min {worst[0]:.4f} ({worst[1]})"
    )
    print(f"not comparable (placeholder or custom filters): {len(failures)}")


if __name__ == "__main__":
    main()
