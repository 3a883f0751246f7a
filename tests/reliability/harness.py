"""The reliability harness: a changing fixture site, the real CLI as a process, SIGKILLs, and
the checks that tell whether the archive's history is still true.

Shared by tests/reliability/ and bench/bench_reliability.py (one copy of the kill loop).

A round of :class:`KillLoop`: change some pages, start ``policy-archive check``, SIGKILL its
process group at a random moment in ``[0, typical check duration]`` or exactly when a
repository's ``main`` ref moves (polled every millisecond: the window between a version
commit and the state update), then run ``check`` again without a kill and judge it. At the
end, judge the history itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from store.git import integrity
from tests.fixture_server import FixtureServer
from tests.pages import policy_page

REPO = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"
PREFIXES = ("Start tracking ", "Record change to ", "Re-extract ")
RECORDED = ("first record", "changed")
POLL = 0.001
"""Seconds between two looks at a ref while waiting to kill at the moment it moves."""


# --------------------------------------------------------------------------- processes


def cli_command() -> list[str]:
    """The installed ``policy-archive`` script beside this Python, else the module."""
    script = Path(sys.executable).with_name("policy-archive")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from archive.cli import main; main()"]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_ARCHIVE_")}
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr or TRACEBACK in self.stdout

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return (
            f"`policy-archive {' '.join(self.args)}` exited {self.returncode} after "
            f"{self.seconds:.1f}s\n--- stdout\n{self.stdout.strip()}\n--- stderr (tail)\n{tail}"
        )


def run_cli(config: Path, *args: str, timeout: float = 180.0) -> CliResult:
    """Run ``policy-archive --config CONFIG ARGS`` to the end (a real process)."""
    start = time.monotonic()
    done = subprocess.run(
        [*cli_command(), "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
    )
    return CliResult(args, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def start_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``policy-archive`` in its own process group (so a kill reaches its git children)."""
    return subprocess.Popen(
        [*cli_command(), "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )


def wait_for_writer_lock_free(data_dir: Path, timeout: float = 30.0) -> None:
    """After a SIGKILL the kernel drops the dead group's flock as its members die: wait."""
    path = data_dir / ".writer.lock"
    if not path.exists():
        return
    deadline = time.monotonic() + timeout
    with path.open("rb") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{path} still locked {timeout}s after the kill") from None
                time.sleep(POLL)
                continue
            fcntl.flock(fh, fcntl.LOCK_UN)
            return


# --------------------------------------------------------------------------- git


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {repo} failed: {done.stderr.strip()}")
    return done.stdout


def commit_count(repo: Path) -> int:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--count", "main"], capture_output=True, text=True
    )
    return int(done.stdout) if done.returncode == 0 else 0


def read_ref(repo: Path) -> str:
    """``main``'s loose ref file as it is on disk now ('' if absent)."""
    try:
        return (repo / ".git" / "refs" / "heads" / "main").read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""


def bytes_at(repo: Path, rev: str, path: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True)
    return done.stdout if done.returncode == 0 else None


def file_at(repo: Path, rev: str, path: str) -> str | None:
    data = bytes_at(repo, rev, path)
    return None if data is None else data.decode("utf-8", "replace")


def all_texts(repo: Path, path: str) -> list[str]:
    """Every version of ``path`` on main, oldest first."""
    shas = git(repo, "log", "--reverse", "--format=%H", "main", "--", path).split()
    return [file_at(repo, sha, path) or "" for sha in shas]


def duplicate_commits(repo: Path, policies: list[Policy]) -> list[str]:
    """Commits named after a policy whose file is identical to that policy's previous commit
    (an empty commit is one; so is a second commit of the same text)."""
    names = {f"{prefix}{p.service} {p.type}": p for p in policies for prefix in PREFIXES}
    log = git(repo, "log", "--reverse", "--format=%H %s", "main").splitlines()
    mine = [
        (sha, names[subject])
        for sha, _, subject in (line.partition(" ") for line in log)
        if subject in names
    ]
    query = "".join(f"{sha}:{policy.path}\n" for sha, policy in mine)
    blobs = git(repo, "cat-file", "--batch-check=%(objectname)", stdin=query).split("\n")
    last: dict[str, str] = {}
    found = []
    for (sha, policy), blob in zip(mine, blobs, strict=False):
        if last.get(policy.path) == blob:
            found.append(f"{sha[:12]} records {policy.service} / {policy.type} again, unchanged")
        last[policy.path] = blob
    return found


def state_behind_git(data_dir: Path, policies: list[Policy]) -> list[str]:
    """Policies whose state row names a text other than the one at the versions ``main``: what
    a kill between the version commit and the state update leaves. (State keeps a hash of the
    text, a SHA-256 or, since git decides, the blob id; either is recognised.)"""
    try:
        with contextlib.closing(sqlite3.connect(data_dir / "state.sqlite", timeout=10)) as db:
            query = "SELECT service, type, text_hash FROM policy_state"
            rows = {(service, type_): text_hash for service, type_, text_hash in db.execute(query)}
    except sqlite3.Error:
        return []
    behind = []
    for policy in policies:
        data = bytes_at(data_dir / "archive", "main", policy.path)
        if data is None or policy.key not in rows:
            continue
        known = {
            hashlib.sha256(data).hexdigest(),
            hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest(),
        }
        if rows[policy.key] not in known:
            behind.append(policy.service)
    return behind


# --------------------------------------------------------------------------- the site


@dataclass
class Policy:
    service: str
    type: str
    route: str
    token: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)

    @property
    def path(self) -> str:
        """Its file in the versions repository (names chosen to need no sanitising)."""
        return f"{self.service}/{self.type}.md"


POLICY_TEXT = """Privacy Policy
Who we are
{service} Ltd runs this service and is the controller of your personal data.
What we collect
We collect the account details you give us and the logs our servers keep for thirty days.
Revision
This is revision {token} of the policy, published for the reliability harness.
Your rights
You may ask for a copy of your data, its correction or its deletion at any time.
"""


class Site:
    """A few policies on a :class:`FixtureServer`, each page carrying a unique token."""

    def __init__(self, server: FixtureServer, count: int) -> None:
        self.server = server
        self.policies = [Policy(f"Kill{i}", "Privacy Policy", f"/kill{i}") for i in range(count)]
        self.serial = 0

    def change(self, policies: list[Policy]) -> None:
        for policy in policies:
            self.serial += 1
            policy.token = f"r{self.serial:05d}{policy.service.lower()}"
            text = POLICY_TEXT.format(service=policy.service, token=policy.token)
            self.server.set(policy.route, policy_page(policy.service, text))

    def config_toml(self, data_dir: Path) -> str:
        lines = [
            f"data_dir = {str(data_dir)!r}",
            "",
            "[fetch]",
            "allow_private_addresses = true",
            "per_host_delay = 0.0",
            "timeout = 10.0",
            "",
            "[notify]",
            "allow_private_addresses = true",
        ]
        for policy in self.policies:
            lines += [
                "",
                "[[policy]]",
                f"service = {policy.service!r}",
                f"type = {policy.type!r}",
                f"url = {self.server.url(policy.route)!r}",
                'select = "main"',
            ]
        return "\n".join(lines) + "\n"


def parse_check_table(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``check``'s table: (service, type) → (result, detail), cut at the dashed line's columns.

    A row has two spaces before every column it reaches; the summary line after the table
    ("2 changed, 1 unchanged") has not, and ends the table."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if i > 0 and re.fullmatch(r"-+( {2}-+){3}", line.strip()):
            starts = [m.start() for m in re.finditer(r"-+", line)]
            break
    else:
        return {}
    rows = {}
    for line in lines[i + 1 :]:
        reached = [s for s in starts[1:] if s < len(line)]
        if len(reached) < 2 or any(line[s - 2 : s] != "  " for s in reached):
            break
        bounds = [*starts[1:], None]
        cells = [line[a:b].strip() for a, b in zip(starts, bounds, strict=True)]
        rows[(cells[0], cells[1])] = (cells[2], cells[3])
    return rows


# --------------------------------------------------------------------------- the loop


@dataclass
class Round:
    number: int
    mode: str
    killed: bool = False
    kill_after: float | None = None
    state_behind: list[str] = field(default_factory=list)
    """Policies whose state the kill left behind git (the window the loop aims at)."""
    recovery_seconds: float | None = None
    crashes: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    """``verify``'s FAIL lines after this round (only with ``verify_each_round``)."""


@dataclass
class LoopReport:
    seed: int
    rounds: list[Round]
    empty_commits: dict[str, list[str]]
    duplicates: list[str]
    lost_at_end: list[str]
    fsck: dict[str, list[str]]
    repaired: list[str]
    verify: CliResult | None

    @property
    def kills(self) -> int:
        return sum(r.killed for r in self.rounds)

    @property
    def window_hits(self) -> int:
        """Kills that left state behind git: between a version commit and its state update."""
        return sum(1 for r in self.rounds if r.state_behind)

    @property
    def crashes(self) -> list[str]:
        return [c for r in self.rounds for c in r.crashes]

    @property
    def lost(self) -> list[str]:
        return [x for r in self.rounds for x in r.lost] + self.lost_at_end

    @property
    def recovery_times(self) -> list[float]:
        return [r.recovery_seconds for r in self.rounds if r.killed and r.recovery_seconds]

    def problems(self) -> list[str]:
        """Everything that must not happen, one line each (empty: the history is true)."""
        out = [f"crashed check: {c}" for c in self.crashes]
        out += [f"lost change: {x}" for x in self.lost]
        out += [f"verify after {x}" for r in self.rounds for x in r.unverified]
        out += [f"duplicate commit: {d}" for d in self.duplicates]
        out += [
            f"empty commit in {repo}: {sha}"
            for repo, shas in self.empty_commits.items()
            for sha in shas
        ]
        out += [f"git fsck --strict in {repo}: {p}" for repo, ps in self.fsck.items() for p in ps]
        if self.verify is None or self.verify.returncode != 0:
            out.append(
                "policy-archive verify failed: "
                + (self.verify.describe() if self.verify else "not run")
            )
        return out

    def figures(self) -> list[str]:
        times = self.recovery_times
        median = f"{statistics.median(times):.2f}s" if times else "-"
        worst = f"{max(times):.2f}s" if times else "-"
        modes = {
            m: sum(1 for r in self.rounds if r.killed and r.mode == m)
            for m in sorted({r.mode for r in self.rounds if r.number})
        }
        empty = sum(len(v) for v in self.empty_commits.values())
        verified = "ok" if self.verify and self.verify.returncode == 0 else "FAILED"
        return [
            f"seed                 {self.seed}",
            f"rounds               {sum(1 for r in self.rounds if r.number)}",
            f"kills                {self.kills} ("
            + ", ".join(f"{m}: {n}" for m, n in modes.items())
            + ")",
            f"  between commit and state update: {self.window_hits}",
            f"lost changes         {len(self.lost)}",
            f"duplicate commits    {len(self.duplicates)}",
            f"empty commits        {empty}",
            f"crashed checks       {len(self.crashes)}",
            f"policies FAILED      {sum(len(r.failed) for r in self.rounds)}",
            f"fsck problems        {sum(len(v) for v in self.fsck.values())}",
            f"garbage repaired     {len(self.repaired)} line(s)",
            f"verify               {verified}",
            f"time to recover      median {median}, max {worst}",
        ]


class KillLoop:
    """Kill ``policy-archive check`` again and again; see whether the archive stays true."""

    MODES = ("random", "versions-ref", "random", "snapshots-ref")

    def __init__(
        self,
        workdir: Path,
        server: FixtureServer,
        *,
        policies: int = 3,
        seed: int | None = None,
        log: Callable[[str], None] | None = None,
        verify_each_round: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.rng = random.Random(self.seed)
        self.site = Site(server, policies)
        self.data = self.workdir / "data"
        self.config = self.workdir / "config.toml"
        self.log = log or (lambda line: None)
        self.typical = 0.0
        self.verify_each_round = verify_each_round
        self.seen: dict[tuple[str, str], set[str]] = {p.key: set() for p in self.site.policies}

    @property
    def versions(self) -> Path:
        return self.data / "archive"

    @property
    def snapshots(self) -> Path:
        return self.data / "snapshots"

    # ------------------------------------------------------------------ rounds

    def setup(self) -> Round:
        """A new archive with every policy recorded once (round 0, never killed)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.site.config_toml(self.data), encoding="utf-8")
        self.site.change(self.site.policies)
        for args in (("init",), ("check", "--no-alerts")):
            result = run_cli(self.config, *args)
            if result.returncode != 0 or result.traceback:
                raise AssertionError("the loop cannot start: " + result.describe())
        self.typical = result.seconds
        first = Round(0, "setup")
        self.judge(result, first)
        return first

    def round(self, number: int) -> Round:
        current = Round(number, self.MODES[number % len(self.MODES)])
        changed = [p for p in self.site.policies if self.rng.random() < 0.6]
        self.site.change(changed or [self.rng.choice(self.site.policies)])
        proc = start_cli(self.config, "check", "--no-alerts")
        start = time.monotonic()
        if current.mode == "random":
            self._kill_after(proc, self.rng.uniform(0, self.typical))
        else:
            repo = self.versions if current.mode == "versions-ref" else self.snapshots
            self._kill_on_ref_move(proc, repo, self.rng.randint(1, max(1, len(changed))))
        stdout, stderr = proc.communicate()
        seconds = time.monotonic() - start
        wait_for_writer_lock_free(self.data)
        if proc.returncode == -signal.SIGKILL:
            current.killed, current.kill_after = True, seconds
            current.state_behind = state_behind_git(self.data, self.site.policies)
        else:  # it finished before the kill: a completed check, judged like any other
            self.judge(CliResult(("check",), proc.returncode, stdout, stderr, seconds), current)
        recovery = run_cli(self.config, "check", "--no-alerts")
        current.recovery_seconds = recovery.seconds
        self.judge(recovery, current)
        if self.verify_each_round:
            verified = run_cli(self.config, "verify")
            if verified.returncode != 0:
                current.unverified = [
                    f"round {number}: {line.strip()}"
                    for line in verified.stdout.splitlines()
                    if line.startswith(("[FAIL]", "    - "))
                ] or [f"round {number}: {verified.describe()}"]
        self.log(
            f"round {number:3d} {current.mode:13s} "
            + (f"killed at {current.kill_after:.3f}s" if current.killed else "not killed     ")
            + f"  recovery {recovery.seconds:.2f}s rc={recovery.returncode}"
            + (
                f"  state behind git: {','.join(current.state_behind)}"
                if current.state_behind
                else ""
            )
            + ("  CRASH" if current.crashes else "")
            + ("  LOST" if current.lost else "")
            + ("  UNVERIFIED" if current.unverified else "")
        )
        return current

    def _kill_after(self, proc: subprocess.Popen[str], delay: float) -> None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    def _kill_on_ref_move(self, proc: subprocess.Popen[str], repo: Path, moves: int) -> None:
        """SIGKILL the moment ``main`` of ``repo`` has moved ``moves`` times."""
        deadline = time.monotonic() + 10 * self.typical + 30
        last, seen = read_ref(repo), 0
        while proc.poll() is None:
            ref = read_ref(repo)
            if ref != last:
                last, seen = ref, seen + 1
                if seen >= moves:
                    os.killpg(proc.pid, signal.SIGKILL)
                    return
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(POLL)

    # ------------------------------------------------------------------ judging

    def judge(self, result: CliResult, current: Round) -> None:
        """A check that ran to its end: no crash, and every text it saw is in git."""
        label = f"round {current.number}"
        rows = parse_check_table(result.stdout)
        failed = [k for k, (status, _) in rows.items() if status == "FAILED"]
        current.failed += [f"{label}: {s} / {t}: {rows[(s, t)][1]}" for s, t in failed]
        if result.traceback:
            current.crashes.append(f"{label}: traceback\n{result.describe()}")
        elif result.returncode not in (0, 1) or (result.returncode == 1 and not failed):
            current.crashes.append(f"{label}: {result.describe()}")
        elif len(rows) != len(self.site.policies):
            current.crashes.append(f"{label}: no result table\n{result.describe()}")
        if result.returncode not in (0, 1) or not rows:
            return
        head = read_ref(self.versions) or "main"
        for policy in self.site.policies:
            status, detail = rows.get(policy.key, ("", ""))
            if status in ("", "FAILED"):
                continue
            self.seen[policy.key].add(policy.token)
            text = file_at(self.versions, head, policy.path) or ""
            if policy.token not in text:
                current.lost.append(
                    f"{label}: check said {policy.service} / {policy.type} is {status} "
                    f"({detail}) but main has not got revision {policy.token}"
                )
            if status in RECORDED:
                at = file_at(self.versions, detail, policy.path) if detail else None
                if at is None or policy.token not in at:
                    current.lost.append(
                        f"{label}: check reported version {detail!r} of {policy.service} with "
                        f"revision {policy.token}, but git has no such version"
                    )

    def finish(self, rounds: list[Round]) -> LoopReport:
        lost = []
        for policy in self.site.policies:
            history = "\n".join(all_texts(self.versions, policy.path))
            lost += [
                f"revision {token} of {policy.service} was seen by a check but is not in git"
                for token in sorted(self.seen[policy.key])
                if token not in history
            ]
        repos = {"versions": self.versions, "snapshots": self.snapshots}
        fsck = {
            name: [p for p in integrity.fsck(path).problems if not p.startswith("dangling commit")]
            for name, path in repos.items()
        }
        repaired = run_cli(self.config, "verify", "--repair")
        repaired_lines = [
            x for x in repaired.stdout.splitlines() if x.startswith("Repaired: removed")
        ]
        for name, path in repos.items():
            fsck[name] += [f"after --repair: {p}" for p in integrity.fsck(path).problems]
        return LoopReport(
            seed=self.seed,
            rounds=rounds,
            empty_commits={n: integrity.empty_commits(p) for n, p in repos.items()},
            duplicates=duplicate_commits(self.versions, self.site.policies),
            lost_at_end=lost,
            fsck=fsck,
            repaired=repaired_lines,
            verify=run_cli(self.config, "verify"),
        )

    def run(self, rounds: int) -> LoopReport:
        first = self.setup()
        return self.finish([first, *(self.round(n) for n in range(1, rounds + 1))])
