"""Ranking evaluation: do distinctive passages of real policies find their own policy first?

    .venv/bin/python bench/eval_ranking.py [--passages 200] [--words 6] [--seed 11]
                                           [--data DIR] [--fresh] [--show-misses 10]

Builds its evaluation set from the OTA corpus (``../shared/corpus/ota/policy_histories.jsonl``):
from the current (latest) version of randomly chosen policies, a random run of ``--words``
consecutive words that stands in no other policy's current text as the search box reads it
(folded word for word, and stemmed in the policy's language), within one section of the text
(:func:`store.index.sections.split_sections`; a phrase is matched within a section, across its
paragraph breaks), chosen reproducibly with ``--seed``. The right answer for a passage is the
policy it was taken from.

The corpus is imported through the CLI (``policy-archive --config DIR/config.toml import FILE``,
once;
``--fresh`` starts again), then each passage is searched twice through the real search
(``archive.search.search``): typed without quotes (all words must occur; ranking decides) and
with quotes (a phrase). Prints top-1 and top-3 for both, and the misses.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.search import QueryError, search  # noqa: E402
from store.index.analysis import PolicyAnalyzer, field_language, fold, words  # noqa: E402
from store.index.sections import split_sections  # noqa: E402

OTA = REPO.parent / "shared" / "corpus" / "ota" / "policy_histories.jsonl"
OUT = REPO / "bench" / "out" / "eval-ranking"
OPERATORS = {"AND", "OR", "NOT"}


@dataclass(frozen=True)
class Passage:
    service: str
    type: str
    text: str


def _tokens(text: str) -> list[str]:
    """Words as the search box reads them: letters (no bare numbers, no operators)."""
    return [m.group() for m in words(text)]


def _ngrams(terms: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(terms[i : i + n]) for i in range(len(terms) - n + 1)}


def build_set(path: Path, count: int, n: int, seed: int) -> list[Passage]:
    """``count`` distinctive ``n``-word passages of current versions, one policy at most once."""
    policies: list[tuple[str, str, list[list[str]], PolicyAnalyzer]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            history = json.loads(line)
            texts = [v["text"] for v in history["versions"] if v.get("text")]
            if texts:
                sections = [_tokens(s.text) for s in split_sections(texts[-1])]
                analyser = PolicyAnalyzer(field_language(history.get("language")))
                policies.append((history["service"], history["document_type"], sections, analyser))
    # a passage is distinctive when no other policy holds it as the search box reads it
    # (stemmed in the policy's language, and word for word)
    seen_in: dict[tuple[str, ...], int] = {}
    for _, _, sections, analyser in policies:
        grams: set[tuple[str, ...]] = set()
        for tokens in sections:
            grams |= _ngrams([analyser.term(t) for t in tokens], n)
            grams |= _ngrams([fold(t) for t in tokens], n)
        for gram in grams:
            seen_in[gram] = seen_in.get(gram, 0) + 1
    rng = random.Random(seed)
    order = list(range(len(policies)))
    rng.shuffle(order)
    out: list[Passage] = []
    for i in order * 2:  # a second round if the corpus has fewer policies than passages
        if len(out) >= count:
            break
        service, type_, sections, analyser = policies[i]
        if sum(len(tokens) for tokens in sections) < n * 4:
            continue
        for _ in range(50):
            tokens = rng.choice(sections)
            if len(tokens) < n:
                continue
            start = rng.randrange(len(tokens) - n + 1)
            chosen = tokens[start : start + n]
            if any(w in OPERATORS or w.isdigit() or len(w) < 2 for w in chosen):
                continue
            if seen_in.get(tuple(analyser.term(w) for w in chosen)) != 1:
                continue
            if seen_in.get(tuple(fold(w) for w in chosen)) != 1:
                continue
            passage = Passage(service, type_, " ".join(chosen))
            if passage not in out:
                out.append(passage)
                break
    return out


def import_corpus(data: Path, corpus: Path, fresh: bool) -> None:
    if fresh and data.exists():
        shutil.rmtree(data)
    if (data / "archive").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    config = data / "config.toml"
    config.write_text(f"data_dir = {json.dumps(str(data))}\n", encoding="utf-8")
    started = time.perf_counter()
    cli = REPO / ".venv" / "bin" / "policy-archive"
    subprocess.run(
        [str(cli), "--config", str(config), "import", str(corpus)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"imported {corpus.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def rank(archive: Archive, query: str, want: tuple[str, str]) -> int | None:
    """The 1-based rank of ``want`` among the first three hits (None: not there)."""
    try:
        results = search(archive, query, limit=3)
    except QueryError as exc:
        print(f"  refused: {query!r}: {exc}", file=sys.stderr)
        return None
    for i, hit in enumerate(results.hits, 1):
        if (hit.service, hit.type) == want:
            return i
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--words", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path, default=OUT)
    parser.add_argument("--corpus", type=Path, default=OTA)
    parser.add_argument("--fresh", action="store_true", help="import the corpus again")
    parser.add_argument("--show-misses", type=int, default=10)
    args = parser.parse_args()

    passages = build_set(args.corpus, args.passages, args.words, args.seed)
    import_corpus(args.data, args.corpus, args.fresh)
    config = config_from_mapping({"data_dir": str(args.data)}, path=args.data / "config.toml")
    with Archive.open(config, writer=True) as archive:  # a writer brings the index up to date
        archive.sync_index()
    with Archive.open(config) as archive:
        for label, quote in (("unquoted", ""), ("quoted", '"')):
            ranks: list[int | None] = []
            misses: list[tuple[Passage, int | None]] = []
            started = time.perf_counter()
            for p in passages:
                r = rank(archive, f"{quote}{p.text}{quote}", (p.service, p.type))
                ranks.append(r)
                if r != 1:
                    misses.append((p, r))
            took = time.perf_counter() - started
            top1 = sum(1 for r in ranks if r == 1) / len(ranks)
            top3 = sum(1 for r in ranks if r is not None) / len(ranks)
            print(
                f"{label:9} {len(ranks)} passages of {args.words} words: top-1 {top1:.1%}, "
                f"top-3 {top3:.1%} ({took / len(ranks) * 1000:.0f} ms per query)"
            )
            for p, r in misses[: args.show_misses]:
                where = f"rank {r}" if r else "not in top 3"
                print(f"    {where}: {p.text!r} ({p.service} / {p.type})")


if __name__ == "__main__":
    main()
