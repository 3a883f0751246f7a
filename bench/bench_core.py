"""Tracking-core benchmark: bulk import of the OTA corpus, and the cost of unchanged checks.

    .venv/bin/python bench/bench_core.py [--policies 1000] [--skip-import]

Prints:
- import: wall time for ../shared/corpus/ota/policy_histories.jsonl (1,510 versions), git
  commits only and with the search index brought up to date;
- check: N policies served by a local HTTP server in another process (so its CPU is not ours):
  a first check (N first records), then unchanged checks answered 304 (conditional GET) and
  answered 200 with identical bytes (validators dropped), each as wall time and our own CPU
  time per policy (process_time of this process, all threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.fetch import Fetcher  # noqa: E402
from archive.tracking.importer import import_histories  # noqa: E402
from archive.tracking.pipeline import Pipeline  # noqa: E402

SEED = REPO.parent / "shared" / "fixtures" / "seed-policies" / "workoptima-privacy-policy.txt"
OTA = REPO.parent / "shared" / "corpus" / "ota" / "policy_histories.jsonl"


def bench_import(tmp: Path) -> None:
    config = config_from_mapping({"data_dir": str(tmp / "import")}, path=tmp / "c.toml")
    with Archive.open(config, writer=True, create=True) as archive:
        archive.catch_up = lambda progress=None: None  # git only first
        start = time.perf_counter()
        report = import_histories(archive, OTA)
        git_s = time.perf_counter() - start
        del archive.catch_up
        start = time.perf_counter()
        archive.catch_up()
        index_s = time.perf_counter() - start
    print(
        f"import: {report.commits} versions of {report.histories} histories: "
        f"git {git_s:.1f} s ({report.commits / git_s:.0f} versions/s), "
        f"index catch-up {index_s:.1f} s, total {git_s + index_s:.1f} s"
    )


def write_site(folder: Path, count: int) -> None:
    text = SEED.read_text(encoding="utf-8")
    paras = "\n".join(f"<p>{line}</p>" for line in text.splitlines() if line.strip())
    for i in range(count):
        (folder / f"p{i}.html").write_text(
            f"<html><head><title>Policy {i}</title></head><body><nav>Home</nav>"
            f"<main><h1>Policy {i}</h1>{paras}</main><footer>(c)</footer></body></html>",
            encoding="utf-8",
        )


def timed_check(pipeline: Pipeline, policies: list) -> tuple[float, float, dict]:
    wall, cpu = time.perf_counter(), time.process_time()
    results = pipeline.check(policies)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return wall, cpu, counts


def bench_check(tmp: Path, count: int) -> None:
    site = tmp / "site"
    site.mkdir()
    write_site(site, count)
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        policies = [
            {
                "service": f"Service {i:04d}",
                "type": "Privacy Policy",
                "url": f"http://127.0.0.1:{port}/p{i}.html",
                "select": "main",
            }
            for i in range(count)
        ]
        config = config_from_mapping(
            {
                "data_dir": str(tmp / "check"),
                "policy": policies,
                "fetch": {"allow_private_addresses": True, "per_host_delay": 0, "concurrency": 4},
            },
            path=tmp / "c.toml",
        )
        with (
            Archive.open(config, writer=True, create=True) as archive,
            Fetcher(config.fetch) as fetcher,
        ):
            pipeline = Pipeline(archive, fetcher)
            wall, cpu, counts = timed_check(pipeline, list(config.policies))
            print(
                f"check (first records): {count} policies in {wall:.1f} s, "
                f"CPU {cpu * 1000 / count:.1f} ms/policy {counts}"
            )
            wall, cpu, counts = timed_check(pipeline, list(config.policies))
            print(
                f"check (unchanged, 304): {count} policies in {wall:.2f} s, "
                f"CPU {cpu * 1000 / count:.2f} ms/policy {counts}"
            )
            for st in archive.state.all().values():
                archive.state.put(dataclasses.replace(st, validators=()))
            wall, cpu, counts = timed_check(pipeline, list(config.policies))
            print(
                f"check (unchanged, 200 same bytes): {count} policies in {wall:.2f} s, "
                f"CPU {cpu * 1000 / count:.2f} ms/policy {counts}"
            )
    finally:
        server.terminate()
        server.wait()
        server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_import:
            bench_import(Path(tmp))
        bench_check(Path(tmp), args.policies)


if __name__ == "__main__":
    main()
