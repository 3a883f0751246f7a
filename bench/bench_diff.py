"""Diff speed: the library and the diff page's server time, on two synthetic cases.

A: a 10,000-word policy with 20 scattered word edits. B: a 50,000-word policy with a large
rewrite (60 % of paragraphs touched, 30 % of their words replaced, some paragraphs dropped or
added). Prints the time of ``diff_texts`` and of GET /policies/…/diff through the Flask app
(first request: computed; second: from the cache). Run: ``.venv/bin/python bench/bench_diff.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive.app import Archive
from archive.config import config_from_mapping
from archive.diff import DiffCache, diff_texts
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from webui import create_app

WORDS = tuple(
    [
        "we",
        "collect",
        "personal",
        "data",
        "information",
        "about",
        "you",
        "your",
        "account",
        "device",
        "usage",
        "cookies",
        "service",
        "partners",
        "third",
        "parties",
        "retention",
        "days",
        "months",
        "law",
        "legal",
        "basis",
        "consent",
        "process",
        "share",
        "transfer",
        "security",
        "access",
        "delete",
        "request",
        "rights",
        "contact",
        "email",
        "address",
        "location",
        "analytics",
        "advertising",
        "marketing",
        "children",
        "age",
        "policy",
        "update",
        "notice",
        "time",
        "period",
        "store",
        "keep",
        "protect",
    ]
)


def document(rng: random.Random, words: int, per_paragraph: int = 80) -> list[str]:
    paragraphs: list[str] = []
    count = 0
    while count < words:
        if len(paragraphs) % 8 == 0:
            paragraphs.append(f"## Section {len(paragraphs) // 8 + 1}: {rng.choice(WORDS)}")
        n = rng.randint(per_paragraph // 2, per_paragraph * 3 // 2)
        paragraphs.append(" ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ".")
        count += n
    return paragraphs


def scattered_edits(rng: random.Random, paragraphs: list[str], edits: int) -> list[str]:
    out = list(paragraphs)
    for _ in range(edits):
        i = rng.randrange(len(out))
        words = out[i].split(" ")
        j = rng.randrange(len(words))
        words[j : j + 1] = [rng.choice(WORDS)] * rng.randint(1, 2)
        out[i] = " ".join(words)
    return out


def rewrite(rng: random.Random, paragraphs: list[str]) -> list[str]:
    out = []
    for p in paragraphs:
        r = rng.random()
        if p.startswith("#") or r > 0.6:
            out.append(p)
        elif r < 0.05:
            continue
        elif r < 0.1:
            out += [p, " ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "."]
        else:
            out.append(" ".join(rng.choice(WORDS) if rng.random() < 0.3 else w for w in p.split()))
    return out


def cases() -> dict[str, tuple[str, str]]:
    rng = random.Random(1)
    a = document(rng, 10_000)
    b = document(rng, 50_000)
    return {
        "A 10k words, 20 edits": ("\n\n".join(a), "\n\n".join(scattered_edits(rng, a, 20))),
        "B 50k words, rewrite": ("\n\n".join(b), "\n\n".join(rewrite(rng, b))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, (old, new) in cases().items():
        times, coarse = [], False
        page: dict[tuple[str, str], list[float]] = defaultdict(list)
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            started = time.perf_counter()
            diff = diff_texts(old, new)
            times.append(time.perf_counter() - started)
            coarse = coarse or diff.coarse
        print(
            f"{name}: diff_texts median {statistics.median(times) * 1000:.1f} ms, "
            f"max {max(times) * 1000:.1f} ms; {len(diff.changes)} changes, "
            f"+{diff.words_added}/-{diff.words_removed} words, coarse={coarse}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            config = config_from_mapping({"data_dir": str(Path(tmp) / "data")})
            with Archive(config, create=True) as archive:
                day = datetime(2024, 1, 1, tzinfo=UTC)
                record = archive.versions.record
                record(NewVersion("Bench", "Policy", old, day, FIRST_RECORD))
                record(NewVersion("Bench", "Policy", new, day + timedelta(days=1), CHANGE))
                record(NewVersion("Warm", "Up", "One two.", day, FIRST_RECORD))
                record(NewVersion("Warm", "Up", "One three.", day + timedelta(days=1), CHANGE))
                app = create_app(config, archive=archive)
                client = app.test_client()
                for view in ("inline", "side"):  # compile templates, open git readers
                    client.get(f"/policies/Warm/Up/diff?view={view}").close()
                for view in ("inline", "side"):
                    for _ in range(args.repeat):
                        app.extensions["policy_archive"].diffs = DiffCache()
                        timings = []
                        for _attempt in ("computed", "cached"):
                            started = time.perf_counter()
                            response = client.get(f"/policies/Bench/Policy/diff?view={view}")
                            timings.append(time.perf_counter() - started)
                            assert response.status_code == 200, response.status_code
                            sizes[view] = len(response.data)
                        page[(view, "computed")].append(timings[0])
                        page[(view, "cached")].append(timings[1])
                for (view, attempt), values in page.items():
                    print(
                        f"  diff page {view:6} {attempt:8}: median "
                        f"{statistics.median(values) * 1000:.1f} ms, "
                        f"max {max(values) * 1000:.1f} ms ({sizes[view] / 1024:.0f} KiB)"
                    )


if __name__ == "__main__":
    main()
