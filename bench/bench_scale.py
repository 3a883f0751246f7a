"""Scale of the tracking core: 1,000 and 10,000 local policies through the real pipeline.

    nice -n 10 .venv/bin/python bench/bench_scale.py [--sizes 1000,10000] [--workers 4]
        [--profile] [--profile-extra 200] [--keep]

For each size N a fresh archive (under bench/out/, deleted at the end unless ``--keep``)
is filled and checked by ``archive.pipeline.Pipeline.check`` in this process, against N pages
(~20 KB of real policy text each, from ../shared/corpus/ota, varied per policy) served by a
local HTTP/1.1 server in another process (its CPU is not counted; each response is written in
one send, see MEASUREMENTS.md on Nagle + delayed ACK). Steps, one ``check`` of all N each:

- first records: N new policies into an empty archive (N first records);
- unchanged: the same bytes again (200, no validators: body hash shortcut);
- same text, changed bytes: a rotating token in an HTML comment, a data- attribute and a
  <meta> (all dropped by extraction): fetch + extract + compare, nothing recorded;
- real changes: one sentence of each policy's text changed (N changes recorded).

Per step it prints wall ms and CPU ms per policy: ``own`` is this process (time.process_time,
all threads), ``child`` git and other processes it spawned (RUSAGE_CHILDREN of those that
exited, e.g. ``git repack``, ``git log``, plus the CPU used during the step by children still
alive, e.g. GitPython's persistent ``git cat-file``; the HTTP server excluded), ``total`` both;
the part of the step spent in ``archive.sync_index()`` (the search-index update ``check``
runs at the end of a batch, timed around the call); and each repository's loose objects
(files under .git/objects/??) and their size, packs, and the search index size, after the step.
Then the growth ratio (largest size ÷ smallest) of each step's per-policy figures, and one
line against issue 15's targets.

``--profile`` adds, at the largest size, a profiled step: ``--profile-extra`` new policies'
first records into the N-file archive (so the headline figures are not slowed by the
profiler), and prints the top 15 functions by own time and by cumulative time (all threads).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import html
import io
import json
import os
import pstats
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared"
OTA = SHARED / "corpus" / "ota" / "policy_histories.jsonl"
SEEDS = SHARED / "fixtures" / "seed-policies"
TMP_ROOT = REPO / "bench" / "out"  # git-ignored; on the same disk as the checkout
PAGE_CHARS = 18_000  # policy text per page; with the site chrome and markup ~20 KB
TYPE = "Privacy Policy"

# ----------------------------------------------------------------------------- the site
# Runs as `bench_scale.py --serve`: a separate process, so its CPU is not the bench's.


def load_texts() -> list[list[str]]:
    """Paragraph lists of real policy texts (OTA current versions in English, 8–80 KB)."""
    texts: list[list[str]] = []
    if OTA.is_file():
        with OTA.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record.get("language") != "en" or not record.get("versions"):
                    continue
                text = record["versions"][-1].get("text") or ""
                if 8_000 <= len(text) <= 80_000:
                    paras = [p.strip() for p in text.split("\n") if len(p.strip()) > 2]
                    texts.append(paras)
    if not texts:  # no corpus: the seed policies
        for path in sorted(SEEDS.glob("*.txt")):
            texts.append([p.strip() for p in path.read_text("utf-8").splitlines() if p.strip()])
    return texts


def md_to_html(paras: list[str]) -> str:
    out: list[str] = []
    in_list = False
    for line in paras:
        item = line.startswith(("- ", "* "))
        if in_list and not item:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = min(6, max(2, len(line) - len(line.lstrip("#"))))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{html.escape(line[2:])}</li>")
        else:
            out.append(f"<p>{html.escape(line)}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


class Site:
    """Page ``/p/<i>``: policy ``i``'s text (token and review sentence set by ``/_set``)."""

    def __init__(self) -> None:
        self.texts = load_texts()
        self.token = 0  # in a comment, a data- attribute and a <meta>: extraction drops them
        self.gen = 0  # in the text: a real change
        self._parts: dict[int, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def parts(self, i: int) -> tuple[str, str]:
        with self._lock:
            cached = self._parts.get(i)
        if cached:
            return cached
        paras = self.texts[i % len(self.texts)]
        rng = random.Random(i)
        start = rng.randrange(len(paras))
        picked: list[str] = []
        size = 0
        k = start
        while size < PAGE_CHARS and len(picked) < 4 * len(paras):
            p = paras[k % len(paras)]
            picked.append(p)
            size += len(p)
            k += 1
        middle = len(picked) // 2
        head = [f"# Service {i:05d} {TYPE}", f"This notice applies to Service {i:05d}."]
        first = md_to_html(head + picked[:middle])
        second = md_to_html(picked[middle:])
        with self._lock:
            self._parts[i] = (first, second)
        return first, second

    def page(self, i: int) -> bytes:
        first, second = self.parts(i)
        token, gen = self.token, self.gen
        review = (
            f"<p>Review note: this policy was last reviewed in review cycle {gen} "
            f"for Service {i:05d}.</p>"
        )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="build-id" content="b{token:08d}">'
            f"<title>Service {i:05d} {TYPE}</title>"
            "<style>.cookie-banner{position:fixed;bottom:0}</style>"
            "<script>window.dataLayer = window.dataLayer || [];</script></head><body>"
            '<header><nav><a href="/">Home</a> <a href="/pricing">Pricing</a> '
            '<a href="/contact?utm_source=nav">Contact</a></nav></header>'
            '<div class="cookie-banner">We use cookies. <button>Accept</button></div>'
            f'<main id="content" data-build="b{token:08d}">\n<!-- build b{token:08d} -->\n'
            f"{first}\n{review}\n{second}\n</main>"
            '<footer><p>© 2026 Example Ltd.</p><a href="/privacy">Privacy</a></footer>'
            '<script src="/analytics.js"></script></body></html>'
        ).encode()


def serve() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    site = Site()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            status, body = 200, b"ok"
            if url.path == "/_set":
                q = parse_qs(url.query)
                site.token = int(q.get("token", [site.token])[0])
                site.gen = int(q.get("gen", [site.gen])[0])
            elif url.path.startswith("/p/") and url.path[3:].isdigit():
                body = site.page(int(url.path[3:]))
            else:
                status, body = 404, b"not found"
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            self.wfile.write(head + body)  # one send

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


# ----------------------------------------------------------------------------- measuring


def _children() -> set[int]:
    pids: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                pids.update(
                    int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split()
                )
    return pids


_TICK = os.sysconf("SC_CLK_TCK")


def live_children_cpu(exclude: set[int]) -> dict[int, float]:
    """CPU seconds used so far by each live child process (and its reaped children)."""
    out = {}
    for pid in _children() - exclude:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            out[pid] = sum(int(x) for x in fields[11:15]) / _TICK
    return out


def exited_children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Clock:
    """Wall, own CPU and children's CPU between start() and stop()."""

    exclude: set[int]
    wall: float = 0.0
    own: float = 0.0
    child: float = 0.0
    _start: tuple = field(default=(), repr=False)

    def start(self) -> Clock:
        self._start = (
            time.perf_counter(),
            time.process_time(),
            exited_children_cpu(),
            live_children_cpu(self.exclude),
        )
        return self

    def stop(self) -> Clock:
        wall0, own0, exited0, live0 = self._start
        live1 = live_children_cpu(self.exclude)
        self.wall = time.perf_counter() - wall0
        self.own = time.process_time() - own0
        # exited children count whole in RUSAGE_CHILDREN: take off what they had used before
        child = exited_children_cpu() - exited0
        for pid, used in live1.items():
            child += used - live0.get(pid, 0.0)
        for pid, used in live0.items():
            if pid not in live1:
                child -= used
        self.child = max(0.0, child)
        return self

    @property
    def cpu(self) -> float:
        return self.own + self.child


def repo_disk(path: Path) -> dict[str, float]:
    objects = path / ".git" / "objects"
    loose = loose_bytes = 0
    for folder in objects.glob("??"):
        with os.scandir(folder) as entries:
            for e in entries:
                if not e.name.startswith("tmp_"):
                    loose += 1
                    loose_bytes += e.stat().st_size
    packs = list((objects / "pack").glob("*.pack"))
    return {
        "loose": loose,
        "loose_mb": loose_bytes / 1e6,
        "packs": len(packs),
        "pack_mb": sum(p.stat().st_size for p in packs) / 1e6,
    }


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# ----------------------------------------------------------------------------- the bench


@dataclass
class StepResult:
    size: int
    step: str
    count: int
    clock: Clock
    index: Clock | None
    statuses: dict[str, int]
    disk: str

    def per(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.count)


STEPS = (
    ("first", "first records", "first_record"),
    ("same", "unchanged (same bytes)", "unchanged"),
    ("token", "same text, changed bytes", "unchanged"),
    ("change", "real changes", "changed"),
)


def set_site(port: int, **values: int) -> None:
    query = "&".join(f"{k}={v}" for k, v in values.items())
    with urlopen(f"http://127.0.0.1:{port}/_set?{query}", timeout=10) as r:
        r.read()


class IndexTimer:
    """Wraps ``archive.sync_index`` to time the index update ``check`` runs."""

    def __init__(self, archive, exclude: set[int]) -> None:
        self.archive = archive
        self.exclude = exclude
        self.original = archive.sync_index
        self.clocks: list[Clock] = []
        archive.sync_index = self

    def __call__(self, *args, **kwargs):
        clock = Clock(self.exclude).start()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.clocks.append(clock.stop())

    def take(self) -> Clock | None:
        if not self.clocks:
            return None
        total = Clock(self.exclude)
        for c in self.clocks:
            total.wall += c.wall
            total.own += c.own
            total.child += c.child
        self.clocks = []
        return total


def describe_disk(config) -> str:
    parts = []
    for name, path in (("versions", config.archive_dir), ("snapshots", config.snapshots_dir)):
        d = repo_disk(path)
        parts.append(
            f"{name} {d['loose']} loose ({d['loose_mb']:.1f} MB), "
            f"{d['packs']} packs ({d['pack_mb']:.1f} MB)"
        )
    if config.index_dir.exists():
        parts.append(f"index {folder_mb(config.index_dir):.1f} MB")
    return "; ".join(parts)


def print_step(r: StepResult) -> None:
    c = r.clock
    line = (
        f"  {r.step:<26} wall {r.per(c.wall):7.2f} ms/policy  CPU own {r.per(c.own):7.2f} "
        f"+ child {r.per(c.child):6.2f} = {r.per(c.cpu):7.2f} ms/policy  "
        f"({c.wall:.1f} s wall)"
    )
    print(line, flush=True)
    if r.index:
        i = r.index
        print(
            f"    of which index sync: wall {r.per(i.wall):.2f} ms/policy "
            f"({i.wall * 100 / max(c.wall, 1e-9):.0f} % of wall), CPU {r.per(i.cpu):.2f} "
            f"ms/policy ({i.cpu * 100 / max(c.cpu, 1e-9):.0f} % of CPU)",
            flush=True,
        )
    print(f"    statuses {r.statuses}", flush=True)
    print(f"    disk: {r.disk}", flush=True)


def run_size(
    size: int, port: int, exclude: set[int], args: argparse.Namespace, profile: bool
) -> list[StepResult]:
    from archive.app import Archive
    from archive.config import config_from_mapping
    from archive.fetch import Fetcher
    from archive.tracking.pipeline import Pipeline

    extra = args.profile_extra if profile else 0
    tmp = Path(tempfile.mkdtemp(prefix=f"scale-{size}-", dir=TMP_ROOT))
    policies = [
        {
            "service": f"Service {i:05d}",
            "type": TYPE,
            "url": f"http://127.0.0.1:{port}/p/{i}",
            "select": "main",
        }
        for i in range(size + extra)
    ]
    config = config_from_mapping(
        {
            "data_dir": str(tmp / "data"),
            "policy": policies,
            "fetch": {
                "allow_private_addresses": True,
                "per_host_delay": 0,
                "concurrency": args.workers,
            },
        },
        path=tmp / "config.toml",
    )
    results: list[StepResult] = []
    print(f"\n== {size} policies (data in {tmp})", flush=True)
    try:
        with (
            Archive.open(config, writer=True, create=True) as archive,
            Fetcher(config.fetch) as fetcher,
        ):
            pipeline = Pipeline(archive, fetcher)
            timer = IndexTimer(archive, exclude)
            main = list(config.policies)[:size]
            for key, label, expected in STEPS:
                if key == "first":
                    set_site(port, token=0, gen=0)
                elif key == "token":
                    set_site(port, token=1)
                elif key == "change":
                    set_site(port, gen=1)
                timer.take()
                clock = Clock(exclude).start()
                out = pipeline.check(main)
                clock.stop()
                statuses: dict[str, int] = {}
                for r in out:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                if statuses.get(expected) != size:
                    failed = next((r for r in out if r.status != expected), None)
                    print(f"    UNEXPECTED: wanted {size} {expected}; e.g. {failed}")
                result = StepResult(
                    size, label, size, clock, timer.take(), statuses, describe_disk(config)
                )
                print_step(result)
                results.append(result)
            if extra:
                profile_step(pipeline, list(config.policies)[size:], size, exclude, timer)
                print(f"    disk: {describe_disk(config)}", flush=True)
    finally:
        if args.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def profile_step(pipeline, policies: list, size: int, exclude: set[int], timer) -> None:
    """First records of ``policies`` into the ``size``-file archive, under cProfile in every
    thread (one profiler per worker thread, merged)."""
    local = threading.local()
    profilers: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = pipeline.track

    def track(policy):
        prof = getattr(local, "prof", None)
        if prof is None:
            prof = local.prof = cProfile.Profile()
            with lock:
                profilers.append(prof)
        prof.enable()
        try:
            return original(policy)
        finally:
            prof.disable()

    pipeline.track = track
    main_prof = cProfile.Profile()
    timer.take()
    clock = Clock(exclude).start()
    main_prof.enable()
    try:
        out = pipeline.check(policies)
    finally:
        main_prof.disable()
        clock.stop()
        pipeline.track = original
    statuses: dict[str, int] = {}
    for r in out:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    n = len(policies)
    index = timer.take()
    print(
        f"\n  profiled: {n} more first records into {size} files: wall "
        f"{clock.wall * 1000 / n:.2f} ms/policy, CPU own {clock.own * 1000 / n:.2f} + child "
        f"{clock.child * 1000 / n:.2f} ms/policy (under the profiler); index sync "
        f"{(index.wall if index else 0) * 1000 / n:.2f} ms/policy wall; {statuses}",
        flush=True,
    )
    stats = pstats.Stats(main_prof)
    for prof in profilers:
        stats.add(prof)
    for order, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats(order).print_stats(15)
        lines = buf.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
        print(f"  top 15 by {title} (all threads; cumulative counts worker threads' waits):")
        for line in lines[start : start + 16]:
            print("    " + line.replace(str(REPO) + "/", "").replace(sys.prefix, "<venv>"))


def summary(results: list[StepResult], sizes: list[int]) -> None:
    by = {(r.size, r.step): r for r in results}
    small, large = sizes[0], sizes[-1]
    print(f"\n== growth, {large} ÷ {small} (per-policy figures)")
    for _, label, _ in STEPS:
        a, b = by.get((small, label)), by.get((large, label))
        if not a or not b:
            continue

        def ratio(x: float, y: float) -> str:
            return f"{x / y:.2f}" if y > 0 else "n/a"

        print(
            f"  {label:<26} wall {ratio(b.per(b.clock.wall), a.per(a.clock.wall))}  "
            f"CPU own {ratio(b.per(b.clock.own), a.per(a.clock.own))}  "
            f"CPU total {ratio(b.per(b.clock.cpu), a.per(a.clock.cpu))}"
        )
    checks = []

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    first_1k = by.get((1000, "first records"))
    if first_1k:
        v = first_1k.per(first_1k.clock.cpu)
        checks.append(
            f"first record CPU into 1,000 files {v:.1f} ms "
            f"(own {first_1k.per(first_1k.clock.own):.1f}) ≤ 10: {verdict(v <= 10)}"
        )
    first_10k = by.get((10000, "first records"))
    if first_1k and first_10k:
        v = first_10k.per(first_10k.clock.cpu) / first_1k.per(first_1k.clock.cpu)
        checks.append(f"10,000 ÷ 1,000 first-record CPU {v:.2f} ≤ 1.2: {verdict(v <= 1.2)}")
    if first_10k:
        w = first_10k.clock.wall
        checks.append(f"10,000 first records wall {w / 60:.1f} min ≤ 5: {verdict(w <= 300)}")
    for label, target in (("unchanged (same bytes)", 2), ("same text, changed bytes", 8)):
        worst = max(
            (by[(s, label)] for s in sizes if (s, label) in by),
            key=lambda r: r.per(r.clock.cpu),
            default=None,
        )
        if worst:
            v = worst.per(worst.clock.cpu)
            checks.append(
                f"{label} CPU {v:.2f} ms at {worst.size} "
                f"(own {worst.per(worst.clock.own):.2f}) ≤ {target}: {verdict(v <= target)}"
            )
    print("\n== targets (issue 15; CPU = own + children, per policy)")
    print("  " + " | ".join(checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--workers", type=int, default=4, help="[fetch] concurrency")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-extra", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    TMP_ROOT.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        print(
            f"bench_scale: sizes {sizes}, {args.workers} workers, site on port {port} "
            f"(pid {server.pid}), python {sys.version.split()[0]}, "
            f"nice {os.nice(0)}, {os.cpu_count()} CPUs",
            flush=True,
        )
        with urlopen(f"http://127.0.0.1:{port}/p/0", timeout=30) as r:
            print(f"page size ~{len(r.read()) / 1000:.1f} KB", flush=True)
        results: list[StepResult] = []
        for size in sizes:
            results += run_size(
                size, port, {server.pid}, args, profile=args.profile and size == sizes[-1]
            )
        summary(results, sizes)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
