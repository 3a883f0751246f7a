"""The diff page: word-level changes between two versions, inline or side by side."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, render_template, request, url_for
from markupsafe import Markup, escape

from archive.diff import DEFAULT_CONTEXT, DELETE, EQUAL, INSERT, Span
from webui import queries
from webui.context import choice_arg, int_arg, policy_or_404, text_arg

bp = Blueprint("diff", __name__)

VIEWS = ("inline", "side")
MAX_CONTEXT = 50


SIDES = {None: (EQUAL, INSERT, DELETE), "old": (EQUAL, DELETE), "new": (EQUAL, INSERT)}
TAGS = {INSERT: "ins", DELETE: "del"}


@bp.app_template_filter("diff_spans")
def diff_spans(spans: Iterable[Span], side: str | None = None) -> Markup:
    """Spans as escaped text with ``<ins>``/``<del>``; ``side`` keeps one version's spans."""
    shown = SIDES[side]
    out = []
    for span in spans:
        if span.op not in shown:
            continue
        tag = TAGS.get(span.op)
        out.append(Markup("<{0}>{1}</{0}>").format(tag, span.text) if tag else escape(span.text))
    return Markup("").join(out)


def diff_args() -> tuple[str, str, int]:
    return (
        text_arg("from", max_chars=40),
        text_arg("to", max_chars=40),
        int_arg("context", DEFAULT_CONTEXT, low=0, high=MAX_CONTEXT),
    )


@bp.get("/policies/<name:service>/<name:type_>/diff")
def diff_page(service: str, type_: str) -> str:
    ref = policy_or_404(service, type_)
    from_id, to_id, context = diff_args()
    view = choice_arg("view", VIEWS)
    selected = queries.select_diff(ref, from_id, to_id)
    before, after = queries.neighbours(ref, selected.new)
    layout = selected.diff.layout(context)
    first_change: dict[str, int] = {}
    for item in layout:
        for section in item.change.sections if item.change else ():
            first_change.setdefault(section, item.number)

    def self_url(**changes: Any) -> str:
        # Any: url_for types its own keywords (_external, ...) as bool | None.
        args: dict[str, Any] = {**request.args.to_dict(), **{k: str(v) for k, v in changes.items()}}
        return url_for("diff.diff_page", service=service, type_=type_, **args)

    return render_template(
        "diff.html",
        ref=ref,
        d=selected,
        layout=layout,
        total=len(selected.diff.changes),
        view=view,
        context=context,
        before=before,
        after=after,
        kinds=queries.KIND_LABELS,
        first_change=first_change,
        self_url=self_url,
    )
