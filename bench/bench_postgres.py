"""PostgreSQL search beside the embedded engines: build rate and p50/p95 of the standard queries.

    .venv/bin/python bench/bench_postgres.py [--versions 20000] [--rounds 3] [--url URL]

Reads the synthetic archive of bench/bench_engines.py (bench/out/engines-N/data-whoosh, built
there with ``bench_engines.py --build-only`` if missing; only read here), rebuilds the
PostgreSQL index from it (into the database at ``--url``, else a server of its own started with
scripts/services in a temporary folder), and times the query set of bench/bench_search.py
(current versions and --history), top 10 with snippets, after a warm-up round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_engines import OUT, build_archive, measure, report, timed  # noqa: E402

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.search import language_resolver, search  # noqa: E402
from tests.services import free_port  # noqa: E402

SERVICES = HERE.parent / "scripts" / "services"


def start_server(folder: Path) -> tuple[str, dict[str, str]]:
    folder.chmod(0o755)
    env = {
        **os.environ,
        "SERVICES_DIR": str(folder),
        "PG_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
    }
    done = subprocess.run([str(SERVICES), "start"], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"scripts/services start failed: {done.stderr}")
    urls = dict(line.split("=", 1) for line in done.stdout.splitlines() if "://" in line)
    return urls["POSTGRES_URL"], env


def reading_copy(source: Path, into: Path) -> Path:
    """A data dir that links to the shared archive and state (never written here)."""
    data = into / "data"
    data.mkdir()
    for entry in source.iterdir():
        if not entry.name.startswith("index"):
            (data / entry.name).symlink_to(entry)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="PostgreSQL database for the index (default: a new server)")
    args = parser.parse_args()
    folder = OUT / f"engines-{args.versions}"
    source = folder / "data-whoosh"
    if not (source / "archive").exists():
        build_archive(folder, args.versions)
    tmp = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    env = None
    try:
        url = args.url
        if not url:
            url, env = start_server(tmp / "services")
        data = reading_copy(source, tmp)
        config = config_from_mapping(
            {"data_dir": str(data), "search": {"engine": "postgresql", "url": url}},
            path=tmp / "c.toml",
        )
        with Archive(config, writer=False) as archive:
            count = len(archive.versions.log())
            seconds, _ = timed(
                lambda: archive.index.rebuild(
                    archive.versions, language_of=language_resolver(archive)
                )
            )
            stats = archive.index.stats()
            print(
                f"postgresql: {stats.versions:,} versions, {stats.sections:,} sections, "
                f"built in {seconds:.0f} s",
                flush=True,
            )
            began = time.perf_counter()
            times = measure(lambda q, a: search(archive, q, **a), args.rounds)
            report("postgresql", count / seconds, times)
            print(f"  (query rounds took {time.perf_counter() - began:.0f} s)")
    finally:
        if env is not None:
            subprocess.run([str(SERVICES), "stop"], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
