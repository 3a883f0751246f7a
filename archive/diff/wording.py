"""What changed for a reader: each changed unit classified as wording, formatting or a move.

Inside a changed run of units (see :mod:`archive.diff`), the old and new units are paired by
what a reader sees (:class:`archive.diff.reading.Reading`), and each pair or lone unit becomes
an :class:`Edit`:

- ``formatting``: the reading text is the same (emphasis marks, list markers, link targets,
  anchor ids, a setext underline's length, white space, table pipes and alignment, a heading
  that became a bold line), or differs only by a leading section number (``4. Cookies`` →
  ``5. Cookies``: renumbering); a lone unit with no words (an underline, a rule) too;
- ``replace``: the words changed: reading spans word by word (table rows cell by cell);
- ``insert`` / ``delete``: a unit with words appeared or went;
- ``moved`` (at its new place, with its own edits inside) and ``moved-away`` (at its old
  place): a deleted and an inserted unit of the same or nearly the same words, in different
  places, found by :func:`find_moves`.

Words added and removed count wording only: a move counts its inner edits, formatting nothing.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from archive.diff.reading import Reading

EQUAL, INSERT, DELETE = "equal", "insert", "delete"
FORMATTING, REPLACE, MOVED, MOVED_AWAY = "formatting", "replace", "moved", "moved-away"
WORDING = frozenset({REPLACE, INSERT, DELETE, MOVED})
MOVE_MIN_WORDS = 5
"""Shortest unit (in words) that can be recognised as moved: shorter ones recur by chance."""
MOVE_SIMILARITY = 0.75
"""Word similarity (difflib ratio) above which a deleted and an inserted unit are one move."""
MOVE_MAX_PAIRS = 10_000
"""Largest (deleted × inserted units) compared for near-identical moves (exact ones always)."""
PAIR_SIMILARITY = 0.5
"""Word similarity above which two units of a changed run are shown as one edited unit."""

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Span:
    """A piece of text that is unchanged, inserted or deleted."""

    op: str
    text: str

    def as_json(self) -> dict[str, str]:
        return {"op": self.op, "text": self.text}


WordDiff = Callable[[str, str], list[Span]]
"""Word-level spans between two reading texts (the engine's, within its time budget)."""


@dataclass(frozen=True)
class Edit:
    """One unit of a change as a reader sees it (``old``/``new``: 0-based unit indexes).

    ``spans`` are reading-text spans; a table row also has ``cells``, the spans of each
    cell. ``move`` numbers a move from 1: its ``moved`` and ``moved-away`` edits share it.
    """

    kind: str
    old: int | None
    new: int | None
    spans: tuple[Span, ...] = ()
    cells: tuple[tuple[Span, ...], ...] = ()
    move: int = 0
    section: str | None = None
    """The heading in force where a reader finds the unit (set by the engine)."""

    @property
    def wording(self) -> bool:
        return self.kind in WORDING

    @property
    def words_added(self) -> int:
        return count_words(self.spans, INSERT) if self.wording else 0

    @property
    def words_removed(self) -> int:
        return count_words(self.spans, DELETE) if self.wording else 0


def count_words(spans: Sequence[Span], op: str) -> int:
    return sum(len(_WORD.findall(s.text)) for s in spans if s.op == op)


def edits_of_run(
    old: Sequence[Reading],
    new: Sequence[Reading],
    old_start: int,
    new_start: int,
    word_diff: WordDiff,
    until: float = math.inf,
) -> list[Edit]:
    """The edits of one changed run (``old``/``new``: its units' readings), in reading order
    (units are paired by similarity until ``until``, a :func:`time.monotonic` deadline)."""
    return [
        edit_of(
            None if i is None else old[i],
            None if j is None else new[j],
            None if i is None else old_start + i,
            None if j is None else new_start + j,
            word_diff,
        )
        for i, j in pair_units(old, new, until)
    ]


def pair_units(
    old: Sequence[Reading], new: Sequence[Reading], until: float = math.inf
) -> list[tuple[int | None, int | None]]:
    """Old and new units paired in order: one to one when the counts match, else by their
    reading text (same or similar words; past ``until``, in order), the rest alone."""
    if len(old) == len(new):
        return [(k, k) for k in range(len(old))]
    keys_a, keys_b = [r.key for r in old], [r.key for r in new]
    pairs: list[tuple[int | None, int | None]] = []
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            pairs += zip(range(i1, i2), range(j1, j2), strict=True)
        else:
            pairs += _pair_similar(keys_a, keys_b, i1, i2, j1, j2, until)
    return pairs


def _pair_similar(
    keys_a: list[str], keys_b: list[str], i1: int, i2: int, j1: int, j2: int, until: float
) -> list[tuple[int | None, int | None]]:
    """Greedy in-order pairing of similar units; a unit with no partner stands alone. Past
    ``until``, the rest are paired in order (a rough but bounded answer)."""
    out: list[tuple[int | None, int | None]] = []
    i, j = i1, j1
    while i < i2 and j < j2:
        if time.monotonic() > until:
            n = min(i2 - i, j2 - j)
            out += zip(range(i, i + n), range(j, j + n), strict=True)
            i, j = i + n, j + n
            break
        if _similarity(keys_a[i], keys_b[j]) >= PAIR_SIMILARITY:
            out.append((i, j))
            i, j = i + 1, j + 1
        elif j + 1 < j2 and _similarity(keys_a[i], keys_b[j + 1]) >= PAIR_SIMILARITY:
            out.append((None, j))
            j += 1
        else:
            out.append((i, None))
            i += 1
    out += [(k, None) for k in range(i, i2)]
    out += [(None, k) for k in range(j, j2)]
    return out


def _similarity(a: str, b: str) -> float:
    wa, wb = a.split(), b.split()
    if not wa or not wb:
        return 1.0 if wa == wb else 0.0
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    if matcher.real_quick_ratio() < PAIR_SIMILARITY or matcher.quick_ratio() < PAIR_SIMILARITY:
        return 0.0
    return matcher.ratio()


def edit_of(
    x: Reading | None, y: Reading | None, old: int | None, new: int | None, word_diff: WordDiff
) -> Edit:
    """Classify one pair (or a lone unit) and diff its reading text."""
    if x is not None and y is not None:
        if formatting_only(x, y):
            return Edit(FORMATTING, old, new, _shown(y))
        spans, cells = diff_readings(x, y, word_diff)
        return Edit(REPLACE, old, new, spans, cells)
    lone = x if x is not None else y
    assert lone is not None
    op = DELETE if y is None else INSERT
    if not _WORD.search(lone.key):
        return Edit(FORMATTING, old, new, () if y is None else _shown(y))
    cells = tuple((Span(op, c),) if c else () for c in lone.cells)
    return Edit(op, old, new, (Span(op, lone.text),) if lone.text else (), cells)


def formatting_only(x: Reading, y: Reading) -> bool:
    """Whether a reader sees the same words (the same, or renumbered)."""
    return x.key == y.key or (bool(x.unnumbered) and x.unnumbered == y.unnumbered)


def _shown(y: Reading) -> tuple[Span, ...]:
    return (Span(EQUAL, y.text),) if y.text else ()


def diff_readings(
    x: Reading, y: Reading, word_diff: WordDiff
) -> tuple[tuple[Span, ...], tuple[tuple[Span, ...], ...]]:
    """Reading spans of an edited unit; for two table rows, also the spans cell by cell."""
    if not (x.tag == y.tag == "tr"):
        return tuple(word_diff(x.text, y.text)), ()
    cells: list[tuple[Span, ...]] = []
    matcher = difflib.SequenceMatcher(None, x.cells, y.cells, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
            for a, b in zip(x.cells[i1:i2], y.cells[j1:j2], strict=True):
                cells.append((Span(EQUAL, b),) if a == b else tuple(word_diff(a, b)))
            continue
        cells += [(Span(DELETE, c),) for c in x.cells[i1:i2]]
        cells += [(Span(INSERT, c),) for c in y.cells[j1:j2]]
    flat: list[Span] = []
    for k, cell in enumerate(cells):
        for span in ((Span(EQUAL, " | "),) if k else ()) + cell:
            if flat and flat[-1].op == span.op:
                flat[-1] = Span(span.op, flat[-1].text + span.text)
            else:
                flat.append(span)
    return tuple(flat), tuple(cells)


Place = tuple[int, int]
"""An edit's place: (run, position in the run)."""


def find_moves(
    runs: list[list[Edit]],
    old: Sequence[Reading],
    new: Sequence[Reading],
    word_diff: WordDiff,
    until: float = math.inf,
) -> list[list[Edit]]:
    """Turn a deleted unit and an inserted unit of the same (or nearly the same) words, in
    different runs, into one move: ``moved-away`` at the old place, ``moved`` (with the
    edits between the two) at the new place. Near-identical units are sought only until
    ``until`` (a :func:`time.monotonic` deadline: the diff's budget); exact ones always."""

    def old_key(place: Place) -> str:
        index = runs[place[0]][place[1]].old
        assert index is not None
        return old[index].key

    def new_key(place: Place) -> str:
        index = runs[place[0]][place[1]].new
        assert index is not None
        return new[index].key

    def places(kind: str) -> list[Place]:
        return [(r, k) for r, run in enumerate(runs) for k, e in enumerate(run) if e.kind == kind]

    def long_enough(text: str) -> bool:
        return len(_WORD.findall(text)) >= MOVE_MIN_WORDS

    by_key: dict[str, list[Place]] = {}
    for place in places(INSERT):
        if long_enough(new_key(place)):
            by_key.setdefault(new_key(place), []).append(place)
    matches: list[tuple[Place, Place]] = []
    rest: list[Place] = []
    for place in places(DELETE):
        text = old_key(place)
        if not long_enough(text):
            continue
        same = [c for c in by_key.get(text, []) if c[0] != place[0]]
        if same:
            matches.append((place, same[0]))
            by_key[text].remove(same[0])
        else:
            rest.append(place)
    left = [c for cs in by_key.values() for c in cs]
    if len(rest) * len(left) <= MOVE_MAX_PAIRS:  # near-identical: edited while moved
        for place in rest:
            if time.monotonic() > until:
                break
            a = old_key(place)
            scored = [(_similarity(a, new_key(c)), c) for c in left if c[0] != place[0]]
            score, best = max(scored, default=(0.0, None))
            if best is not None and score >= MOVE_SIMILARITY:
                matches.append((place, best))
                left.remove(best)
    matches += _neighbours(matches, runs, old, new)
    out = [list(run) for run in runs]
    for number, ((r1, k1), (r2, k2)) in enumerate(sorted(matches, key=lambda m: m[1]), 1):
        gone, came = runs[r1][k1], runs[r2][k2]
        assert gone.old is not None and came.new is not None
        x, y = old[gone.old], new[came.new]
        cells: tuple[tuple[Span, ...], ...]
        if formatting_only(x, y):  # moved as it was (or only renumbered)
            spans, cells = _shown(y), tuple((Span(EQUAL, c),) for c in y.cells)
        else:
            spans, cells = diff_readings(x, y, word_diff)
        out[r1][k1] = replace(gone, kind=MOVED_AWAY, spans=(), cells=(), move=number)
        out[r2][k2] = Edit(MOVED, gone.old, came.new, spans, cells, move=number)
    return out


def _neighbours(
    matches: list[tuple[Place, Place]],
    runs: list[list[Edit]],
    old: Sequence[Reading],
    new: Sequence[Reading],
) -> list[tuple[Place, Place]]:
    """Short units that moved with a moved neighbour (a section's heading, a one-line item):
    a deleted unit next to a move's old place and an inserted unit next to its new place,
    with the same words, moved too."""
    gone = {
        e.old: (r, k) for r, run in enumerate(runs) for k, e in enumerate(run) if e.kind == DELETE
    }
    came = {
        e.new: (r, k) for r, run in enumerate(runs) for k, e in enumerate(run) if e.kind == INSERT
    }
    for a, b in matches:
        gone.pop(runs[a[0]][a[1]].old, None)
        came.pop(runs[b[0]][b[1]].new, None)
    found: list[tuple[Place, Place]] = []
    todo = [(runs[a[0]][a[1]].old, runs[b[0]][b[1]].new) for a, b in matches]
    while todo:
        i, j = todo.pop()
        assert i is not None and j is not None
        for step in (-1, 1):
            x, y = _worded(old, i, step), _worded(new, j, step)
            if x not in gone or y not in came or gone[x][0] == came[y][0]:
                continue
            same = formatting_only(old[x], new[y])
            if same or _similarity(old[x].key, new[y].key) >= MOVE_SIMILARITY:
                found.append((gone.pop(x), came.pop(y)))
                todo.append((x, y))
    return found


def _worded(side: Sequence[Reading], index: int, step: int) -> int:
    """The nearest unit with words from ``index`` in direction ``step`` (-1 if none)."""
    index += step
    while 0 <= index < len(side) and not _WORD.search(side[index].key):
        index += step
    return index if 0 <= index < len(side) else -1
