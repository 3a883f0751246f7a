"""Recent changes across the archive, filterable by service and document type."""

from __future__ import annotations

from flask import Blueprint, render_template

from webui import queries
from webui.context import archive, page_arg, text_arg

bp = Blueprint("changes", __name__)


def change_filters() -> tuple[str, str, int]:
    return text_arg("service", max_chars=200), text_arg("type", max_chars=200), page_arg()


@bp.get("/changes")
def changes() -> str:
    service, type_, page = change_filters()
    result = queries.recent_changes(service=service or None, type_=type_ or None, page=page)
    return render_template(
        "changes.html",
        result=result,
        service=service,
        type_=type_,
        kinds=queries.KIND_LABELS,
        services=sorted({s for s, _ in archive().versions.policies()}),
    )
