"""The tantivy schema, and the two tantivy indexes of the index folder.

``sections/`` holds the section, policy and meta documents: one commit there is one new state of
the index (its catalog and head). ``current/`` holds one document per policy with its current
text, apart so that tantivy's collection statistics (documents, average length) are those of
current texts, as BM25 over current versions needs. A writer commits ``current/`` first, then
``sections/``; a reader reloads ``sections/`` first, so what it reads of ``current/`` is never
older than its catalog (at worst a batch newer, until its next reload).

- **cur** (in ``current/``, one per policy, key ``c<pid>``): the policy's *current* text, one
  value per section (so an exact phrase never spans two sections), in ``cur_<lang>`` (stems)
  and ``wcur_<lang>`` (words folded, not stemmed: :func:`word_field`); ``service``, ``type``
  and ``lang`` (casefolded, raw) for filters. Queries on current versions are plain tantivy queries
  on these documents: one document per policy, ranked by tantivy's BM25 of the whole text.
- **sec** (one per distinct section and run of versions it stood in): ``run`` (its id, a fast
  field), the analysed text in ``sec_<lang>`` and ``wsec_<lang>``, and the Markdown in ``text``
  (stored, not indexed: snippets).
  A run's versions live in its policy's catalog entry, not in the document, so a run that ends
  costs no rewrite of its text.
- **pol** (one per policy, key ``p<pid>``): the catalog entry as stored JSON: service, type,
  every version (id, date, UTC offset, words, language) and every run (id, first version, end,
  words, section key). Replaced whenever the policy changes.
- **meta** (key ``meta``): the last indexed commit and the layout version.

Text is analysed in Python by the project's own analysers (:mod:`store.index.analysis`), so
both engines match the same words; tantivy gets the resulting terms joined by spaces and splits
them with its ``whitespace`` tokenizer (positions are the terms' order).
"""

from __future__ import annotations

import tantivy

from store.index.analysis import ANALYSED, PLAIN

LAYOUT = "tantivy-2"
CUR, SEC, POL, META = "cur", "sec", "pol", "meta"
SECTIONS_DIR, CURRENT_DIR = "sections", "current"


CUR_TIER, SEC_TIER = "cur", "sec"


def text_field(tier: str, lang: str) -> str:
    """``cur_en`` (in ``current/``) or ``sec_en`` (sections): the text's stems."""
    return f"{tier}_{lang}"


def word_field(tier: str, lang: str) -> str:
    """The word-for-word twin of a stemmed field (``wcur_fr``): the text folded, not stemmed,
    where words of a query in another language are looked up (as the whoosh engine's
    :func:`store.index.whoosh.schema.word_field`); for a language without a stemmer, the text
    field itself."""
    return text_field(tier, lang) if lang == PLAIN else f"w{tier}_{lang}"


def cur_field(lang: str) -> str:
    return text_field(CUR_TIER, lang)


def sec_field(lang: str) -> str:
    return text_field(SEC_TIER, lang)


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("kind", tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("pid", indexed=True, fast=True)
    builder.add_unsigned_field("run", indexed=True, fast=True)
    for name in ("service", "type", "lang"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field("text", stored=True)  # UTF-8: a section's Markdown, or JSON
    for lang in ANALYSED:
        for tier in (CUR_TIER, SEC_TIER):
            names = {text_field(tier, lang), word_field(tier, lang)}
            for name in sorted(names):
                builder.add_text_field(name, tokenizer_name="whitespace", index_option="position")
    return builder.build()
