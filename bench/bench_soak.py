"""Soak of `policy-archive run`: memory, level fetches, loose objects, first round, alerts.

    .venv/bin/python bench/bench_soak.py [--policies 1000] [--minutes 10] [--interval 2m]

Starts a local site of N policy pages (~20 KB of real policy text each) in this process,
then `policy-archive run` as a real process (web UI on a free port, one webhook subscription
to a local receiver), both under `nice`. Each minute 2 % of the pages change and 1 % fail
(HTTP 500 for that minute). Prints one line per minute:

- RSS: VmRSS of the `run` process, MB;
- fetches: requests the site answered that minute; max/mean: over the last interval's
  minutes (level fetches: ≤ 1.3 after the first round);
- loose: loose objects in each repository (files under .git/objects/??);
- hooks: webhooks received (first records alert nobody by default, so only changes).

Then a summary: how long the first round of N first records took, RSS growth after the
first round, the steady-state max/mean of fetches per minute, the most loose objects seen.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive.config import parse_duration  # noqa: E402
from tests.fixture_server import FixtureServer  # noqa: E402
from tests.pages import policy_page  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402

SEEDS = REPO.parent / "shared" / "fixtures" / "seed-policies"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def loose_objects(repo: Path) -> int:
    objects = repo / ".git" / "objects"
    return sum(
        1
        for folder in objects.glob("??")
        for entry in os.scandir(folder)
        if not entry.name.startswith("tmp_")
    )


def first_records(state: Path) -> int:
    """Policies with a recorded text, read from state.sqlite without writing to it."""
    if not state.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT COUNT(*) FROM policy_state WHERE text_hash IS NOT NULL")
            return row.fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


class Site:
    """N pages; each minute some change (a new revision line) and some fail for that minute."""

    def __init__(self, server: FixtureServer, n: int, rng: random.Random) -> None:
        self.server, self.n, self.rng = server, n, rng
        self.texts = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
        self.revision = [0] * n
        self.failing: list[int] = []
        for i in range(n):
            self._serve(i)

    def path(self, i: int) -> str:
        return f"/policy/{i}"

    def _serve(self, i: int, status: int = 200) -> None:
        text = self.texts[i % len(self.texts)]
        body = f"{text}\n\nPolicy {i}, revision {self.revision[i]}.\n"
        self.server.set(self.path(i), policy_page(f"Service {i}", body), status=status)

    def tick(self, change: float, fail: float) -> None:
        for i in self.failing:
            self._serve(i)
        changed = self.rng.sample(range(self.n), max(1, round(self.n * change)))
        for i in changed:
            self.revision[i] += 1
            self._serve(i)
        self.failing = self.rng.sample(range(self.n), max(1, round(self.n * fail)))
        for i in self.failing:
            self._serve(i, status=500)


def write_config(folder: Path, site: Site, hook: str, interval: str, port: int) -> Path:
    lines = [
        'data_dir = "data"',
        "[fetch]",
        "allow_private_addresses = true",
        "per_host_delay = 0",
        "timeout = 10",
        "[schedule]",
        f'interval = "{interval}"',
        "[notify]",
        "allow_private_addresses = true",
        "[web]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "[[alert]]",
        'channel = "webhook"',
        f'target = "{hook}"',
    ]
    for i in range(site.n):
        lines += [
            "[[policy]]",
            f'service = "Service {i}"',
            'type = "Privacy Policy"',
            f'url = "{site.server.url(site.path(i))}"',
            'select = "main"',
        ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=1000, help="Pages on the local site.")
    parser.add_argument("--minutes", type=int, default=10, help="How long `run` runs.")
    parser.add_argument("--interval", default="2m", help="[schedule] interval of `run`.")
    parser.add_argument("--change", type=float, default=0.02, help="Pages changed per minute.")
    parser.add_argument("--fail", type=float, default=0.01, help="Pages failing per minute.")
    parser.add_argument("--nice", type=int, default=10, help="Niceness of both processes.")
    parser.add_argument("--keep", type=Path, help="Folder to keep the archive in.")
    args = parser.parse_args()
    os.nice(args.nice)  # the site (this process) and `run` (inherits it)
    interval_min = max(1, round(parse_duration(args.interval).total_seconds() / 60))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(15)
    with FixtureServer() as server:
        receiver = WebhookReceiver().start()
        site = Site(server, args.policies, rng)
        config = write_config(folder, site, receiver.url("/hook"), args.interval, free_port())
        log = (folder / "run.log").open("w")
        cli = Path(sys.executable).with_name("policy-archive")
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(cli), "--config", str(config), "run"], cwd=folder, stdout=log, stderr=log
        )
        data = folder / "data"
        rows: list[int] = []
        samples: list[tuple[int, float, list[int]]] = []  # (minute, RSS MB, loose objects)
        first_round = None
        print(f"{args.policies} policies, interval {args.interval}, data in {data}")
        print("minute  RSS MB  fetches  max/mean  loose versions/snapshots  hooks")
        try:
            for minute in range(1, args.minutes + 1):
                end = started + 60 * minute
                while time.monotonic() < end:  # sample the first round every second
                    if proc.poll() is not None:
                        raise SystemExit(f"`run` exited ({proc.returncode}): see {log.name}")
                    if first_round is None and first_records(data / "state.sqlite") >= site.n:
                        first_round = time.monotonic() - started
                    threading.Event().wait(min(1.0, max(0.0, end - time.monotonic())))
                fetched = [r for r in server.requests if r.time - started < 60 * minute]
                fetches = sum(1 for r in fetched if r.time - started >= 60 * (minute - 1))
                rows.append(fetches)
                window = rows[-interval_min:] if len(rows) >= interval_min else rows
                ratio = max(window) / (sum(window) / len(window)) if sum(window) else 0.0
                loose = [loose_objects(data / name) for name in ("archive", "snapshots")]
                rss = rss_mb(proc.pid)
                print(
                    f"{minute:6d}  {rss:6.0f}  {fetches:7d}  {ratio:8.2f}  "
                    f"{loose[0]:14d}/{loose[1]:<9d}  {len(receiver.calls):5d}",
                    flush=True,
                )
                samples.append((minute, rss, loose))
                site.tick(args.change, args.fail)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            receiver.stop()
            log.close()
    summary(rows, samples, first_round, interval_min, args.policies)


def summary(
    rows: list[int],
    samples: list[tuple[int, float, list[int]]],
    first_round: float | None,
    interval_min: int,
    n: int,
) -> None:
    print()
    if first_round is None:
        print(f"first round: not finished ({n} first records)")
        settled = 2
    else:
        print(f"first round of {n} first records: {first_round:.0f} s")
        settled = int(first_round // 60) + 1 + interval_min  # minutes after the transition
    steady = rows[settled:]
    if len(steady) >= interval_min and sum(steady):
        windows = [steady[i : i + interval_min] for i in range(0, len(steady) - interval_min + 1)]
        worst = max(max(w) / (sum(w) / len(w)) for w in windows if sum(w))
        print(f"fetches per minute from minute {settled + 1}: {steady}; worst max/mean {worst:.2f}")
    after = [r for m, r, _ in samples if m > settled]
    if len(after) >= 2:
        growth = (after[-1] - after[0]) / after[0] * 100
        print(
            f"RSS from minute {settled + 1}: {after[0]:.0f} → {after[-1]:.0f} MB "
            f"({growth:+.1f} %), peak {max(r for _, r, _ in samples):.0f} MB"
        )
    most = max((max(loose) for _, _, loose in samples), default=0)
    print(f"most loose objects in one repository at a sample: {most}")


if __name__ == "__main__":
    main()
