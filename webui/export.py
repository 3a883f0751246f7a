"""``GET /export?format=jsonl|zip|csv&at=&service=&type=``: the dataset, streamed.

The same exports as ``policy-archive export`` (see :mod:`archive.research.export`): options
are checked before the first byte is sent (400 for a bad format or date, 404 for a service or
document type the archive does not have), then the body is streamed as it is produced.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, stream_with_context

from archive.research.export import (
    FORMATS,
    MEDIA_TYPES,
    ExportError,
    ExportQuery,
    export_stream,
    suggested_filename,
)
from webui.context import archive, choice_arg, date_arg, text_arg

bp = Blueprint("export", __name__)


@bp.get("/export")
def export() -> Response:
    fmt = choice_arg("format", FORMATS)
    query = ExportQuery(
        at=date_arg("at"),
        service=text_arg("service", max_chars=200) or None,
        type=text_arg("type", max_chars=200) or None,
    )
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
