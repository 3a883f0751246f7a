"""What an alert says: the facts queued in the outbox, turned into links and a change summary.

The outbox keeps only facts (ids, dates, names); the texts, the diff and the links are built at
delivery time from git, the same way on every retry, so a retried webhook carries the same body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from archive.diff import DiffCache, diff_versions
from archive.diff.summary import ChangeSummary, Passage, passages, summary_of
from store.paths import url_segment

if TYPE_CHECKING:
    from archive.app import Archive

VERSION_RECORDED = "version_recorded"
SEARCH_MATCHED = "search_matched"
SEARCH_UNMATCHED = "search_unmatched"
POLICY_FAILING = "policy_failing"
POLICY_RECOVERED = "policy_recovered"
POLICY_FLAPPING = "policy_flapping"
CONFIRM = "confirm"
VERSION_EVENTS = (VERSION_RECORDED, SEARCH_MATCHED, SEARCH_UNMATCHED)


def _q(value: str) -> str:
    """A service or type name as a URL path segment, as the web UI's routes spell it."""
    return quote(url_segment(value), safe="")


class Links:
    """URLs of the web UI (``[web] base_url``) that alerts point to."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def policy(self, service: str, type_: str) -> str:
        return f"{self.base}/policies/{_q(service)}/{_q(type_)}"

    def diff(self, service: str, type_: str, old: str, new: str) -> str:
        return f"{self.policy(service, type_)}/diff?{urlencode({'from': old, 'to': new})}"

    def version(self, service: str, type_: str, version_id: str) -> str:
        return f"{self.policy(service, type_)}?{urlencode({'version': version_id})}"

    def raw(self, service: str, type_: str, version_id: str) -> str:
        """The JSON API's view of one version (its text and metadata)."""
        return (
            f"{self.base}/api/policies/{_q(service)}/{_q(type_)}?"
            f"{urlencode({'version': version_id})}"
        )

    def unsubscribe(self, token: str) -> str:
        return f"{self.base}/alerts/unsubscribe/{token}"

    def confirm(self, token: str) -> str:
        return f"{self.base}/alerts/confirm/{token}"


@dataclass(frozen=True)
class AlertContent:
    """One alert, ready to render for any channel."""

    alert_id: str
    event: str
    facts: dict[str, Any]
    created: str
    links: dict[str, str] = field(default_factory=dict)
    summary: ChangeSummary | None = None
    passages: tuple[Passage, ...] = ()
    more_passages: int = 0
    """Changed passages left out of ``passages`` (see the full diff)."""

    @property
    def service(self) -> str:
        return str(self.facts.get("service", ""))

    @property
    def type(self) -> str:
        return str(self.facts.get("type", ""))

    @property
    def title(self) -> str:
        """A one-line title (email subject, chat message title)."""
        label = f"{self.service} {self.type}"
        if self.event == VERSION_RECORDED:
            first = self.facts.get("previous") is None
            return f"{'Now tracking' if first else 'Change to'} {label}"
        if self.event == SEARCH_MATCHED:
            return f"{label} now matches “{self.facts['query']}”"
        if self.event == SEARCH_UNMATCHED:
            return f"{label} no longer matches “{self.facts['query']}”"
        if self.event == POLICY_FAILING:
            return f"{label}: {self.facts['failures']} failed checks in a row"
        if self.event == POLICY_RECOVERED:
            return f"{label} is fetched again"
        if self.event == POLICY_FLAPPING:
            return f"{label} flaps between two texts: alerts held"
        return "Confirm your Policy Archive subscription"


class ContentBuilder:
    """Builds :class:`AlertContent` from outbox facts. The change summary is the diff
    engine's (:func:`archive.diff.summary.summary_of`, persisted in state: the web and every
    channel report the same counts and sections); diffs are cached per version pair."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.links = Links(archive.config.web.base_url)
        self.diffs = DiffCache(maxsize=32)

    def summary(
        self, service: str, type_: str, old: str | None, new: str
    ) -> tuple[ChangeSummary, list[Passage], int]:
        """The summary of a change and its passages (with the number left out)."""
        versions = self.archive.versions
        old_v = versions.version(service, type_, old) if old else None
        new_v = versions.version(service, type_, new)
        summary = summary_of(versions, old_v, new_v, diffs=self.diffs, state=self.archive.state)
        shown, more = passages(diff_versions(versions, old_v, new_v, cache=self.diffs))
        return summary, shown, more

    def build(self, alert_id: str, event: str, facts_json: str, created: str) -> AlertContent:
        facts = json.loads(facts_json)
        if event not in VERSION_EVENTS:
            links = {}
            if facts.get("service"):
                links["policy"] = self.links.policy(facts["service"], facts["type"])
            if event == POLICY_FLAPPING and facts.get("previous") and facts.get("version"):
                service, type_ = facts["service"], facts["type"]
                links["diff"] = self.links.diff(service, type_, facts["previous"], facts["version"])
                links["version"] = self.links.version(service, type_, facts["version"])
            return AlertContent(alert_id, event, facts, created, links)
        service, type_ = facts["service"], facts["type"]
        new, old = facts["version"], facts.get("previous")
        links = {
            "policy": self.links.policy(service, type_),
            "version": self.links.version(service, type_, new),
            "raw": self.links.raw(service, type_, new),
        }
        if old:
            links["diff"] = self.links.diff(service, type_, old, new)
        if facts.get("source_url"):
            links["source"] = facts["source_url"]
        summary, shown, more = self.summary(service, type_, old, new)
        return AlertContent(alert_id, event, facts, created, links, summary, tuple(shown), more)
