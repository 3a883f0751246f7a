"""Apply a source's ``remove`` and ``select`` selectors to a parsed page.

CSS selectors go through cssselect; range selectors follow Open Terms Archive's semantics,
which are those of a DOM ``Range``: ``startBefore``/``startAfter`` put the start just before or
just after the first element the CSS selector matches, ``endBefore``/``endAfter`` the end.
Selecting a range clones what lies between the two points, with partially covered ancestors
cloned around the covered part (``Range.cloneContents``); removing a range deletes it
(``Range.deleteContents``). An end point before the start point selects nothing.

A range whose start or end matches nothing refuses the page, in ``select`` and in ``remove``
alike, as Open Terms Archive does: a missing part, or noise that a range was meant to cut, is
never archived unnoticed. A CSS ``remove`` selector that matches nothing removes nothing.

To place points, every element gets four positions in document order: its start tag, its
``text``, its end tag and its ``tail`` (the text after it), which is how lxml stores text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from archive.config import RangeSelector, Selector
from archive.errors import ExtractError


@lru_cache(maxsize=512)
def _compile(selector: str) -> CSSSelector:
    try:
        return CSSSelector(selector, translator="html")
    except SelectorError as exc:
        raise ExtractError(
            f'"{selector}" is not a CSS selector we can apply ({exc}); fix it in the declaration'
        ) from None


def css(doc: etree._Element, selector: str) -> list[etree._Element]:
    return _compile(selector)(doc)


def describe(selector: Selector) -> str:
    """A selector as the declaration writes it, for messages."""
    if isinstance(selector, str):
        return f'"{selector}"'
    keys = ("startBefore", "startAfter", "endBefore", "endAfter")
    values = (selector.start_before, selector.start_after, selector.end_before, selector.end_after)
    return json.dumps({k: v for k, v in zip(keys, values, strict=True) if v is not None})


class Positions:
    """Document-order positions of every node of a tree, comments included (once per page)."""

    def __init__(self, root: etree._Element) -> None:
        # Each node takes two positions at its start (start tag, then its text) and two at its
        # end (end tag, then its tail).
        self.open: dict[etree._Element, int] = {root: 0}
        self.close: dict[etree._Element, int] = {}
        count = 2
        parents, children = [root], [iter(root)]
        while children:
            child = next(children[-1], None)
            if child is None:
                children.pop()
                self.close[parents.pop()] = count
            else:
                self.open[child] = count
                parents.append(child)
                children.append(iter(child))
            count += 2


@dataclass(frozen=True)
class Span:
    """A resolved range: the positions ``start..end`` (inclusive) that it covers."""

    start: int
    end: int

    def covers(self, position: int) -> bool:
        return self.start <= position <= self.end

    def touches(self, open_: int, close: int) -> bool:
        return open_ <= self.end and close >= self.start


class RangeMiss(ExtractError):
    """A range selector's start or end matches nothing in the page."""


def resolve_range(doc: etree._Element, selector: RangeSelector, pos: Positions, role: str) -> Span:
    """The span of a range selector; RangeMiss names the end that matched nothing.

    ``role`` (``select`` or ``remove``) is only used in the message.
    """
    start_css = selector.start_before or selector.start_after or ""
    end_css = selector.end_before or selector.end_after or ""
    starts, ends = css(doc, start_css), css(doc, end_css)
    if not starts:
        raise RangeMiss(
            f'{role} range {describe(selector)}: its start "{start_css}" matches nothing'
        )
    if not ends:
        raise RangeMiss(f'{role} range {describe(selector)}: its end "{end_css}" matches nothing')
    start_el, end_el = starts[0], ends[0]
    start = pos.open[start_el] if selector.start_before else pos.close[start_el] + 1
    end = pos.open[end_el] - 1 if selector.end_before else pos.close[end_el]
    return Span(start, end)


def _append_text(parent: etree._Element, text: str | None) -> None:
    if not text:
        return
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _shallow_copy(element: etree._Element) -> etree._Element:
    """The element without children; names the HTML parser accepted but XML rejects are
    replaced (tag) or skipped (attributes such as Vue's ``@click``)."""
    try:
        copy = etree.Element(element.tag)
    except ValueError:
        copy = etree.Element("div")
    for name, value in element.items():
        with contextlib.suppress(ValueError):
            copy.set(name, value)
    return copy


def clone_span(element: etree._Element, span: Span, pos: Positions) -> etree._Element:
    """A copy of ``element`` holding only what ``span`` covers (Range.cloneContents)."""
    copy = _shallow_copy(element)
    if span.covers(pos.open[element] + 1):
        copy.text = element.text
    for child in element:
        if isinstance(child.tag, str) and span.touches(pos.open[child], pos.close[child]):
            copy.append(clone_span(child, span, pos))
            copy[-1].tail = None
        if span.covers(pos.close[child] + 1):
            _append_text(copy, child.tail)
    return copy


def drop(element: etree._Element, keep_tail: bool = True) -> None:
    """Remove an element from its tree, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    if keep_tail and element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def delete_span(element: etree._Element, span: Span, pos: Positions) -> None:
    """Delete what ``span`` covers inside ``element``, in place (Range.deleteContents)."""
    if span.covers(pos.open[element] + 1):
        element.text = None
    for child in list(element):
        open_, close = pos.open[child], pos.close[child]
        tail_covered = span.covers(close + 1)
        if span.start <= open_ and close <= span.end:
            drop(child, keep_tail=not tail_covered)
            continue
        if isinstance(child.tag, str) and span.touches(open_, close):
            delete_span(child, span, pos)
        if tail_covered:
            child.tail = None


def apply_remove(doc: etree._Element, selectors: Sequence[Selector]) -> None:
    """Remove every element and range that a ``remove`` selector matches (all found first).

    A CSS selector that matches nothing removes nothing, as in Open Terms Archive; a range
    whose start or end matches nothing raises RangeMiss (the page is refused).
    """
    elements = [el for s in selectors if isinstance(s, str) for el in css(doc, s)]
    ranges = [s for s in selectors if isinstance(s, RangeSelector)]
    if ranges:
        pos = Positions(doc)
        spans = [resolve_range(doc, selector, pos, "remove") for selector in ranges]
        for span in spans:
            delete_span(doc, span, pos)
    for element in elements:
        drop(element)


def _without_nested(elements: list[etree._Element]) -> list[etree._Element]:
    """Drop the matches that sit inside another match (they are converted with it)."""
    chosen = set(elements)
    seen: set[etree._Element] = set()
    result = []
    for element in elements:
        if element in seen or any(a in chosen for a in element.iterancestors()):
            continue
        seen.add(element)
        result.append(element)
    return result


@dataclass
class Selection:
    """What ``select`` found: the roots in document order, and what went wrong.

    ``misses`` are selectors that selected nothing (CSS selectors matching nothing, ranges
    whose end comes before their start): the page is refused only when nothing was selected.
    ``broken`` are ranges whose start or end matches nothing: they refuse the page.
    """

    roots: list[etree._Element]
    misses: list[str]
    broken: list[str]


def apply_select(doc: etree._Element, selectors: Sequence[Selector]) -> Selection:
    """The selected roots in document order, with a note for each selector that failed.

    CSS matches nested in another match, or inside a selected range, are dropped so that no
    text appears twice. Ranges are returned as clones.
    """
    misses: list[str] = []
    broken: list[str] = []
    matches: list[etree._Element] = []
    spans: list[Span] = []
    needs_order = len(selectors) > 1 or any(isinstance(s, RangeSelector) for s in selectors)
    pos = Positions(doc) if needs_order else None
    for selector in selectors:
        if isinstance(selector, str):
            found = css(doc, selector)
            if not found:
                misses.append(f"{describe(selector)} matches nothing")
            matches.extend(found)
        elif pos is not None:  # always true for a range: ranges make needs_order true
            try:
                span = resolve_range(doc, selector, pos, "select")
            except RangeMiss as exc:
                broken.append(str(exc))
                continue
            if span.start > span.end:
                misses.append(f"range {describe(selector)}: its end comes before its start")
            else:
                spans.append(span)
    matches = _without_nested(matches)
    if pos is None:
        return Selection(matches, misses, broken)
    pieces: list[tuple[int, etree._Element]] = [
        (pos.open[el], el)
        for el in matches
        if not any(s.start <= pos.open[el] and pos.close[el] <= s.end for s in spans)
    ]
    pieces.extend((span.start, clone_span(doc, span, pos)) for span in spans)
    pieces.sort(key=lambda item: item[0])
    return Selection([el for _, el in pieces], misses, broken)
