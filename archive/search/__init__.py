"""Search as people type it: query syntax, options, and the API the CLI and the web UI call.

Syntax: words must all occur somewhere in the policy (``retention 30 days``, ranked by BM25);
``"30 days"`` is a phrase, ``"retention days"~10`` the words in this order with at most 10 others
between them; ``OR``, ``AND``, ``NOT`` (or ``-word``) and parentheses combine;
``retent*`` is a prefix; ``service:WorkOptima``, ``type:"Privacy Policy"`` and ``lang:fr``
filter. A bad query raises :class:`QueryError` with a message that says how to fix it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from archive.errors import ArchiveError
from archive.search.clauses import ClauseTimeline, when
from store.index import (
    And,
    FieldMatch,
    MatchAll,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    QueryTooBroadError,
    SearchQuery,
    SearchResults,
    Term,
)

if TYPE_CHECKING:
    from archive.app import Archive

__all__ = [
    "MAX_LIMIT",
    "MAX_PAGE",
    "MAX_QUERY_CHARS",
    "ClauseTimeline",
    "QueryError",
    "index_warning",
    "language_resolver",
    "parse_query",
    "search",
    "when",
]

# The limits of a search, the one place they are set: the CLI and the web take theirs from here,
# so both refuse the same queries with the same message.
MAX_QUERY_CHARS = 1000
"""Longest query text (the phrase of a clause timeline has its own, clauses.MAX_PHRASE_CHARS)."""
MAX_TERMS = 64
"""Most words and phrases in one query."""
MAX_DEPTH = 16
"""Deepest nesting of parentheses."""
MAX_SLOP = 50
"""Most words a proximity phrase (``"retention days"~10``) lets stand between its words."""
MAX_LIMIT = 100
"""Most hits on one page of results."""
MAX_PAGE = 1000
"""Highest page of results."""
FIELD_NAMES = {"service": "service", "type": "type", "lang": "lang", "language": "lang"}
_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)(?:"(?:~(\d+)(?=[\s()]|$))?|$)|(\S+?)(?=[\s()"]|$))')
_FIELD = re.compile(r"^([A-Za-z_]+):(.*)$")
_WORDCHAR = re.compile(r"\w")


class QueryError(ArchiveError):
    """A query that cannot be read or answered; the message says what to change."""


# --------------------------------------------------------------------------- parsing


class _Parser:
    """Recursive descent over tokens: OR of ANDs of (NOT) primaries."""

    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.terms = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        """Tokens (kind, text); a phrase with a proximity (``"a b"~N``) is followed by a
        ("slop", N) token."""
        tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                break
            pos = m.end()
            if m.group(1):
                tokens.append(("(", "("))
            elif m.group(2):
                tokens.append((")", ")"))
            elif m.group(3) is not None:
                tokens.append(("phrase", m.group(3)))
                if m.group(4):
                    tokens.append(("slop", m.group(4)))
            elif m.group(5):
                word = m.group(5)
                # field:"quoted value" continues past the quote
                if word.endswith(":") and text[pos : pos + 1] == '"':
                    end = text.find('"', pos + 1)
                    end = len(text) if end < 0 else end
                    tokens.append(("field", word + text[pos + 1 : end]))
                    pos = end + 1
                else:
                    tokens.append(("word", word))
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Node | None:
        node = self.or_expr(0)
        while self.peek() is not None:  # stray ")": read on
            self.pos += 1
            more = self.or_expr(0)
            node = more if node is None else (node if more is None else And((node, more)))
        return node

    def or_expr(self, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            raise QueryError(f"the query nests parentheses more than {MAX_DEPTH} deep")
        parts = [self.and_expr(depth)]
        while self.peek() == ("word", "OR"):
            self.pos += 1
            parts.append(self.and_expr(depth))
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(tuple(kept))

    def and_expr(self, depth: int) -> Node | None:
        parts: list[Node] = []
        while (tok := self.peek()) is not None and tok != (")", ")") and tok != ("word", "OR"):
            if tok == ("word", "AND"):
                self.pos += 1
                continue
            node = self.unary(depth)
            if node is not None:
                parts.append(node)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, depth: int) -> Node | None:
        tok = self.peek()
        assert tok is not None
        if tok == ("word", "NOT"):
            self.pos += 1
            if self.peek() is None:
                return None
            child = self.unary(depth)
            return Not(child) if child is not None else None
        if tok[0] == "word" and tok[1].startswith("-") and tok[1].strip("-"):
            self.tokens[self.pos] = ("word", tok[1].lstrip("-"))
            child = self.unary(depth)
            return Not(child) if child is not None else None
        if (
            tok == ("word", "-")
            and self.pos + 1 < len(self.tokens)
            and self.tokens[self.pos + 1][0] == "phrase"
        ):
            self.pos += 1
            child = self.unary(depth)
            return Not(child) if child is not None else None
        return self.primary(depth)

    def primary(self, depth: int) -> Node | None:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "(":
            node = self.or_expr(depth + 1)
            if self.peek() == (")", ")"):
                self.pos += 1
            return node
        if kind == "phrase":
            slop = 0
            if (tok := self.peek()) is not None and tok[0] == "slop":
                self.pos += 1
                slop = int(tok[1])
                if slop > MAX_SLOP:
                    raise QueryError(
                        f'"…"~{tok[1]}: a proximity search allows at most {MAX_SLOP} words '
                        'between the words of its phrase, e.g. "retention days"~10'
                    )
            return self._phrase(value, slop)
        if kind == "slop":  # stray
            return None
        if kind == "field":
            return self._field(value, quoted=True)
        if kind == ")":
            return None
        m = _FIELD.match(value)
        if m and m.group(2) and (m.group(2)[0].isalnum() or m.group(2)[0] == "*"):
            return self._field(value, quoted=False)
        return self._word(value)

    def _count(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(f"the query has more than {MAX_TERMS} words; shorten it")

    def _phrase(self, value: str, slop: int = 0) -> Node | None:
        words = [w for w in value.split() if _WORDCHAR.search(w)]
        if not words:
            return None
        self._count()
        return Term(words[0]) if len(words) == 1 else Phrase(tuple(words), slop)

    def _word(self, value: str) -> Node | None:
        if value.strip("*") == "":
            return MatchAll()
        if value.endswith("*") and "*" not in value[:-1] and "?" not in value:
            stem = value[:-1]
            if len(_WORDCHAR.findall(stem)) < 2 or not stem.isalnum():
                raise QueryError(
                    f"{value!r}: a prefix search needs at least two letters before the *, "
                    "e.g. retent*"
                )
            self._count()
            return Prefix(stem)
        cleaned = value.replace("*", " ").replace("?", " ")
        words = [w for w in cleaned.split() if _WORDCHAR.search(w)]
        if not words:
            return None
        self._count()
        return Term(words[0]) if len(words) == 1 else Phrase(tuple(words))

    def _field(self, token: str, *, quoted: bool) -> Node:
        name, _, value = token.partition(":")
        field = FIELD_NAMES.get(name.lower())
        if field is None:
            raise QueryError(
                f"unknown field {name!r} in {token!r}: the fields are service:, type: and "
                f'lang:. To search for the text itself, put it in quotes: "{token}"'
            )
        value = value.strip()
        prefix = not quoted and value.endswith("*")
        value = value.rstrip("*") if prefix else value
        if not value:
            raise QueryError(
                f'{name}: needs a value, e.g. service:WorkOptima or type:"Privacy Policy"'
            )
        return FieldMatch(field, value, prefix)


def parse_query(text: str) -> Node:
    """The query tree for what a person typed; raises QueryError for what cannot be read."""
    if not isinstance(text, str):
        raise QueryError("the query must be text")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,}. "
            "Search for a distinctive part of it"
        )
    node = _Parser(text).parse()
    if node is None:
        raise QueryError(
            'the query has no word to search for: type words, a "quoted phrase", or * to list '
            "every policy"
        )
    return node


# --------------------------------------------------------------------------- the API


def language_resolver(archive: Archive) -> Callable[[str, str], str | None]:
    """A policy's language: its ``language`` in the config, else the one an import recorded
    (state meta ``lang:<service>/<type>``), else None (the index guesses from the text)."""
    cache: dict[tuple[str, str], str | None] = {}

    def language_of(service: str, type_: str) -> str | None:
        key = (service, type_)
        if key not in cache:
            policy = archive.config.policy(service, type_)
            lang = policy.language if policy is not None else None
            cache[key] = lang or archive.state.get_meta(f"lang:{service}/{type_}")
        return cache[key]

    return language_of


def index_warning(archive: Archive) -> str | None:
    """Why search results may be incomplete (the index is missing or behind git), with what to
    do about it; None when the index has caught up. Raises IndexDamagedError (a StoreError)
    when the index cannot be read."""
    head = archive.versions.head()
    if not archive.index.exists():
        if head is None:
            return None
        return (
            "warning: there is no search index yet, so nothing is found; it is built the next "
            "time a writer opens the archive (e.g. `policy-archive check`), or run "
            "`policy-archive reindex`"
        )
    if archive.index.indexed_head() != head:
        return (
            "warning: the search index is behind the archive; it catches up the next time "
            "a writer opens the archive (e.g. `policy-archive check`), or run "
            "`policy-archive reindex`"
        )
    return None


def search(
    archive: Archive,
    q: str,
    *,
    history: bool = False,
    service: str | None = None,
    type: str | None = None,
    lang: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 10,
    page: int = 1,
) -> SearchResults:
    """Search the archive. By default each policy's current version is searched; ``history``
    searches every version (a hit then says when the match first and last held); dates select
    the versions in force at some time in the range. ``stale`` in the results says the index
    that answered is missing or behind git's HEAD (see :func:`index_warning`)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    if not 1 <= page <= MAX_PAGE:
        raise QueryError(f"page must be between 1 and {MAX_PAGE}")
    if date_from and date_to and date_from > date_to:
        raise QueryError(f"the range starts ({date_from}) after it ends ({date_to}); swap them")
    query = SearchQuery(
        text=q,
        tree=parse_query(q),
        history=history,
        service=service or None,
        type=type or None,
        lang=lang or None,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        page=page,
    )
    try:
        results = archive.index.search(query)
    except QueryTooBroadError as exc:
        raise QueryError(str(exc)) from None
    return dataclasses.replace(results, stale=results.indexed_head != archive.versions.head())
