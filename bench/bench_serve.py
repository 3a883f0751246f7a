"""`serve` under search load: resident memory and requests/s of a real `policy-archive serve`.

Imports ../shared/corpus/ota/policy_histories.jsonl with `policy-archive import` into a data dir
(a temporary one, or ``--data-dir``, kept and reused between runs), starts `policy-archive serve`
as its own process on a free port, sends ``--searches`` search pages (default 10,000) from 16
client threads over kept-alive connections (Python's http.client), then home pages, and prints
the server's VmRSS (from /proc/<pid>/status) at start, after 1,000 searches and after all of
them, with the requests/s of the search page and of the home page.

Run: ``.venv/bin/python bench/bench_serve.py [--searches 2000] [--server-threads 8]``.
``--repo`` runs another checkout's code (e.g. the original one, to measure "before").
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
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
SERVING = re.compile(r"Serving .* at http://([^:/]+):(\d+)/")
START_TIMEOUT = 120.0


def cli(repo: Path, config: Path, *args: str) -> list[str]:
    code = "import sys; from archive.cli import main; sys.argv[0] = 'policy-archive'; main()"
    return [sys.executable, "-c", code, "--config", str(config), *args]


def env_for(repo: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def prepare(repo: Path, data_dir: Path, threads: int) -> Path:
    config = data_dir.parent / f"{data_dir.name}-serve.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\n\n[web]\nthreads = {threads}\nconnection_limit = 1000\n',
        encoding="utf-8",
    )
    if not (data_dir / "archive" / ".git").is_dir():
        started = time.monotonic()
        subprocess.run(
            cli(repo, config, "import", str(OTA_JSONL)),
            cwd=repo,
            env=env_for(repo),
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        print(f"imported the OTA corpus in {time.monotonic() - started:.0f} s", flush=True)
    return config


def start_server(repo: Path, config: Path) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen(
        cli(repo, config, "serve", "--host", "127.0.0.1", "--port", "0"),
        cwd=repo,
        env=env_for(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    found: list[tuple[str, int]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = SERVING.search(line)
            if m and not found:
                found.append((m.group(1), int(m.group(2))))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("`policy-archive serve` did not start")
        time.sleep(0.05)
    return proc, *found[0]


class Load:
    """``total`` GET requests from ``clients`` threads, each on its own kept-alive connection."""

    def __init__(self, host: str, port: int, paths: list[str], clients: int) -> None:
        self.host, self.port, self.clients = host, port, clients
        self.paths = itertools.cycle(paths)
        self.lock = threading.Lock()
        self.sent = 0
        self.errors: list[str] = []

    def _next(self, total: int) -> str | None:
        with self.lock:
            if self.sent >= total:
                return None
            self.sent += 1
            return next(self.paths)

    def _client(self, total: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            while (path := self._next(total)) is not None:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.errors.append(f"{path}: {response.status}")
        finally:
            conn.close()

    def run(self, total: int) -> float:
        """Send requests until ``total`` have been sent in all; requests/s of this run."""
        start, began = self.sent, time.monotonic()
        threads = [
            threading.Thread(target=self._client, args=(total,)) for _ in range(self.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return (self.sent - start) / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=10_000, help="search pages to send")
    parser.add_argument("--homes", type=int, default=1_000, help="home pages to send")
    parser.add_argument("--connections", type=int, default=16, help="client threads")
    parser.add_argument("--server-threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--data-dir", type=Path, default=None, help="kept between runs")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose code runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        config = prepare(args.repo.resolve(), data_dir, args.server_threads)
        proc, host, port = start_server(args.repo.resolve(), config)
        try:
            start_rss = rss_mb(proc.pid)
            paths = [f"/search?q={quote(q)}" for q in QUERIES]
            load = Load(host, port, paths, args.connections)
            first = min(1_000, args.searches)
            began = time.monotonic()
            load.run(first)
            after_first = rss_mb(proc.pid)
            load.run(args.searches)
            search_rate = load.sent / (time.monotonic() - began)
            after_all = rss_mb(proc.pid)
            homes = Load(host, port, ["/"], args.connections)
            home_rate = homes.run(args.homes)
            errors = load.errors + homes.errors
        finally:
            proc.terminate()
            proc.wait(30)
    print(
        f"serve ({args.server_threads} threads), {args.connections} connections: "
        f"RSS {start_rss:.0f} MB at start, {after_first:.0f} MB after {first:,} searches, "
        f"{after_all:.0f} MB after {args.searches:,}; search {search_rate:.1f} req/s, "
        f"home {home_rate:.1f} req/s; {len(errors)} errors"
        + (f" (first: {errors[0]})" if errors else "")
    )


if __name__ == "__main__":
    main()
