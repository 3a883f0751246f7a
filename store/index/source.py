"""The texts the index is built from: a version's file, read from git (engine-neutral)."""

from __future__ import annotations

import logging

from store.errors import StoreError
from store.git.versions import Version, VersionStore
from store.paths import policy_path

log = logging.getLogger(__name__)


def read_text(versions: VersionStore, version: Version) -> str | None:
    """The text of ``version``, or None when its commit deleted the file."""
    data = versions.git.read(version.id, policy_path(version.service, version.type))
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
