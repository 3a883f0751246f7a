"""The tables of the PostgreSQL search index, and how a rebuilt set of them replaces the old.

Everything lives in one schema, ``pa_search`` (beside whatever else the database holds, such
as the archive's state):

- ``meta``: ``head`` (the last indexed commit), ``layout``, ``generation`` (new at every
  commit), ``sections``, ``next_pid``, ``next_run``;
- ``policy``: pid, service, type;
- ``version``: pid, seq, commit id, date (epoch) and UTC offset, length in words, language;
- ``section``: one per distinct section per run of versions: run, pid, ``first`` and
  ``stop`` (the seq it ended at; NULL while open), analyser, words, key, the Markdown,
  ``terms`` (tsvector of the analyser's terms), ``plain`` (folded words, stemmed languages);
- ``vocabulary``: (analyser, kind, term), for prefixes and a word's forms in other languages.

``terms`` and ``plain`` carry RUM indexes (``rum_tsvector_ops``) over all sections and partial
ones over open sections (``WHERE stop IS NULL``), so a current-version query reads only the
postings of current text. A rebuild fills ``pa_search_build`` and swaps it in with two
statements in one transaction (:func:`swap_in`).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

SCHEMA = "pa_search"
BUILD_SCHEMA = "pa_search_build"
LAYOUT = "postgresql-1"
TABLES = ("meta", "policy", "version", "section", "vocabulary")

_TABLES = """
CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.policy (
    pid integer PRIMARY KEY,
    service text NOT NULL,
    type text NOT NULL,
    UNIQUE (service, type)
);
CREATE TABLE {s}.version (
    pid integer NOT NULL,
    seq integer NOT NULL,
    vid text NOT NULL,
    date bigint NOT NULL,
    tz smallint NOT NULL,
    ntoks integer NOT NULL,
    lang text,
    PRIMARY KEY (pid, seq)
);
CREATE TABLE {s}.section (
    run bigint NOT NULL,
    pid integer NOT NULL,
    first integer NOT NULL,
    stop integer,
    analyser text NOT NULL,
    words integer NOT NULL,
    key text NOT NULL,
    body text NOT NULL,
    terms tsvector NOT NULL,
    plain tsvector
);
CREATE TABLE {s}.vocabulary (
    lang text NOT NULL,
    kind "char" NOT NULL,
    term text COLLATE "C" NOT NULL
);
"""

_INDEXES = """
ALTER TABLE {s}.section ADD PRIMARY KEY (run);
ALTER TABLE {s}.vocabulary ADD PRIMARY KEY (lang, kind, term);
CREATE INDEX ON {s}.section (pid, stop);
CREATE INDEX section_terms ON {s}.section USING rum (terms rum_tsvector_ops);
CREATE INDEX section_plain ON {s}.section USING rum (plain rum_tsvector_ops);
CREATE INDEX section_cur_terms ON {s}.section USING rum (terms rum_tsvector_ops)
    WHERE stop IS NULL;
CREATE INDEX section_cur_plain ON {s}.section USING rum (plain rum_tsvector_ops)
    WHERE stop IS NULL;
"""


def _run(conn: psycopg.Connection, script: str, schema: str) -> None:
    for statement in script.format(s=schema).split(";"):
        if statement.strip():
            conn.execute(statement.encode("utf-8"))


def create_tables(conn: psycopg.Connection, schema: str) -> None:
    """A new, empty schema of the index's tables (no indexes yet: a rebuild adds them once
    the rows are in, which is faster than keeping them up to date row by row)."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    _run(conn, _TABLES, schema)


def create_indexes(conn: psycopg.Connection, schema: str) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS rum")
    _run(conn, _INDEXES, schema)


def swap_in(conn: psycopg.Connection) -> None:
    """Replace the index in use by the one built in :data:`BUILD_SCHEMA`, in the caller's
    transaction: searches see the old index until it commits, the new one after (a search
    locks the tables it reads first, so the drop waits for searches under way)."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    conn.execute(
        sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
            sql.Identifier(BUILD_SCHEMA), sql.Identifier(SCHEMA)
        )
    )


def lock_for_reading(conn: psycopg.Connection) -> None:
    """Lock the index's tables for this transaction (before its snapshot is taken), so a
    rebuild swapping them waits until the search is done and never shows it half of each."""
    conn.execute(f"LOCK TABLE {', '.join(f'{SCHEMA}.{t}' for t in TABLES)} IN ACCESS SHARE MODE")
