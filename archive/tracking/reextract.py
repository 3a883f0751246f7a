"""Re-extraction: rebuild each policy's text from its latest stored snapshot with today's extractor.

The rules are those of the declaration valid at the snapshot's date: for a policy declared in a
``<Service>.json`` with a ``<Service>.history.json`` beside it, the history entry whose
``validUntil`` is the first at or after the snapshot's date, else the current declaration
(:func:`archive.declarations.policy_at`).

A difference is recorded as a ``Re-extract`` commit dated now. Such commits change what the
archive shows and searches, but they are not changes at the source: they never alert anyone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from archive.app import Archive
from archive.config import PolicyConfig
from archive.config.declarations import policy_at
from archive.errors import ConfigError, ExtractError
from archive.extract import EXTRACTOR_VERSION, extract_document
from archive.tracking.pipeline import finish_text, text_hash
from store.git.repository import now_utc
from store.git.versions import REEXTRACT, NewVersion, Version


@dataclass(frozen=True)
class ReextractResult:
    service: str
    type: str
    status: str  # "reextracted" | "unchanged" | "no snapshot" | "failed"
    reason: str | None = None
    version: Version | None = None


def reextract_policy(archive: Archive, policy: PolicyConfig) -> ReextractResult:
    snapshot = archive.snapshots.latest(policy.service, policy.type)
    current = archive.versions.current(policy.service, policy.type)
    if snapshot is None or current is None:
        return ReextractResult(policy.service, policy.type, "no snapshot")
    try:
        policy = policy_at(policy, snapshot.date)
    except ConfigError as exc:
        return ReextractResult(policy.service, policy.type, "failed", str(exc))
    if len(snapshot.pages) != len(policy.sources):
        return ReextractResult(
            policy.service,
            policy.type,
            "failed",
            f"the latest snapshot ({snapshot.date.isoformat()}) has {len(snapshot.pages)} "
            f"page(s) but the declaration valid at that date has {len(policy.sources)} "
            "source(s); run a check to fetch them",
        )
    pieces = [
        (source, page.body, page.content_type, page.url)
        for source, page in zip(policy.sources, snapshot.pages, strict=True)
    ]
    try:
        text = finish_text(extract_document(pieces))
    except ExtractError as exc:
        return ReextractResult(policy.service, policy.type, "failed", str(exc))
    if text == archive.versions.text(policy.service, policy.type, current.id):
        return ReextractResult(policy.service, policy.type, "unchanged")
    now = now_utc()
    version = archive.versions.record(
        NewVersion(
            service=policy.service,
            type=policy.type,
            text=text,
            date=now,
            kind=REEXTRACT,
            urls=tuple(p.url for p in snapshot.pages),
            snapshot=snapshot.id,
            content_type=", ".join(p.content_type for p in snapshot.pages),
            extractor_version=EXTRACTOR_VERSION,
            fetched_at=snapshot.date,
        )
    )
    state = archive.state.get(policy.service, policy.type)
    archive.state.put(dataclasses.replace(state, text_hash=text_hash(text), body_hash=None))
    return ReextractResult(policy.service, policy.type, "reextracted", version=version)


def reextract_all(
    archive: Archive,
    policies: Iterable[PolicyConfig],
    on_result: Callable[[ReextractResult], None] | None = None,
) -> list[ReextractResult]:
    results = []
    for policy in policies:
        result = reextract_policy(archive, policy)
        results.append(result)
        if on_result:
            on_result(result)
    archive.catch_up()
    return results
