"""Diff speed: the library and the diff page's server time, on two synthetic cases.

A: a 10,000-word policy with 20 scattered word edits. B: a 50,000-word policy with a large
rewrite (60 % of paragraphs touched, 30 % of their words replaced, some paragraphs dropped or
added). Prints the time of ``diff_texts`` and of GET /policies/…/diff through the Flask app
(first request: computed; second: from the cache), in each view (rendered, inline, side).

C: the rendered diff page (the default view) of two versions of a 10,000-word policy written
in Markdown (setext and ATX headings, lists, links, emphasis, a table) with 20 scattered word
edits: server time through the Flask test client with the DiffCache cleared before each of
``--runs`` requests (p50 and max; target ≤ 50 ms).

``--corpus FILE`` (the OTA ``policy_histories.jsonl``): imports it (as ``policy-archive import``
does) and times the change summaries of every version (diffs + state.sqlite writes), then
``/changes`` with its 50 summaries: first request of a fresh server (summaries read back from
state.sqlite) and warm (from memory). Run: ``.venv/bin/python bench/bench_diff.py``.
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
from archive.diff.summary import summary_of
from archive.tracking.importer import import_histories
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion
from webui import create_app
from webui.diff import VIEWS

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


def markdown_document(rng: random.Random, words: int) -> list[str]:
    """A policy as extractors write it: headings of both styles, lists, links, a table."""
    out: list[str] = ["Privacy Policy\n=============="]
    for k, p in enumerate(document(rng, words)):
        pieces = p.split(" ")
        if p.startswith("## "):
            out.append(f"{p[3:]}\n{'-' * (len(p) - 3)}" if k % 16 == 0 else p)
        elif k % 5 == 1:
            step = max(len(pieces) // 4, 1)
            items = (" ".join(pieces[n : n + step]) for n in range(0, len(pieces), step))
            out.append("\n".join(f"* {item}" for item in items))
        elif k % 7 == 2 and len(pieces) > 8:
            pieces[3] = f"[{pieces[3]}](https://example.com/{k})"
            pieces[6] = f"**{pieces[6]}**"
            out.append(" ".join(pieces))
        else:
            out.append(p)
        if k == 40:
            rows = (f"| {rng.choice(WORDS)} | {n} days | {rng.choice(WORDS)} |" for n in range(12))
            out.append("| Data | Kept | Why |\n|---|---|---|\n" + "\n".join(rows))
    return out


def rendered_page(runs: int) -> None:
    rng = random.Random(3)
    paragraphs = markdown_document(rng, 10_000)
    old, new = "\n\n".join(paragraphs), "\n\n".join(scattered_edits(rng, paragraphs, 20))
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_mapping({"data_dir": str(Path(tmp) / "data")})
        with Archive(config, create=True) as archive:
            day = datetime(2024, 1, 1, tzinfo=UTC)
            archive.versions.record(NewVersion("Bench", "Policy", old, day, FIRST_RECORD))
            archive.versions.record(
                NewVersion("Bench", "Policy", new, day + timedelta(days=1), CHANGE)
            )
            app = create_app(config, archive=archive)
            client = app.test_client()
            client.get("/policies/Bench/Policy/diff").close()  # templates, git readers
            times = []
            for _ in range(runs):
                app.extensions["policy_archive"].diffs = DiffCache()
                started = time.perf_counter()
                response = client.get("/policies/Bench/Policy/diff")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
                assert "diff-rendered" in response.text
            diff = diff_texts(old, new)
            print(
                f"C 10k words Markdown, 20 edits, rendered diff page uncached ({runs} runs): "
                f"p50 {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
                f"({len(response.data) / 1024:.0f} KiB; {diff.wording_changes} wording, "
                f"{diff.formatting_changes} formatting-only; words {len(old.split())})"
            )


def cases() -> dict[str, tuple[str, str]]:
    rng = random.Random(1)
    a = document(rng, 10_000)
    b = document(rng, 50_000)
    return {
        "A 10k words, 20 edits": ("\n\n".join(a), "\n\n".join(scattered_edits(rng, a, 20))),
        "B 50k words, rewrite": ("\n\n".join(b), "\n\n".join(rewrite(rng, b))),
    }


def corpus(path: Path, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_mapping({"data_dir": str(Path(tmp) / "data")})
        with Archive.open(config, writer=True, create=True) as archive:
            started = time.perf_counter()
            report = import_histories(archive, path)
            took = time.perf_counter() - started
            print(f"corpus: imported {report.commits} versions in {took:.1f} s")
        with Archive.open(config) as archive:
            versions = archive.versions
            pairs = [
                (history[k - 1] if k else None, v)
                for service, type_ in versions.policies()
                for history in [versions.history(service, type_)]
                for k, v in enumerate(history)
            ]
            diffs = DiffCache()
            started = time.perf_counter()
            cpu = time.process_time()
            slowest = 0.0
            for old, new in pairs:
                one = time.perf_counter()
                summary_of(versions, old, new, diffs=diffs, state=archive.state)
                slowest = max(slowest, time.perf_counter() - one)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"  summaries of all {len(pairs)} versions: {wall:.1f} s wall, {cpu:.1f} s CPU "
                f"({wall / len(pairs) * 1000:.1f} ms each, slowest {slowest * 1000:.0f} ms)"
            )
            fresh: list[float] = []
            warm: list[float] = []
            for _ in range(repeat):
                app = create_app(config, archive=archive)  # a fresh server: empty memory caches
                client = app.test_client()
                client.get("/policies").close()  # open git readers, compile base templates
                for into in (fresh, warm):
                    started = time.perf_counter()
                    response = client.get("/changes")
                    into.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.status_code
                    assert response.text.count('class="change-summary"') == 50
            for label, values in (("fresh server (state.sqlite)", fresh), ("warm", warm)):
                print(
                    f"  /changes with 50 summaries, {label}: median "
                    f"{statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", type=Path, help="policy_histories.jsonl: summaries bench")
    parser.add_argument("--runs", type=int, default=20, help="requests of case C")
    parser.add_argument("--only-rendered", action="store_true", help="case C alone")
    args = parser.parse_args()
    if args.corpus:
        corpus(args.corpus, args.repeat)
        return
    rendered_page(args.runs)
    if args.only_rendered:
        return
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
                for view in VIEWS:  # compile templates, open git readers
                    client.get(f"/policies/Warm/Up/diff?view={view}").close()
                for view in VIEWS:
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
