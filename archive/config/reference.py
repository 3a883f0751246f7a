"""The configuration reference, docs/configuration.md, generated from the declared settings.

Every table of :data:`archive.config.TABLES` and every key of it, with its type, default and
help text, so the reference cannot drift from the code (tests/test_config_docs.py compares the
file with :func:`render_reference`). Regenerate it with::

    python -m archive.config.reference > docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

from archive.config import ENV_CONFIG, ENV_DATA_DIR, TABLES, Table, unwrap_optional

COMMAND = "python -m archive.config.reference > docs/configuration.md"

KINDS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    timedelta: "duration",
    Path: "path",
}

INTRO = f"""\
# Configuration

<!-- Generated from the settings declared in archive/config/: do not edit by hand.
     Regenerate with: {COMMAND} -->

Policy Archive reads one TOML file once at start: `--config PATH`, else
`${ENV_CONFIG}`, else `./config.toml`. Every key below is optional unless its
default says *required*; an unknown key is an error that names the known ones. Paths are
relative to the config file. Durations are written `"90s"`, `"30m"`, `"6h"`, `"1d"`, `"1w"`
or as a number of seconds.
"""


def duration(value: timedelta) -> str:
    """A duration as config.toml would write it: ``"6h"``, ``"30m"``, ``"90s"``."""
    seconds = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f'"{int(seconds // size)}{unit}"'
    return f'"{seconds:g}s"'


def default_text(spec: dataclasses.Field[Any]) -> str:
    """A field's default as TOML, or *required* / *none*."""
    if spec.default is not dataclasses.MISSING:
        value = spec.default
    elif spec.default_factory is not dataclasses.MISSING:
        value = spec.default_factory()
    else:
        return "*required*"
    if value is None:
        return "*none*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{duration(value)}`"
    if isinstance(value, int):
        return f"`{value:_}`" if value >= 100_000 else f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`" if value != int(value) else f"`{value:.1f}`"
    if isinstance(value, str | Path):
        return f'`"{value}"`'
    if isinstance(value, tuple) and not value:
        return "`[]`"
    raise TypeError(f"{spec.name}: no way to show the default {value!r}")


def kind_text(spec: dataclasses.Field[Any], annotation: Any) -> str:
    """The type a key takes in TOML, as the reference names it."""
    if spec.metadata.get("kind"):
        return str(spec.metadata["kind"])
    try:
        return KINDS[unwrap_optional(annotation)]
    except KeyError:
        raise TypeError(f"{spec.name}: declare kind= for {annotation!r}") from None


def _markdown(text: str) -> str:
    """Help text on one line, as Markdown (docstrings write code as ``x``)."""
    return " ".join(text.split()).replace("``", "`")


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|")


def describe(spec: dataclasses.Field[Any]) -> str:
    """A key's help text, plus the environment variable it falls back on."""
    text = str(spec.metadata["help"])
    env = spec.metadata.get("env")
    if env and f"${env}" not in text:
        text += f" Empty: read from ${env}."
    return text


def render_table(table: Table) -> str:
    """One table's section: heading, what it is for, and one row per key."""
    heading = "Top level" if not table.name else f"`{table.header}`"
    lines = [f"## {heading}", "", _markdown(inspect.cleandoc(table.settings.__doc__ or ""))]
    lines += ["", "| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    hints = typing.get_type_hints(table.settings)
    for spec in dataclasses.fields(table.settings):
        kind = kind_text(spec, hints[spec.name])
        lines.append(
            f"| `{spec.name}` | {_cell(kind)} | {default_text(spec)} | {_cell(describe(spec))} |"
        )
    return "\n".join(lines) + "\n"


def environment() -> str:
    """The environment variables the loader reads (nothing else reads the environment)."""
    rows = [
        (ENV_CONFIG, "Path of the config file when `--config` is not given."),
        (ENV_DATA_DIR, "Overrides `data_dir` (as `--data-dir` does)."),
    ]
    for table in TABLES:
        for spec in dataclasses.fields(table.settings):
            if spec.metadata.get("env"):
                rows.append(
                    (spec.metadata["env"], f"`{table.header} {spec.name}` when that is empty.")
                )
    lines = [
        "## Environment",
        "",
        "Read by the config loader only, so secrets can stay out of config.toml.",
        "",
        "| Variable | Used for |",
        "| --- | --- |",
    ]
    lines += [f"| `${name}` | {_cell(text)} |" for name, text in rows]
    return "\n".join(lines) + "\n"


def render_reference() -> str:
    """docs/configuration.md: every table and key of config.toml, and the environment."""
    parts = [INTRO, *(render_table(t) for t in TABLES), environment()]
    return "\n".join(parts)


def main() -> None:
    sys.stdout.write(render_reference())


if __name__ == "__main__":
    main()
