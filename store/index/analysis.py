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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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
_WORD = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")  # words; "e.g" and "example.com" are one
_CACHE_LIMIT = 200_000


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
        return [self.term(m.group()) for m in _WORD.finditer(text)]

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
        for pos, match in enumerate(_WORD.finditer(value), start_pos):
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
    return _WORD.finditer(text)


def detect_language(text: str, sample: int = 6000) -> str | None:
    """A cheap guess from stop words; None when no stemmed language clearly wins.

    Used only when the archive does not know a policy's language. A wrong "no idea" costs
    stemming; a wrong guess would stem with foreign rules, so the bar is high.
    """
    words = [w.lower() for w in _WORD.findall(text[:sample])]
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
