"""The import rules of ARCHITECTURE.md, read from the source with ``ast``: the domain never
imports the web UI (only the CLI builds it), and the archive's core does not import the
features that listen to it (the caller attaches them)."""

from __future__ import annotations

import ast
from pathlib import Path

from archive.app import Archive
from archive.tracking.events import VersionRecorded
from store.git.repository import now_utc
from store.git.versions import NewVersion
from tests.conftest import REPO

ARCHIVE = REPO / "archive"


def imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module ``path`` imports (``from x import y`` gives ``x`` and ``x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def names(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(package + ".")}


def test_the_helper_sees_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom archive import alerts\ndef f():\n    from webui.server import x\n",
        encoding="utf-8",
    )
    assert names(imported_modules(source), "webui") == {"webui.server", "webui.server.x"}
    assert names(imported_modules(source), "archive.alerts") == {"archive.alerts"}
    assert names(imported_modules(source, top_level_only=True), "webui") == set()


def test_archive_outside_the_cli_never_imports_webui() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(names(imported_modules(path), "webui"))
        for path in ARCHIVE.rglob("*.py")
        if "cli" not in path.relative_to(ARCHIVE).parts
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_store_imports_neither_archive_nor_webui() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            names(imported_modules(path), "archive") | names(imported_modules(path), "webui")
        )
        for path in (REPO / "store").rglob("*.py")
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_archive_core_does_not_import_the_alerts_at_load_time() -> None:
    """app.py and the runner's callers attach alerts; app.py only names them as the default
    of callers that pass no listeners (backwards compatibility, to be removed)."""
    app = ARCHIVE / "app.py"
    assert names(imported_modules(app, top_level_only=True), "archive.alerts") == set()
    tree = ast.parse(app.read_text(encoding="utf-8"))
    importers = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("archive.alerts")
            for inner in ast.walk(node)
        )
    }
    assert importers == set()  # the caller attaches the alerts (listeners=LISTENERS)


def test_a_writer_attaches_the_listeners_its_caller_passes(make_config) -> None:
    """Attached after state is reconciled and before the catch-up, so a listener's catch-up
    runs on opening (the alert outbox catches up with git this way)."""
    calls: list[str] = []
    seen: list[object] = []

    def listener(archive: Archive) -> None:
        calls.append("attach")
        archive.events.subscribe(seen.append)
        archive.on_catch_up(lambda: calls.append("catch-up"))

    with Archive.open(make_config(), writer=True, create=True, listeners=(listener,)) as archive:
        assert calls == ["attach", "catch-up"]
        version = archive.versions.record(NewVersion("Acme", "Terms", "Text.\n", now_utc()))
        archive.events.emit(VersionRecorded(version, None))
        assert len(seen) == 1
    with Archive.open(make_config(), writer=True, listeners=()) as archive:
        archive.events.emit(VersionRecorded(version, None))  # nobody listens
    assert len(seen) == 1 and calls == ["attach", "catch-up"]
