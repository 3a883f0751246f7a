"""The policies and versions of one generation of the PostgreSQL index, read into memory.

Searches turn matching sections into versions with the engine-neutral bit sets of
:mod:`store.index.policies`, so each process keeps the table of policies and versions of the
generation it last read (``meta.generation`` changes at every commit), reloaded only when a
search finds a new one. A replica that lags answers with the generation it holds; a catalog
of each of the last two generations is kept, so alternating servers do not reload each time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from store.index.analysis import field_language
from store.index.policies import Policies, PolicyInfo
from store.index.postgresql.schema import SCHEMA

KEEP = 2


@dataclass(frozen=True)
class Catalog:
    generation: str
    layout: str | None
    head: str | None
    sections: int
    policies: dict[int, PolicyInfo]
    table: Policies
    analysers: frozenset[str]
    current_analysers: frozenset[str]
    avg_current: float
    avg_all: float


def read_meta(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(f"SELECT key, value FROM {SCHEMA}.meta").fetchall()
    return {str(k): str(v) for k, v in rows}


def load(conn: psycopg.Connection, meta: dict[str, str]) -> Catalog:
    policies: dict[int, PolicyInfo] = {
        pid: PolicyInfo(pid, service, type_)
        for pid, service, type_ in conn.execute(f"SELECT pid, service, type FROM {SCHEMA}.policy")
    }
    cursor = conn.execute(
        f"SELECT pid, vid, date, tz, ntoks, lang FROM {SCHEMA}.version ORDER BY pid, seq"
    )
    for pid, vid, date, tz, ntoks, lang in cursor:
        info = policies[pid]
        info.vids.append(vid)
        info.dates.append(date)
        info.tzs.append(tz)
        info.ntoks.append(ntoks)
        info.langs.append(lang)
    every = {field_language(x) for p in policies.values() for x in p.langs}
    current = {field_language(p.lang) for p in policies.values() if p.count}
    lengths = [p.ntoks[-1] for p in policies.values() if p.count]
    total = sum(sum(p.ntoks) for p in policies.values())
    count = sum(p.count for p in policies.values())
    return Catalog(
        generation=meta.get("generation", ""),
        layout=meta.get("layout"),
        head=meta.get("head") or None,
        sections=int(meta.get("sections", "0")),
        policies=policies,
        table=Policies(policies),
        analysers=frozenset(every),
        current_analysers=frozenset(current),
        avg_current=sum(lengths) / len(lengths) if lengths else 1.0,
        avg_all=total / count if count else 1.0,
    )


class Catalogs:
    """The catalogs of the last generations read, shared by the process's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_generation: dict[str, Catalog] = {}

    def get(self, conn: psycopg.Connection, meta: dict[str, str]) -> Catalog:
        generation = meta.get("generation", "")
        found = self._by_generation.get(generation)
        if found is not None:
            return found
        catalog = load(conn, meta)  # outside the lock: another thread may read its own
        with self._lock:
            self._by_generation[generation] = catalog
            while len(self._by_generation) > KEEP:
                self._by_generation.pop(next(iter(self._by_generation)))
        return catalog
