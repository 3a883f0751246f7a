"""Search page throughput: wrk with 16 connections against /search on the imported OTA corpus.

Imports ../shared/corpus/ota/policy_histories.jsonl into a data dir (kept between runs in
bench/out/web-ota; the first run also builds the search index, which takes a minute or two),
serves the UI with the production server (waitress) on 127.0.0.1, and runs wrk against search
pages with highlighted snippets, rotating through a few queries. Prints requests/s and the
latency p50/p95/p99. Needs wrk (Debian: ``apt-get install -y wrk``); installs nothing.

Run: ``.venv/bin/python bench/bench_web.py [--duration 30] [--threads 8]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.app import Archive  # noqa: E402
from archive.config import config_from_mapping  # noqa: E402
from archive.tracking.importer import import_histories  # noqa: E402
from webui import create_app  # noqa: E402
from webui.server import make_server  # noqa: E402

OTA_JSONL = REPO.parent / "shared" / "corpus" / "ota" / "policy_histories.jsonl"
QUERIES = (
    "retention 30 days",
    "personal data",
    "cookies",
    '"third parties"',
    "delete account",
    "children under 13",
    "arbitration",
    "données personnelles",
)
LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"seconds\\": %%.3f, \\"errors\\": %%d, "
    .. "\\"non2xx\\": %%d, \\"p50\\": %%.2f, \\"p95\\": %%.2f, \\"p99\\": %%.2f}\\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def prepare(data_dir: Path) -> Archive:
    config = config_from_mapping({"data_dir": str(data_dir)})
    fresh = not (config.archive_dir / ".git").is_dir()
    archive = Archive.open(config, writer=True, create=True)
    if fresh:
        started = time.monotonic()
        report = import_histories(archive, OTA_JSONL)
        print(
            f"imported and indexed {report.commits} versions in {time.monotonic() - started:.0f} s"
        )
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / "out" / "web-ota")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--history", action="store_true", help="search past versions too")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: install it with `apt-get install -y wrk` (Debian)")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" under load
    archive = prepare(args.data_dir)
    try:
        app = create_app(archive.config, archive=archive)
        server = make_server(app, "127.0.0.1", 0, threads=args.threads, connection_limit=1000)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        suffix = "&history=1" if args.history else ""
        paths = [f"/search?q={quote(q)}{suffix}" for q in QUERIES]
        for path in paths:  # warm up: index readers, templates; check every query answers
            with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=60) as response:
                body = response.read().decode()
                assert response.status == 200 and "result" in body, path
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(LUA % ", ".join(json.dumps(p) for p in paths))
        try:
            out = subprocess.run(
                [wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "10s",
                 "-s", script.name, server.url],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            Path(script.name).unlink()
            server.close()
            thread.join(10)
        result = json.loads(next(line[5:] for line in out.splitlines() if line.startswith("JSON ")))
        print(
            f"search page{' (history)' if args.history else ''}, {args.connections} connections, "
            f"{args.threads} server threads, {len(paths)} queries rotating, "
            f"{archive.versions.head() and len(archive.versions.log())} versions: "
            f"{result['requests'] / result['seconds']:.1f} requests/s, "
            f"p50 {result['p50']:.0f} ms, p95 {result['p95']:.0f} ms, p99 {result['p99']:.0f} ms, "
            f"errors {result['errors']}, non-2xx {result['non2xx']}"
        )
    finally:
        archive.close()


if __name__ == "__main__":
    main()
