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
from archive.diff.sections import sections_of
from archive.diff.summary import (
    ChangeSummary,
    meta_key,
    passages,
    render_text,
    summary_of,
    summary_within,
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


def test_atx_headings_keep_their_numbering_and_lose_markup() -> None:
    assert heading("## Data retention ##") == "Data retention"
    assert heading("# 1. Data retention") == "1. Data retention"
    assert heading("## [1\\. About this Policy](#_kfosu7ttf89l)") == "1. About this Policy"
    assert heading("### **11\\. Privacy Request Metrics**") == "11. Privacy Request Metrics"
    assert heading("#hashtag") is None
    assert heading("Plain text") is None
    text = "# Intro\n\nHello.\n\n## 2. Data retention\n\nWe keep data for 30 days.\n"
    diff = diff_texts(text, text.replace("30 days", "90 days"))
    assert diff.sections == ("2. Data retention",)


def test_setext_headings_name_their_sections() -> None:
    text = (
        "Privacy Policy\n==============\n\nWelcome.\n\n"
        "11\\. Privacy Request Metrics\n-----------------------------\n\n"
        "We publish metrics yearly.\n\n- a list item\n---\n\nAfter a rule.\n"
    )
    assert sections_of(text) == ["Privacy Policy", "11. Privacy Request Metrics"]
    diff = diff_texts(text, text.replace("yearly", "monthly"))
    assert diff.sections == ("11. Privacy Request Metrics",)
    assert diff.excerpts()[0].section == "11. Privacy Request Metrics"
    # a list item above a --- line is not a heading: the rule does not start a section
    after = diff_texts(text, text.replace("After a rule.", "After the rule."))
    assert after.sections == ("11. Privacy Request Metrics",)
    # a longer underline touches (and names) its own heading
    longer = diff_texts(text, text.replace("==============", "==================="))
    assert longer.sections == ("Privacy Policy",)


def test_bold_only_lines_are_headings_but_bold_sentences_are_not() -> None:
    assert heading("**1. Data retention**") == "1. Data retention"
    assert heading("__Cookies:__") == "Cookies"
    assert heading("**We will never sell your data.**") is None  # a sentence in bold
    assert heading("**" + " ".join(["word"] * 20) + "**") is None  # a bold paragraph
    assert heading("**Bold** and plain") is None
    assert heading("- **List item**") is None
    text = (
        "**1. Data retention**\n\nWe keep data for 30 days.\n\n**2. Cookies**\n\nWe use cookies.\n"
    )
    diff = diff_texts(text, text.replace("30 days", "90 days").replace("use", "set"))
    assert diff.sections == ("1. Data retention", "2. Cookies")
    assert [str(e) for e in diff.excerpts()] == [
        "1. Data retention: “data for 30 days.” → “data for 90 days.”",
        "2. Cookies: “We use cookies.” → “We set cookies.”",
    ]


def test_summary_excerpts_are_the_biggest_edits_in_document_order() -> None:
    paras = [f"## Section {i}\n\nParagraph {i} says little about item {i}." for i in range(6)]
    old = "\n\n".join(paras) + "\n"
    new = (
        old.replace("Paragraph 1 says little", "Paragraph 1 now says a great deal more")
        .replace("item 2.", "item two.")
        .replace("Paragraph 4 says little about", "Paragraph 4 says nothing at all about")
        .replace("Paragraph 5 says", "Paragraph 5 still says")
    )
    diff = diff_texts(old, new)
    summary = ChangeSummary.of(diff)
    assert summary.sections == tuple(f"Section {i}" for i in (1, 2, 4, 5))
    # the three biggest edits (sections 1, 4, 2; not 5's one word), in document order
    assert [e.section for e in summary.excerpts] == ["Section 1", "Section 2", "Section 4"]
    assert summary.excerpts[0].before == "Paragraph 1 says little about item"
    assert summary.excerpts[0].after == "Paragraph 1 now says a great deal more about item"
    assert (summary.words_added, summary.words_removed) == (diff.words_added, diff.words_removed)
    assert ChangeSummary.loads(summary.dumps()) == summary
    first = ChangeSummary.of(diff_texts("", new))
    assert (
        first.first
        and first.excerpts == ()
        and first.words_added == diff_texts("", new).words_added
    )


def test_email_passages_keep_a_few_words_around_each_change() -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    old = f"# Privacy\n\nWe keep data for 30 days.\n\n{filler}\n\nWe never sell it.\n"
    new = f"# Privacy\n\nWe keep data for 90 days.\n\n{filler}\n\nWe sell your personal data.\n"
    diff = diff_texts(old, new)
    shown, more = passages(diff)
    texts = [render_text(p) for p in shown]
    assert more == 0 and len(texts) == 1  # one paragraph apart: one passage
    assert texts[0].startswith("# Privacy We keep data for [-30-] {+90+} days. word0")
    assert "word10 … word49" in texts[0] and "word30" not in texts[0]
    assert texts[0].endswith("word59 We [-never sell it-] {+sell your personal data+} .")
    assert passages(diff_texts("", new)) == ([], 0)
    many_old = "\n\n".join(
        f"Paragraph {i} stays.\n\n" + "\n\n".join(f"{filler} {i}.{k}" for k in range(4))
        for i in range(40)
    )
    many_new = many_old.replace("stays", "moved on")
    capped, left = passages(diff_texts(many_old, many_new), limit=5)
    assert len(capped) == 5 and left == 35
    long, _ = passages(diff_texts("Intro.\n", "Intro.\n\n" + "new " * 1000), max_words=50)
    assert sum(len(s.text.split()) for s in long[0]) <= 52


def test_summaries_persist_in_state_and_are_read_back(archive: Archive) -> None:
    service, type_ = "Example", "Terms"
    day = datetime(2024, 1, 1, tzinfo=UTC)
    record = archive.versions.record
    v1 = record(
        NewVersion(service, type_, "# Terms\n\nWe keep data 30 days.\n", day, "first_record")
    )
    v2 = record(
        NewVersion(
            service, type_, "# Terms\n\nWe keep data 90 days.\n", day + timedelta(1), "change"
        )
    )
    assert v1 is not None and v2 is not None
    cache = DiffCache()
    summary = summary_of(archive.versions, v1, v2, diffs=cache, state=archive.state)
    assert summary.sections == ("Terms",) and (summary.words_added, summary.words_removed) == (1, 1)
    assert archive.state.get_meta(meta_key(v1, v2)) == summary.dumps()
    fresh = DiffCache()
    again = summary_of(archive.versions, v1, v2, diffs=fresh, state=archive.state)
    assert again == summary and fresh.misses == 0  # read from state: nothing diffed
    deadline = time.monotonic() - 1
    assert summary_within(archive.versions, None, v2, diffs=fresh, deadline=deadline) is None


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
