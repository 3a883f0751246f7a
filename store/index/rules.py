"""What a query means, the same in every engine: scoring constants, expansion limits, nearness.

Both engines (:mod:`store.index.whoosh`, :mod:`store.index.tantivy`) and the saved-search
matcher (:mod:`archive.search.matching`) read these, so a prefix, an inflected word, a phrase
with ``~N`` or a score means one thing wherever it is evaluated.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

K1, B = 1.2, 0.75
"""BM25's term-frequency saturation and length normalisation."""
MAX_EXPANSION = 128
"""Most distinct index words a prefix (``retent*``) or an inflection may stand for."""
MIN_PREFIX = 2
"""Fewest letters before a ``*``."""
INFLECTED = 6
"""A query word this long or longer also finds its inflections (words sharing a stem)."""
MAX_FORM_CANDIDATES = 1024
"""Most index words looked at when finding a word's forms in another language's text."""
MAX_COMBINATIONS = 8
"""Most phrases one phrase with several forms per word is tried as."""


def near_count(positions: Sequence[Sequence[int]], slop: int) -> int:
    """How many occurrences of the first word begin the words in order (each at a position
    after the one before) with at most ``slop`` other words between them in all."""
    count = 0
    n = len(positions)
    for start in positions[0]:
        at = start
        for later in positions[1:]:
            i = bisect_right(later, at)
            if i == len(later):
                return count  # no later start can do better
            at = later[i]
            if at - start - (n - 1) > slop:
                break
        else:
            count += 1
    return count
