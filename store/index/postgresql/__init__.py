"""The PostgreSQL engine behind :class:`store.index.base.SearchIndex` (full-text search in a
shared database, read from streaming replicas; psycopg 3)."""

from store.index.postgresql.engine import PostgresIndex

__all__ = ["PostgresIndex"]
