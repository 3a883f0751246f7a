"""``/export``: a form (format, date, service, type, with a size estimate), and the dataset
streamed for ``?format=jsonl|zip|csv&at=&service=&type=``.

The same exports as ``policy-archive export`` (see :mod:`archive.research.export`). The bare
URL (or ``?preview=1``) is the form, so following a link never starts a large download; an
explicit ``format`` downloads. Options are checked before the first byte is sent (400 for a bad
format or date, 404 for a service or document type the archive does not have), then the body is
streamed as it is produced.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, abort, render_template, request, stream_with_context

from archive.research.export import (
    FORMATS,
    MEDIA_TYPES,
    ExportError,
    ExportQuery,
    export_stream,
    select,
    suggested_filename,
)
from archive.research.selection import Selection
from webui import queries
from webui.context import archive, choice_arg, date_arg, flag_arg, text_arg

bp = Blueprint("export", __name__)

FORMAT_LABELS = {
    "jsonl": "JSON Lines: one history per line, full texts (what `import` reads)",
    "zip": "Zip: one Markdown file per version, a manifest and a README",
    "csv": "CSV: one row per version, metadata and word counts (no texts)",
}
SAMPLE = 40
"""Texts read to estimate an export's size (evenly spread over the selection)."""
OVERHEAD = {"jsonl": 260, "zip": 420, "csv": 200}
"""Bytes per version besides its text (metadata, JSON keys, zip headers, a CSV row)."""
TEXT_SHARE = {"jsonl": 1.04, "zip": 0.3, "csv": 0.0}
"""How much of a text's size each format writes (JSON escapes; deflate; CSV has no texts)."""


@dataclass(frozen=True)
class Estimate:
    versions: int
    documents: int
    services: int
    bytes: dict[str, int]


def estimate(selection: Selection) -> Estimate:
    """Roughly how large each format of ``selection`` is: its versions times the mean size of
    a sample of their texts (reading every text would cost as much as the export)."""
    items = [(p, i) for p in selection.policies for i in p.items]
    step = max(1, len(items) // SAMPLE)
    sample = items[::step][:SAMPLE]
    versions = archive().versions
    sizes = [len(versions.text(p.service, p.type, i.version.id).encode("utf-8")) for p, i in sample]
    mean = sum(sizes) / len(sizes) if sizes else 0.0
    per_format = {
        fmt: round(len(items) * (mean * TEXT_SHARE[fmt] + OVERHEAD[fmt])) for fmt in FORMATS
    }
    return Estimate(len(items), len(selection.policies), selection.services, per_format)


def human_size(size: int) -> str:
    """``1234567`` → ``"1.2 MB"`` (decimal units, as downloads are usually shown)."""
    value = float(size)
    for unit in ("bytes", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def export_query() -> ExportQuery:
    return ExportQuery(
        at=date_arg("at"),
        service=text_arg("service", max_chars=200) or None,
        type=text_arg("type", max_chars=200) or None,
    )


@bp.get("/export")
def export() -> Response | tuple[str, int]:
    if "format" not in request.args or flag_arg("preview"):
        return form()
    fmt = choice_arg("format", FORMATS)
    query = export_query()
    try:
        selection, chunks = export_stream(archive(), fmt, query)
    except ExportError as exc:
        abort(404, description=str(exc))
    response = Response(stream_with_context(chunks), mimetype=MEDIA_TYPES[fmt])
    response.headers["Content-Type"] = MEDIA_TYPES[fmt]
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{suggested_filename(fmt, query)}"'
    )
    response.headers["X-Export-Versions"] = str(selection.versions)
    response.headers["Cache-Control"] = "no-store"
    return response


def form() -> tuple[str, int]:
    """The export form with the size of what it would download (404 for an unknown name)."""
    fmt = choice_arg("format", FORMATS)
    query = export_query()
    error = None
    sizes = None
    try:
        sizes = estimate(select(archive(), query))
    except ExportError as exc:
        error = str(exc)
    rows = queries.all_policies()
    page = render_template(
        "export.html",
        fmt=fmt,
        formats=FORMAT_LABELS,
        at=request.args.get("at", "").strip()[:64],
        query=query,
        services=sorted({r.service for r in rows}, key=str.casefold),
        types=sorted({r.type for r in rows}, key=str.casefold),
        estimate=sizes,
        human_size=human_size,
        error=error,
    )
    return page, 404 if error else 200
