"""Export time for the Open Terms Archive corpus in each format, and `git clone` time over HTTP.

Usage: .venv/bin/python bench/bench_export.py [--keep DIR]

Imports ../shared/corpus/ota/policy_histories.jsonl (1,510 versions) into a fresh archive in a
temporary directory, then prints, for jsonl, csv and zip (whole history, and as of a date),
the time to stream the export to a file and its size; then serves the archive with the real
web server (waitress, on 127.0.0.1) and times `git clone http://.../archive.git`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.dates import parse_when  # noqa: E402
from archive.research.export import ExportQuery, export_stream  # noqa: E402
from archive.tracking.importer import import_histories  # noqa: E402
from webui import create_app, git_http  # noqa: E402
from webui.server import make_server  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "ota" / "policy_histories.jsonl"


def timed_export(archive: Archive, fmt: str, query: ExportQuery, out: Path) -> None:
    start = time.perf_counter()
    selection, chunks = export_stream(archive, fmt, query)
    with out.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    elapsed = time.perf_counter() - start
    label = f"{fmt:5} {'as of ' + query.at.date().isoformat() if query.at else 'full':16}"
    print(
        f"export {label} {selection.versions:5} versions  {elapsed:6.2f} s  "
        f"{out.stat().st_size / 1e6:7.1f} MB  ({selection.versions / elapsed:,.0f} versions/s)"
    )


def timed_clone(archive: Archive, target: Path) -> None:
    app = create_app(archive.config, archive=archive)
    app.register_blueprint(git_http.bp)
    server = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for attempt in (1, 2):
            shutil.rmtree(target, ignore_errors=True)
            start = time.perf_counter()
            subprocess.run(
                ["git", "clone", "-q", f"{server.url}archive.git", str(target)], check=True
            )
            elapsed = time.perf_counter() - start
            commits = subprocess.run(
                ["git", "-C", str(target), "rev-list", "--count", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            size = sum(p.stat().st_size for p in (target / ".git").rglob("*") if p.is_file())
            print(
                f"git clone over HTTP (run {attempt}): {commits} commits, "
                f"{size / 1e6:.1f} MB in .git, {elapsed:.2f} s"
            )
    finally:
        server.close()
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="Build the archive here and keep it.")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        config = config_from_mapping({"data_dir": str(root / "data")})
        start = time.perf_counter()
        with Archive.open(config, writer=True, create=True) as archive:
            report = import_histories(archive, CORPUS)
        print(
            f"import of the corpus (setup, not measured here): {report.commits} commits, "
            f"{time.perf_counter() - start:.1f} s"
        )
        with Archive.open(config) as archive:
            for fmt in ("jsonl", "csv", "zip"):
                timed_export(archive, fmt, ExportQuery(), root / f"export.{fmt}")
            for fmt in ("jsonl", "zip"):
                at = ExportQuery(at=parse_when("2024-01-01"))
                timed_export(archive, fmt, at, root / f"export-at.{fmt}")
            timed_clone(archive, root / "clone")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
