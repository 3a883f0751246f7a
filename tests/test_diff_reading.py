"""Diffs of what a reader sees: formatting-only changes apart, renumbering, moves, tables cell
by cell, the rendered diff page (through the Flask test client) and the JSON counts."""

from __future__ import annotations

import re

import pytest

from archive.app import Archive
from archive.diff import diff_texts
from archive.diff.reading import HIDDEN, reading_units
from archive.diff.summary import ChangeSummary, summary_of
from archive.diff.wording import DELETE, EQUAL, FORMATTING, INSERT, MOVED, MOVED_AWAY, REPLACE
from tests.support import SERVICE, TYPE, record_change
from webui import create_app

PARAGRAPH = "We keep account data for as long as your account is open."


def kinds(old: str, new: str) -> list[str]:
    return [e.kind for e in diff_texts(old, new).edits]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("We *never* sell your data.", "We **never** sell your data."),  # emphasis markers
        ("We _never_ sell your data.", "We never sell your data."),
        ("* first item\n* second item", "- first item\n- second item"),  # list markers
        ("1. first item\n2. second item", "1) first item\n2) second item"),
        ("Write to [us](https://a.example/x).", "Write to [us](https://b.example/y)."),  # targets
        ("## Cookies {#cookies}", "## Cookies {#cookies-and-trackers}"),  # anchor ids
        ('<a id="c1"></a>Cookies are small files.', '<a name="x"></a>Cookies are small files.'),
        ("Cookies\n-------", "Cookies\n------------"),  # heading underline length
        ("Cookies\n=======", "# Cookies"),  # heading style
        ("**Cookies**", "## Cookies"),
        ("We  keep   data.", "We keep data."),  # white space
        ("| a | b |\n|---|---|\n| 1 | 2 |", "|a|b|\n|:--|--:|\n|1|2|"),  # pipes, alignment
        ("We keep data\\.", "We keep data."),  # escapes
    ],
)
def test_formatting_only_changes_are_recognised(old: str, new: str) -> None:
    diff = diff_texts(old, new)
    assert diff.changes, "the Markdown differs"
    assert {e.kind for e in diff.edits} == {FORMATTING}
    assert (diff.words_added, diff.words_removed, diff.wording_changes) == (0, 0, 0)
    assert diff.formatting_changes == len(diff.edits) > 0
    assert all(c.formatting_only for c in diff.changes)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("4. Cookies\n5. Retention", "5. Cookies\n6. Retention"),  # list numbers
        ("## 4. Cookies", "## 5. Cookies"),  # heading numbers
        ("## 4 Cookies", "## 5 Cookies"),
        ("### 4.2 Session cookies", "### 5.2 Session cookies"),
        ("**4. Cookies**", "**5. Cookies**"),
        ("(a) we collect your email", "(b) we collect your email"),
    ],
)
def test_renumbering_is_formatting(old: str, new: str) -> None:
    diff = diff_texts(old, new)
    assert {e.kind for e in diff.edits} == {FORMATTING}
    assert (diff.words_added, diff.words_removed) == (0, 0)


def test_a_changed_number_in_a_sentence_is_wording() -> None:
    for old, new in (
        ("30 days is the limit.", "60 days is the limit."),
        ("## Cookies", "## Kekse"),
    ):
        assert kinds(old, new) == [REPLACE]
    diff = diff_texts("We keep data 30 days.", "We keep data 60 days.")
    assert (diff.words_added, diff.words_removed) == (1, 1)


def test_wording_and_formatting_are_counted_apart() -> None:
    old = "* We *never* sell data.\n* We keep logs 30 days.\n* Contact [us](https://a.example)."
    new = "- We **never** sell data.\n- We keep logs 60 days.\n- Contact [us](https://b.example)."
    diff = diff_texts(old, new)
    assert [e.kind for e in diff.edits] == [FORMATTING, REPLACE, FORMATTING]
    assert (diff.wording_changes, diff.formatting_changes) == (1, 2)
    assert (diff.words_added, diff.words_removed) == (1, 1)  # 30 → 60: not the markers
    summary = ChangeSummary.of(diff)
    assert summary.describe() == "+1 / −1 words (1 wording change, 2 formatting-only)"
    assert summary.as_json()["formatting_changes"] == 2
    only = ChangeSummary.of(diff_texts("* a b c", "- a b c"))
    assert only.describe() == "Formatting only: 1 change"


def test_a_moved_paragraph_is_one_move_with_its_inner_edit() -> None:
    moved_old = "We never share your data with advertisers, brokers or any other party."
    moved_new = moved_old.replace("brokers", "data brokers")
    old = f"# Policy\n\n{moved_old}\n\n{PARAGRAPH}\n\nWe encrypt data at rest.\n"
    new = f"# Policy\n\n{PARAGRAPH}\n\nWe encrypt data at rest.\n\n{moved_new}\n"
    diff = diff_texts(old, new)
    edits = diff.edits
    assert sorted(e.kind for e in edits) == [MOVED, MOVED_AWAY]
    (moved,) = [e for e in edits if e.kind == MOVED]
    assert (moved.old, moved.new) == (1, 3)
    assert [(s.op, s.text) for s in moved.spans if s.op != EQUAL] == [(INSERT, "data ")]
    assert (diff.words_added, diff.words_removed) == (1, 0)  # the inner edit only
    assert diff.moves == 1
    body = diff.as_json()
    (item,) = [c for c in body["changes"] if c["kind"] == "moved"]
    assert (item["from"], item["to"], item["words_added"]) == (2, 4, 1)


def test_a_moved_section_moves_its_short_heading_too() -> None:
    body_a = "We never share your data with advertisers or brokers at all."
    body_b = "We encrypt your data at rest and in transit, always."
    old = f"## Sharing\n\n{body_a}\n\n## Security\n\n{body_b}\n"
    new = f"## Security\n\n{body_b}\n\n## Sharing\n\n{body_a}\n"
    diff = diff_texts(old, new)
    assert {e.kind for e in diff.edits} == {MOVED, MOVED_AWAY}
    assert (diff.words_added, diff.words_removed) == (0, 0)


def test_short_lines_that_recur_are_not_moves() -> None:
    diff = diff_texts("# Terms\n\nYes.\n\nNo.", "# Terms\n\nNo.\n\nYes.")
    assert MOVED not in {e.kind for e in diff.edits}
    assert diff.wording_changes == 2  # one deleted, one inserted


def test_tables_diff_cell_by_cell() -> None:
    old = "| Data | Kept | Why |\n|---|---|---|\n| Logs | 30 days | security |"
    new = "| Data | Kept | Why |\n|---|---|---|\n| Logs | 60 days | security |"
    (edit,) = diff_texts(old, new).edits
    assert edit.kind == REPLACE
    cells = [[(s.op, s.text) for s in cell] for cell in edit.cells]
    assert cells == [
        [(EQUAL, "Logs")],
        [(DELETE, "30"), (INSERT, "60"), (EQUAL, " days")],
        [(EQUAL, "security")],
    ]
    wider = old.replace("Why |\n", "Why | Until |\n").replace("---|\n", "---|---|\n")
    added = diff_texts(old, wider.replace("| security |", "| security | you object |"))
    header, delimiter, row = added.edits
    assert [[(s.op, s.text) for s in c] for c in header.cells][-1] == [(INSERT, "Until")]
    assert delimiter.kind == FORMATTING
    assert [[(s.op, s.text) for s in c] for c in row.cells][-1] == [(INSERT, "you object")]
    assert (added.words_added, added.words_removed) == (3, 0)


def test_reading_units_follow_the_policy_page_renderer() -> None:
    text = "Title\n=====\n\n* one [link](https://x.example)\n\n| a | b |\n|---|---|\n| c | d |"
    units = reading_units(text)
    assert [(u.tag, u.text) for u in units] == [
        ("h1", "Title"),
        (HIDDEN, ""),
        ("li", "one link"),
        ("tr", "a | b"),
        (HIDDEN, ""),
        ("tr", "c | d"),
    ]
    assert units[3].header and units[5].cells == ("c", "d")


OLD_DOC = """Privacy Policy
==============

Welcome to *our* privacy policy. It explains what we collect and why.

1\\. Retention
-------------

| Data | Kept |
|---|---|
| Logs | 30 days |

* We keep account data while your account is open.
"""
NEW_DOC = (
    OLD_DOC.replace("*our*", "**our**")
    .replace("-------------", "---------------")
    .replace("30 days", "60 days")
    .replace("while your", "until a year after your")
)


def test_rendered_diff_page_and_json_counts(archive: Archive) -> None:
    v1 = record_change(archive, OLD_DOC)
    v2 = record_change(archive, NEW_DOC + "\n<script>alert(1)</script>\n")
    client = create_app(archive.config, archive=archive).test_client()
    quoted = f"/policies/{SERVICE}/{TYPE}".replace(" ", "%20")
    page = client.get(f"{quoted}/diff?from={v1.id}&to={v2.id}").text
    body = page[page.index('<article class="diff') :]
    assert '<article class="diff diff-rendered hide-formatting"' in page
    assert re.search(r"<td><del>30</del><ins>60</ins> days</td>", body)  # a table cell
    assert re.search(r"<li[^>]*>We keep account data <del>while</del><ins>until a year", body)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>" not in body
    assert '<section class="formatting-only" id="formatting-1">' in body
    assert "formatting=show" in page  # the toggle works without JavaScript
    shown = client.get(f"{quoted}/diff?from={v1.id}&to={v2.id}&formatting=show").text
    assert "hide-formatting" not in shown
    source = client.get(f"{quoted}/diff?from={v1.id}&to={v2.id}&view=inline").text
    assert "<del>*our*</del><ins>**our**</ins>" in source.replace("*", "*")  # Markdown spans

    data = client.get(f"/api{quoted}/diff?from={v1.id}&to={v2.id}").get_json()
    summary = data["summary"]
    # 60, until a year after, and the <script> line shown as text; 30, while
    assert (summary["words_added"], summary["words_removed"]) == (9, 2)
    assert summary["formatting_changes"] == 2  # emphasis, underline length
    stored = summary_of(archive.versions, v1, v2, diffs=client.application.extensions[
        "policy_archive"].diffs, state=archive.state)  # fmt: skip
    assert stored.formatting_changes == 2 and stored.wording_changes == 3
    assert (
        stored.describe() == "+9 / −2 words (3 wording changes, 2 formatting-only) in 1. Retention"
    )
    kinds_seen = {c["kind"] for c in data["changes"]}
    assert {"formatting", "replace", "insert"} <= kinds_seen
