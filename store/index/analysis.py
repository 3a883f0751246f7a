"""Text analysis: words → index terms, per language.

One analyser per language whoosh has a Snowball stemmer for (English, French, German, ...):
lower case, fold accents, then stem twice; and a plain analyser for every other language
(Estonian, ...): lower case and fold accents, no stemming, so words are still found as written.

Accents are folded *before* stemming, so a word's term does not depend on its accents
(``securite`` and ``sécurité`` are one term, ``donnees`` and ``données`` another). Stemmers
rely on accented suffixes (French ``-ées``), which folding removes; the second pass strips what
the first left of such a suffix (``conservees`` → ``conserve`` → ``conserv``, the term of
``conservation``). Measured on the corpus's vocabulary: of the classes of words the accented
stemmer conflated, none is split in English or German, 129 of 8,436 in French (a single pass
after folding splits 524). Stop words are kept: phrases stay exact (``do not sell`` is not
``sell``), and a common word costs time only when someone searches for it.

The analyser is one tokenizer rather than whoosh's chain of filters: the same steps, a third
less time, which is what indexing mostly costs.

**Mixed languages.** A policy's text is indexed twice: stemmed with its language's stemmer, and
word for word (folded, not stemmed). A query word is read in the *query's* language
(:func:`query_language`): in a policy of that language (or one without a stemmer) it is its
stemmed term, as before; in a policy of another language it is the text's own words that have
the same stem in the query's language (:meth:`PolicyAnalyzer.same_stem`). So ``data`` does not
find French ``date`` (French stems both to ``dat``; English keeps ``data`` and ``date``
apart) and ``arbitration`` finds ``Arbitrators`` in a French text (English stems both to
``arbitr``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from whoosh.analysis import Token, Tokenizer
from whoosh.lang import has_stemmer, stemmer_for_language
from whoosh.lang.stopwords import stoplists
from whoosh.support.charset import accent_map

PLAIN = "xx"
STEMMED = tuple(
    lang
    for lang in (
        "en",
        "fr",
        "de",
        "es",
        "it",
        "nl",
        "pt",
        "da",
        "sv",
        "no",
        "fi",
        "hu",
        "ro",
        "ru",
        "ar",
    )
    if has_stemmer(lang)
)
ANALYSED = (*STEMMED, PLAIN)
WORD = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")  # words; "e.g" and "example.com" are one
_CACHE_LIMIT = 200_000
DEFAULT_QUERY_LANGUAGE = "en" if "en" in STEMMED else PLAIN
MIN_FORM_PREFIX = 3


def field_language(lang: str | None) -> str:
    """The analyser for a language code (``en``, ``fr-CA``, ``et``): its stemmer, or plain."""
    if not lang:
        return PLAIN
    primary = lang.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in STEMMED else PLAIN


def fold(text: str) -> str:
    return text.lower().translate(accent_map)


class PolicyAnalyzer(Tokenizer):
    """Tokenise on words, lower-case, fold accents, stem twice (if the language has a stemmer)."""

    def __init__(self, lang: str = PLAIN) -> None:
        self.lang = lang
        self._setup()

    def _setup(self) -> None:
        self._stem: Callable[[str], str] | None = (
            stemmer_for_language(self.lang) if self.lang != PLAIN else None
        )
        self._cache: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"lang": self.lang}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.lang = state["lang"]
        self._setup()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyAnalyzer) and other.lang == self.lang

    def __hash__(self) -> int:
        return hash(("PolicyAnalyzer", self.lang))

    def __repr__(self) -> str:
        return f"PolicyAnalyzer({self.lang!r})"

    def term(self, word: str) -> str:
        """The index term for one word."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        result = fold(word)
        if self._stem is not None:
            result = self._stem(self._stem(result)).translate(accent_map)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = result
        return result

    def terms(self, text: str) -> list[str]:
        return [self.term(m.group()) for m in WORD.finditer(text)]

    def form_prefix(self, word: str) -> str:
        """What every folded word with the stem of ``word`` starts with (stemmers cut
        suffixes and may change a last letter or two: ``policies``, ``policy`` → ``polici``);
        the whole word when that is under ``MIN_FORM_PREFIX`` letters."""
        folded, stem = fold(word), self.term(word)
        common = 0
        for a, b in zip(folded, stem, strict=False):
            if a != b:
                break
            common += 1
        prefix = folded[: max(common - 1, MIN_FORM_PREFIX)]
        return folded if len(prefix) >= len(folded) else prefix

    def same_stem(self, word: str, candidates: Iterable[str]) -> list[str]:
        """The folded words among ``candidates`` (words of a text, folded) that this analyser
        stems as it stems ``word``, and ``word`` itself if it is among them."""
        folded, stem = fold(word), self.term(word)
        return sorted({c for c in candidates if c == folded or self.term(c) == stem})

    def __call__(  # type: ignore[override]
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        term = self.term
        if not tokenize:
            token.original = token.text = term(value)
            token.boost = 1.0
            token.stopped = False
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        for pos, match in enumerate(WORD.finditer(value), start_pos):
            word = match.group()
            token.text = term(word)
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = word
            if positions:
                token.pos = pos
            if chars:
                token.startchar = start_char + match.start()
                token.endchar = start_char + match.end()
            yield token


def words(text: str) -> Iterator[re.Match[str]]:
    """The words of ``text`` as the analysers see them (with their positions)."""
    return WORD.finditer(text)


def detect_language(text: str, sample: int = 6000) -> str | None:
    """A cheap guess from stop words; None when no stemmed language clearly wins.

    Used only when the archive does not know a policy's language. A wrong "no idea" costs
    stemming; a wrong guess would stem with foreign rules, so the bar is high.
    """
    words = [w.lower() for w in WORD.findall(text[:sample])]
    if len(words) < 20:
        return None
    scores = sorted(
        (
            (sum(1 for w in words if w in stoplists[lang]), lang)
            for lang in STEMMED
            if lang in stoplists
        ),
        reverse=True,
    )
    (best, lang), (second, _) = scores[0], scores[1]
    if best >= 0.12 * len(words) and best >= 2 * second:
        return lang
    return None


def query_language(words: Iterable[str], lang: str | None = None) -> str:
    """The analyser a query's words are read with in policies of other languages: that of
    ``lang`` (a ``lang:`` filter) if given; else the stemmed language with the most stop words
    among the query's words (``de vos données`` is French), if one has more than any other;
    else English."""
    if lang:
        return field_language(lang)
    folded = [fold(w) for w in words]
    scores = sorted(
        ((sum(1 for w in folded if w in _folded_stops(x)), x) for x in STEMMED if x in stoplists),
        reverse=True,
    )
    if scores and scores[0][0] and (len(scores) == 1 or scores[0][0] > scores[1][0]):
        return scores[0][1]
    return DEFAULT_QUERY_LANGUAGE


_STOPS: dict[str, frozenset[str]] = {}


def _folded_stops(lang: str) -> frozenset[str]:
    stops = _STOPS.get(lang)
    if stops is None:
        stops = _STOPS[lang] = frozenset(fold(w) for w in stoplists[lang])
    return stops
