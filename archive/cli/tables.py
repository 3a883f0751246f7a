"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], max_width: int = 60) -> str:
    """Left-aligned columns; cells longer than ``max_width`` are cut with an ellipsis."""

    def cut(cell: object) -> str:
        text = " ".join(str(cell).split())
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    body = [[cut(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)
