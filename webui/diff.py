"""The diff page: what changed between two versions, as a reader sees it or in Markdown.

Views: ``rendered`` (the default: the text as the policy page shows it, headings, paragraphs,
lists and tables, with the changed words marked inside), and the Markdown source ``inline``
or ``side`` by side. Formatting-only changes are hidden unless ``formatting=show`` (a link
without JavaScript; diff.js toggles them in place).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request, url_for
from markupsafe import Markup, escape

from archive.diff import DEFAULT_CONTEXT, DELETE, EQUAL, INSERT, Edit, LayoutItem, Span, TextDiff
from archive.diff.reading import HIDDEN, Reading
from archive.diff.wording import FORMATTING, MOVED, MOVED_AWAY, REPLACE
from webui import queries
from webui.context import choice_arg, int_arg, policy_or_404, text_arg

bp = Blueprint("diff", __name__)

VIEWS = ("rendered", "inline", "side")
FORMATTING_CHOICES = ("hide", "show")
MAX_CONTEXT = 50
MOVED_QUOTE_WORDS = 8
"""Words of a moved unit quoted where it stood."""


SIDES = {None: (EQUAL, INSERT, DELETE), "old": (EQUAL, DELETE), "new": (EQUAL, INSERT)}
MARKS = {INSERT: (Markup("<ins>"), Markup("</ins>")), DELETE: (Markup("<del>"), Markup("</del>"))}
UNIT_CLASSES = {INSERT: "unit-ins", DELETE: "unit-del", FORMATTING: "fmt", MOVED: "moved"}


@bp.app_template_filter("diff_spans")
def diff_spans(spans: Iterable[Span], side: str | None = None) -> Markup:
    """Spans as escaped text with ``<ins>``/``<del>``; ``side`` keeps one version's spans."""
    shown = SIDES[side]
    out: list[Markup] = []
    for span in spans:
        if span.op not in shown:
            continue
        marks = MARKS.get(span.op)
        out.append(marks[0] + span.text + marks[1] if marks else escape(span.text))
    return Markup("").join(out)


# --------------------------------------------------------------------------- rendered view


@dataclass(frozen=True)
class Block:
    """One element of the rendered view: a unit's reading with its marked-up content."""

    unit: Reading
    inner: Markup
    cells: tuple[Markup, ...] = ()
    css: str = ""
    id: str = ""


def _plain(unit: Reading) -> Block:
    return Block(unit, escape(unit.text), tuple(escape(c) for c in unit.cells))


def _edit_block(edit: Edit, diff: TextDiff) -> Block | None:
    """The element of one changed unit; None when nothing of it shows (an underline)."""
    if edit.kind == MOVED_AWAY:
        assert edit.old is not None
        words = diff.old_units[edit.old].text.split()
        quote = " ".join(words[:MOVED_QUOTE_WORDS]) + (
            " …" if len(words) > MOVED_QUOTE_WORDS else ""
        )
        note = Markup('Moved from here: <a href="#move-{0}">“{1}”</a>').format(edit.move, quote)
        return Block(Reading("p", ""), note, css="moved-away", id=f"move-{edit.move}-from")
    unit = diff.new_units[edit.new] if edit.new is not None else diff.old_units[edit.old or 0]
    if unit.tag == HIDDEN:
        return None
    cells = tuple(diff_spans(c) for c in edit.cells) if edit.cells else ()
    if unit.tag == "tr" and not cells:
        cells = tuple(escape(c) for c in unit.cells)
    inner = diff_spans(edit.spans)
    css = UNIT_CLASSES.get(edit.kind, "")
    if edit.kind == MOVED:
        link = Markup('<a class="move-note" href="#move-{0}-from">moved</a> ').format(edit.move)
        if cells:
            cells = (link + cells[0], *cells[1:])
        inner = link + inner
        return Block(unit, inner, cells, css, f"move-{edit.move}")
    if edit.kind == REPLACE:
        css = "edited"
    return Block(unit, inner, cells, css)


def change_blocks(item: LayoutItem, diff: TextDiff) -> list[Block]:
    """The elements of one layout item: its changed units, or the unchanged ones."""
    if item.change is not None:
        edits = item.change.edits
        shown = [  # a moved run (a section) is noted once where it stood
            e
            for k, e in enumerate(edits)
            if not (e.kind == MOVED_AWAY and k and edits[k - 1].kind == MOVED_AWAY)
        ]
        return [b for e in shown if (b := _edit_block(e, diff)) is not None]
    units = diff.new_units[item.new_start : item.new_start + len(item.lines)]
    return [_plain(u) for u in units if u.tag != HIDDEN]


@bp.app_template_filter("rendered")
def rendered(blocks: Sequence[Block]) -> Markup:
    """Blocks as HTML: list items inside their lists, rows inside a table, lines of code in
    one ``<pre>``. Everything is escaped text in our own elements (tag names, classes and ids
    come from this module, never from the text)."""
    out: list[Markup] = []
    lists: list[str] = []  # the open lists, outermost first
    table = ""  # "", "thead" or "tbody": the open table section
    pre = False
    for block in blocks:
        unit = block.unit
        if pre and unit.tag != "pre":
            out.append(Markup("</pre>"))
            pre = False
        if table and unit.tag != "tr":
            out.append(Markup("</{}></table></div>").format(table))
            table = ""
        depth = unit.depth if unit.tag == "li" else 0
        while len(lists) > depth or (lists and len(lists) == depth and lists[-1] != unit.list):
            out.append(Markup("</{}>").format(lists.pop()))
        while len(lists) < depth:
            kind = "ol" if unit.list == "ol" and len(lists) == depth - 1 else "ul"
            out.append(Markup("<{}>").format(kind))
            lists.append(kind)
        attrs = _attrs(block)
        if unit.tag == "tr":
            section = "thead" if unit.header else "tbody"
            if table != section:
                opener = Markup('<div class="table-scroll"><table>')
                out.append(Markup("</{}>").format(table) if table else opener)
                out.append(Markup("<{}>").format(section))
                table = section
            cell = CELL_TAGS[unit.header]
            row = Markup("").join(cell[0] + c + cell[1] for c in block.cells)
            out.append(Markup("<tr{}>{}</tr>").format(attrs, row))
        elif unit.tag == "pre":
            if not pre:
                out.append(Markup("<pre>"))
                pre = True
            out.append(Markup("<span{}>{}</span>\n").format(attrs, block.inner))
        elif unit.tag == "hr":
            out.append(Markup("<hr{}>").format(attrs))
        else:
            tag = unit.tag if unit.tag in BLOCK_TAGS else "p"
            value = Markup(' value="{}"').format(unit.number) if unit.number else ""
            out.append(Markup("<{0}{1}{2}>{3}</{0}>").format(tag, attrs, value, block.inner))
    if pre:
        out.append(Markup("</pre>"))
    if table:
        out.append(Markup("</{}></table></div>").format(table))
    out.extend(Markup("</{}>").format(kind) for kind in reversed(lists))
    return Markup("").join(out)


BLOCK_TAGS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6"})
CELL_TAGS = {True: (Markup("<th>"), Markup("</th>")), False: (Markup("<td>"), Markup("</td>"))}


def _attrs(block: Block) -> Markup:
    unit = block.unit
    classes = [block.css] if block.css else []
    if unit.quote:
        classes.append("quote")
    if not unit.first:
        classes.append("cont")
    if unit.depth and unit.tag not in ("li", "tr"):
        classes.append(f"in-list-{min(unit.depth, 4)}")
    out = Markup(' class="{}"').format(" ".join(classes)) if classes else Markup("")
    return out + (Markup(' id="{}"').format(block.id) if block.id else "")


# --------------------------------------------------------------------------- the page


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
    formatting = choice_arg("formatting", FORMATTING_CHOICES)
    selected = queries.select_diff(ref, from_id, to_id)
    before, after = queries.neighbours(ref, selected.new)
    diff = selected.diff
    layout = diff.layout(context)
    first_change: dict[str, str] = {}
    for item in layout:
        if item.change is not None and (not item.change.formatting_only or not diff.wording):
            for section in item.change.sections:
                first_change.setdefault(section, item.anchor)

    def self_url(**changes: Any) -> str:
        # Any: url_for types its own keywords (_external, ...) as bool | None.
        args: dict[str, Any] = {**request.args.to_dict(), **{k: str(v) for k, v in changes.items()}}
        return url_for("diff.diff_page", service=service, type_=type_, **args)

    return render_template(
        "diff.html",
        ref=ref,
        d=selected,
        layout=layout,
        blocks=(lambda item: change_blocks(item, diff)) if view == "rendered" else None,
        total=len(diff.wording),
        formatting_total=len(diff.changes) - len(diff.wording),
        formatting=formatting,
        view=view,
        context=context,
        before=before,
        after=after,
        kinds=queries.KIND_LABELS,
        first_change=first_change,
        self_url=self_url,
    )
