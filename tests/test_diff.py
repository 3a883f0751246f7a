"""archive.diff: word-level diffs, sections touched, bounded time, caching, real histories."""

from __future__ import annotations

import json
import random
import re
import time
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest

from archive.app import Archive
from archive.diff import (
    DELETE,
    EQUAL,
    INSERT,
    UNIT_SEPARATOR,
    Change,
    DiffCache,
    Equal,
    TextDiff,
    diff_texts,
    diff_versions,
    heading,
    predecessor,
    units,
)
from store.git.versions import NewVersion
from tests.conftest import OTA_JSONL, SEED_POLICIES, seed_text


def side(diff: TextDiff, which: str) -> list[str]:
    """Rebuild one side's units from the diff (old: equal+delete, new: equal+insert)."""
    keep = (EQUAL, DELETE) if which == "old" else (EQUAL, INSERT)
    out: list[str] = []
    for seg in diff.segments:
        if isinstance(seg, Equal):
            out.extend(seg.lines)
        else:
            text = "".join(s.text for s in seg.spans if s.op in keep)
            out.extend(t for t in text.split(UNIT_SEPARATOR) if t.strip())
    return out


def ops(change: Change) -> list[tuple[str, str]]:
    return [(s.op, s.text) for s in change.spans]


def test_a_changed_number_is_highlighted_as_a_whole_word() -> None:
    diff = diff_texts("We keep data for 30 days.", "We keep data for 60 days.")
    (change,) = diff.changes
    assert ops(change) == [
        (EQUAL, "We keep data for "),
        (DELETE, "30"),
        (INSERT, "60"),
        (EQUAL, " days."),
    ]
    assert (diff.words_added, diff.words_removed) == (1, 1)


def test_semantic_cleanup_merges_a_rewritten_phrase() -> None:
    old = "We may share your data with our partners for marketing."
    new = "We will never sell your personal information to anyone at all."
    (change,) = diff_texts(old, new).changes
    assert len(change.spans) <= 5, ops(change)
    assert not any(s.op != EQUAL and len(s.text.strip()) == 1 for s in change.spans)


def test_inserted_and_deleted_paragraphs_name_their_sections() -> None:
    old = "# Policy\n\n## Data retention\n\nWe keep logs.\n\n## Sharing\n\nWe share with hosts.\n"
    new = (
        "# Policy\n\n## Data retention\n\nWe keep logs.\n\nBackups last a year.\n\n"
        "## Contact\n\nWrite to us.\n"
    )
    diff = diff_texts(old, new)
    (change,) = diff.changes
    assert change.kind == "replace"
    assert diff.sections == ("Data retention", "Sharing", "Contact")
    assert side(diff, "old") == units(old) and side(diff, "new") == units(new)


def test_a_deleted_section_counts_removed_words_only() -> None:
    old = "Intro text here.\n\n## Cookies\n\nWe use three cookies.\n\nOutro.\n"
    new = "Intro text here.\n\nOutro.\n"
    diff = diff_texts(old, new)
    (change,) = diff.changes
    assert change.kind == DELETE
    assert (diff.words_added, diff.words_removed) == (0, 5)
    assert diff.sections == ("Cookies",)


def test_identical_texts_have_no_changes_and_hide_everything() -> None:
    text = seed_text("workoptima-privacy-policy.txt")
    diff = diff_texts(text, text)
    assert diff.changes == () and diff.summary()["changes"] == 0
    assert [item.kind for item in diff.layout()] == ["hidden"]
    assert diff.hunks() == []


def test_layout_keeps_context_around_changes_and_hides_the_rest() -> None:
    old_units = [f"Paragraph number {i} says something." for i in range(40)]
    new_units = list(old_units)
    new_units[5] = "Paragraph number 5 says something new."
    new_units[30] = "Paragraph number 30 says nothing."
    new_units[32] = "Paragraph number 32 is rewritten."
    diff = diff_texts("\n\n".join(old_units), "\n\n".join(new_units))
    layout = diff.layout(context=2)
    kinds = [item.kind for item in layout]
    assert kinds == [
        "hidden", "context", "change", "context", "hidden", "context", "change",
        "context", "change", "context", "hidden",
    ]  # fmt: skip
    assert [item.number for item in layout if item.kind == "change"] == [1, 2, 3]
    assert layout[1].lines == tuple(old_units[3:5])
    hunks = diff.hunks(context=2)
    assert len(hunks) == 2  # changes 2 and 3 are close together: one hunk
    assert hunks[1].old_start == 28 and hunks[1].words_removed == 3
    assert sum(len(item.lines) for item in layout) + 3 == 40
    as_json = json.loads(json.dumps(diff.as_json()))
    assert as_json["summary"]["changes"] == 3
    assert as_json["hunks"][0]["old_start"] == 4  # 1-based
    assert {s["op"] for s in as_json["hunks"][1]["spans"]} == {EQUAL, INSERT, DELETE}


def test_zero_budget_gives_whole_replacements_marked_coarse() -> None:
    old = "One two three.\n\nFour five six."
    new = "One two four.\n\nFour five seven."
    diff = diff_texts(old, new, timeout=0)
    assert diff.coarse and all(c.coarse for c in diff.changes)
    assert ops(diff.changes[0])[0] == (DELETE, "One two three.")
    assert side(diff, "old") == units(old) and side(diff, "new") == units(new)


def test_headings_are_read_from_atx_lines_only() -> None:
    assert heading("## Data retention ##") == "Data retention"
    assert heading("#hashtag") is None
    assert heading("Plain text") is None


def _corpus_pairs(limit: int) -> list[tuple[str, str]]:
    pairs = []
    with OTA_JSONL.open(encoding="utf-8") as fh:
        for line in islice(fh, 120):
            versions = json.loads(line)["versions"]
            pairs += [(a["text"], b["text"]) for a, b in pairwise(versions)]
    random.Random(7).shuffle(pairs)
    return pairs[:limit]


def test_real_histories_rebuild_both_sides_exactly() -> None:
    """Every diff of real consecutive versions rebuilds both texts and stays in budget."""
    pairs = _corpus_pairs(60)
    assert len(pairs) == 60
    for old, new in pairs:
        started = time.monotonic()
        diff = diff_texts(old, new)
        assert time.monotonic() - started < 3.0
        assert side(diff, "old") == units(old)
        assert side(diff, "new") == units(new)
        if old != new and units(old) != units(new):
            assert diff.changes


def test_a_huge_rewrite_stays_bounded() -> None:
    rng = random.Random(3)
    words = [
        "data",
        "we",
        "you",
        "your",
        "service",
        "share",
        "keep",
        "days",
        "law",
        "consent",
        "rights",
        "access",
    ]
    old_units = [" ".join(rng.choice(words) for _ in range(80)) for _ in range(600)]
    new_units = [
        " ".join(rng.choice(words) if rng.random() < 0.3 else w for w in u.split())
        for u in old_units
    ]
    started = time.monotonic()
    diff = diff_texts("\n\n".join(old_units), "\n\n".join(new_units[::-1]), timeout=0.3)
    assert time.monotonic() - started < 2.5
    assert side(diff, "new") == new_units[::-1]


def test_cache_computes_once_and_evicts_the_oldest() -> None:
    cache = DiffCache(maxsize=2)
    calls: list[str] = []

    def compute(name: str) -> TextDiff:
        calls.append(name)
        return diff_texts(name, name + " more")

    first = cache.get("a", lambda: compute("a"))
    assert cache.get("a", lambda: compute("a")) is first
    cache.get("b", lambda: compute("b"))
    cache.get("c", lambda: compute("c"))
    cache.get("a", lambda: compute("a"))
    assert calls == ["a", "b", "c", "a"]
    assert len(cache) == 2 and cache.hits == 1


def test_diff_versions_against_a_real_archive(archive: Archive) -> None:
    service, type_, _ = SEED_POLICIES["workoptima-privacy-policy.txt"]
    text = seed_text("workoptima-privacy-policy.txt")
    day = datetime(2024, 3, 1, tzinfo=UTC)
    first = archive.versions.record(NewVersion(service, type_, text, day, "first_record"))
    edited = text.replace("\n", "\nA brand new paragraph about retention.\n", 1)
    second = archive.versions.record(NewVersion(service, type_, edited, day + timedelta(days=9)))
    assert predecessor(archive.versions, second) == first
    assert predecessor(archive.versions, first) is None
    cache = DiffCache()
    diff = diff_versions(archive.versions, first, second, cache=cache)
    assert diff.words_added == 6 and diff.words_removed == 0
    assert diff_versions(archive.versions, first, second, cache=cache) is diff
    whole = diff_versions(archive.versions, None, first)
    assert whole.words_removed == 0
    assert whole.words_added == len(re.findall(r"\w+", "\n".join(units(text))))


@pytest.mark.parametrize("name", sorted(SEED_POLICIES))
def test_seed_policies_small_edit_is_found_in_its_section(name: str) -> None:
    text = seed_text(name)
    lines = units(text)
    target = max(range(len(lines)), key=lambda i: len(lines[i]) if heading(lines[i]) is None else 0)
    words = lines[target].split(" ")
    words.insert(len(words) // 2, "ZEBRA")
    edited = text.replace(lines[target], " ".join(words), 1)
    diff = diff_texts(text, edited)
    (change,) = diff.changes
    assert [s.text.strip() for s in change.spans if s.op == INSERT] == ["ZEBRA"]
    assert not [s for s in change.spans if s.op == DELETE]
