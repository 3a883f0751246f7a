"""Atom feeds of changes: all, per service, per policy. Re-extract commits are left out.

Built with :mod:`xml.etree.ElementTree`, which escapes every text and attribute. Entries carry
the change's summary (:mod:`archive.diff.summary`: words added and removed, sections touched,
the main edits, as the diff page, e-mails and webhooks say) when it is known or can be computed
within the feed's time budget; the link always leads to the diff page.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, url_for

from archive.diff.summary import ChangeSummary
from store.git.versions import Version
from webui import queries
from webui.changes import change_summaries
from webui.context import policy_or_404, web_state

bp = Blueprint("feeds", __name__)

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 30
SUMMARY_BUDGET = 1.5
"""Seconds a feed may spend computing change summaries that are not cached yet."""


def absolute(path: str) -> str:
    return web_state().config.web.base_url.rstrip("/") + path


def summary_text(version: Version, found: ChangeSummary | None) -> str:
    """An entry's summary: counts, sections and the main edits, in plain text."""
    if found is not None and found.first:
        return f"Started tracking {version.service} {version.type}."
    if found is None:
        return "Open the link to see what changed."
    text = f"{found.words_added} words added, {found.words_removed} removed"
    if found.formatting_changes:
        n = found.formatting_changes
        text += f"; {n} formatting-only change{'s' if n != 1 else ''}"
    if found.sections:
        text += "; sections: " + ", ".join(found.sections[:8])
    text += "."
    if found.excerpts:
        text += " Main edits: " + "; ".join(str(e) for e in found.excerpts) + "."
    return text


def atom(title: str, self_path: str, versions: list[Version]) -> Response:
    feed = ET.Element("feed", xmlns=ATOM)
    ET.SubElement(feed, "title").text = title
    ET.SubElement(feed, "id").text = absolute(self_path)
    ET.SubElement(feed, "link", rel="self", href=absolute(self_path))
    ET.SubElement(feed, "link", rel="alternate", href=absolute(url_for("changes.changes")))
    updated = versions[0].date if versions else datetime(1970, 1, 1, tzinfo=UTC)
    ET.SubElement(feed, "updated").text = updated.isoformat()
    author = ET.SubElement(feed, "author")
    ET.SubElement(author, "name").text = "Policy Archive"
    summaries = change_summaries(versions, budget=SUMMARY_BUDGET)
    for version in versions:
        link = absolute(queries.diff_url(version))
        entry = ET.SubElement(feed, "entry")
        label = queries.KIND_LABELS.get(version.kind, version.kind)
        ET.SubElement(entry, "title").text = f"{version.service} {version.type}: {label.lower()}"
        ET.SubElement(entry, "id").text = link
        ET.SubElement(entry, "link", rel="alternate", href=link)
        ET.SubElement(entry, "updated").text = version.date.isoformat()
        ET.SubElement(entry, "summary").text = summary_text(version, summaries[version.id])
    body = ET.tostring(feed, encoding="unicode", xml_declaration=True)
    return Response(body, mimetype="application/atom+xml")


def latest(service: str | None = None, type_: str | None = None) -> list[Version]:
    return queries.recent_changes(
        service=service, type_=type_, per_page=ENTRIES, reextracts=False
    ).changes


@bp.get("/feeds/changes.atom")
def all_changes() -> Response:
    return atom("Policy Archive: all changes", url_for("feeds.all_changes"), latest())


@bp.get("/feeds/services/<name:service>.atom")
def service_changes(service: str) -> Response:
    if not any(s == service for s, _ in web_state().archive.versions.policies()):
        abort(404, description=f"There is no service {service!r} in this archive.")
    path = url_for("feeds.service_changes", service=service)
    return atom(f"Policy Archive: {service}", path, latest(service=service))


@bp.get("/feeds/policies/<name:service>/<name:type_>.atom")
def policy_changes(service: str, type_: str) -> Response:
    ref = policy_or_404(service, type_)
    path = url_for("feeds.policy_changes", service=service, type_=type_)
    return atom(f"Policy Archive: {service} {type_}", path, latest(ref.service, ref.type))
