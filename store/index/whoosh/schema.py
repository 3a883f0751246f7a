"""The whoosh schema: five kinds of document in one index, so one commit changes all of them.

- **section**: a distinct section of a policy's text and the run of versions it stood in:
  columns ``run`` (its id), ``pid`` (policy), ``seq`` (first version, 0-based in commit order),
  ``end`` (last version + 1; 0 while the run is open, i.e. the section is in the current
  version), ``ntok`` (words); stored ``hash``; and the text, stored for snippets, in the field
  of its tier and of the policy's language: ``cur_en`` while the run is open, ``old_en`` once it
  closed (``cur_xx``/``old_xx`` for languages without a stemmer). A query on current versions
  reads only the ``cur_`` postings, however long the history. Beside each stemmed field, its
  *word-for-word* twin (``wcur_fr``, ``wold_fr``; not stored): the same text folded but not
  stemmed, where words of another language than the policy's are looked up (see
  :func:`store.index.analysis.query_language`).
- **words** (one per policy, key ``b<pid>``): the whole current text of the policy in
  ``bag_<lang>`` (and word for word in ``wbag_<lang>``), word counts only, no positions and
  not stored. Word queries on current
  versions read these: one posting per policy instead of one per section. Replaced when the
  policy changes (columns ``pid``, ``seq``: the version it holds).
- **version**: ``pid``, ``seq``, ``vid`` (commit id), ``date`` (epoch seconds) and ``tz`` (its
  UTC offset in minutes), ``ntok`` (words of the whole version), ``lang``.
- **policy**: ``pid`` and the stored ``service`` and ``type``.
- **meta**: the stored ``head`` (the last commit indexed) and the schema version.

Every document of a policy carries ``policy`` = its pid (removing a policy is one delete);
sections carry ``key`` = ``r<run>`` (closing a run replaces that document). Numbers live in
columns, read into arrays once per segment (see :mod:`store.index.whoosh.catalog`).
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from whoosh import columns, fields
from whoosh.reading import IndexReader

from store.index.analysis import ANALYSED, PLAIN, STEMMED, PolicyAnalyzer

SCHEMA_VERSION = "5"
SECTION, BAG, VERSION, POLICY, META = 1, 2, 3, 4, 5
CURRENT, PAST, WORDS = "cur", "old", "bag"
TIERS = (CURRENT, PAST)
VID_BYTES = 20
LANG_BYTES = 8


def text_field(lang: str, tier: str) -> str:
    """``cur_en``, ``old_en`` (sections, with positions) or ``bag_en`` (current texts)."""
    return f"{tier}_{lang}"


def word_field(lang: str, tier: str) -> str:
    """The word-for-word twin of ``text_field(lang, tier)`` (``wcur_fr``): folded, not
    stemmed; for languages without a stemmer that is the text field itself."""
    return text_field(lang, tier) if lang == PLAIN else f"w{tier}_{lang}"


def is_words_field(name: str) -> bool:
    """Whether ``name`` is a field of the words documents (``bag_en``, ``wbag_en``)."""
    return name.startswith((WORDS + "_", "w" + WORDS + "_"))


def term_key(lang: str, raw: bool) -> str:
    """How a query's terms are filed per field kind for highlighting: ``fr`` (stems of the
    French fields), ``w:fr`` (words looked up word for word in them)."""
    return f"w:{lang}" if raw and lang != PLAIN else lang


def is_text_field(name: str) -> bool:
    return name[:4] in ("cur_", "old_")


def build_schema() -> fields.Schema:
    numeric = {
        "kind": "B",
        "pid": "i",
        "seq": "i",
        "run": "i",
        "end": "i",
        "ntok": "i",
        "date": "q",
        "tz": "h",
    }
    spec: dict[str, Any] = {
        "key": fields.ID(unique=True),
        "policy": fields.ID,
        "vid": fields.COLUMN(columns.FixedBytesColumn(VID_BYTES)),
        "lang": fields.COLUMN(columns.FixedBytesColumn(LANG_BYTES)),
        "hash": fields.STORED,
        "service": fields.STORED,
        "type": fields.STORED,
        "head": fields.STORED,
        "schema_version": fields.STORED,
    }
    for name, code in numeric.items():
        spec[name] = fields.COLUMN(columns.NumericColumn(code))
    for lang in ANALYSED:
        for tier in TIERS:
            spec[text_field(lang, tier)] = fields.TEXT(
                analyzer=PolicyAnalyzer(lang), stored=True, phrase=True
            )
        spec[text_field(lang, WORDS)] = fields.TEXT(
            analyzer=PolicyAnalyzer(lang), stored=False, phrase=False
        )
    for lang in STEMMED:
        for tier in TIERS:
            spec[word_field(lang, tier)] = fields.TEXT(
                analyzer=PolicyAnalyzer(PLAIN), stored=False, phrase=True
            )
        spec[word_field(lang, WORDS)] = fields.TEXT(
            analyzer=PolicyAnalyzer(PLAIN), stored=False, phrase=False
        )
    return fields.Schema(**spec)


def encode_vid(version_id: str) -> bytes:
    raw = bytes.fromhex(version_id)
    return raw[:VID_BYTES].ljust(VID_BYTES, b"\0")


def encode_lang(lang: str | None) -> bytes:
    return (lang or "").encode("ascii", "replace")[:LANG_BYTES].ljust(LANG_BYTES, b"\0")


def decode_lang(raw: bytes) -> str | None:
    return raw.rstrip(b"\0").decode("ascii") or None


def number_column(reader: IndexReader, name: str, typecode: str) -> array:
    """A numeric column of one segment as an array, one item per document (0 if absent).

    Reads the column's bytes in one go where the column is whoosh's fixed-width one; any
    other reader is read value by value (the same result, slower).
    """
    count = reader.doc_count_all()
    column = reader.column_reader(name, translate=False)
    if isinstance(column, columns.EmptyColumnReader):
        return array(typecode, [0]) * count
    if isinstance(column, columns.NumericColumn.Reader):
        size = column._fixedlen
        stored = min(column._count, count)
        values = array(typecode)
        values.frombytes(column._dbfile.get(column._basepos, stored * size))
        if sys.byteorder == "little" and size > 1:
            values.byteswap()
        if stored < count:
            values.extend(array(typecode, [0]) * (count - stored))
        return values
    return array(typecode, (int(column[i] or 0) for i in range(count)))


def bytes_column(reader: IndexReader, name: str, width: int) -> bytes:
    """A fixed-width bytes column of one segment: ``width`` bytes per document."""
    count = reader.doc_count_all()
    column = reader.column_reader(name, translate=False)
    if isinstance(column, columns.EmptyColumnReader):
        return b"\0" * (width * count)
    if isinstance(column, columns.FixedBytesColumn.Reader):
        stored = min(column._count, count)
        data = column._dbfile.get(column._basepos, stored * width)
        return data + b"\0" * (width * (count - stored))
    return b"".join(bytes(column[i] or b"\0" * width) for i in range(count))
