"""The texts the index is built from: a version's file, read from git (engine-neutral)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from store.errors import StoreError
from store.git.versions import Version, VersionStore
from store.paths import policy_path

log = logging.getLogger(__name__)


def read_text(versions: VersionStore, version: Version) -> str | None:
    """The text of ``version``, or None when its commit deleted the file."""
    data = versions.git.read(version.id, policy_path(version.service, version.type))
    return _decoded(version, data)


def read_texts(versions: VersionStore, todo: Sequence[Version]) -> list[str | None]:
    """:func:`read_text` of each version, read from git in one go."""
    found = versions.git.read_many([(v.id, policy_path(v.service, v.type)) for v in todo])
    return [_decoded(v, data) for v, data in zip(todo, found, strict=True)]


def _decoded(version: Version, data: bytes | None) -> str | None:
    if data is None:
        log.warning(
            "indexing %s %s at %s as empty: no file in that commit",
            version.service,
            version.type,
            version.id[:10],
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoreError(
            f"version {version.id} of {version.service} {version.type} is not UTF-8: {exc}"
        ) from None


def texts_ahead(
    versions: VersionStore, groups: Iterable[list[Version]]
) -> Iterator[list[str | None]]:
    """:func:`read_texts` of each group of versions, in order, the next group read from git
    (in a thread: git does the work, the GIL is free) while the caller works on this one."""
    with ThreadPoolExecutor(1, thread_name_prefix="index-read") as pool:
        pending: Future[list[str | None]] | None = None
        for group in groups:
            ahead = pool.submit(read_texts, versions, group)
            if pending is not None:
                yield pending.result()
            pending = ahead
        if pending is not None:
            yield pending.result()
