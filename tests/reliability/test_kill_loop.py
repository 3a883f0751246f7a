"""SIGKILL ``policy-archive check`` at random moments and when a ref moves; the history stays
true: no crashed follow-up check, no empty or duplicate commit, nothing lost, fsck clean.

``KILL_ROUNDS`` (default 30) sets the number of rounds, ``KILL_SEED`` replays a run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixture_server import FixtureServer
from tests.reliability.harness import KillLoop


@pytest.mark.slow
def test_kill_loop_keeps_the_history_true(tmp_path: Path, fixture_server: FixtureServer):
    rounds = int(os.environ.get("KILL_ROUNDS", "30"))
    seed = int(os.environ["KILL_SEED"]) if os.environ.get("KILL_SEED") else None
    loop = KillLoop(tmp_path, fixture_server, policies=3, seed=seed, log=print)
    report = loop.run(rounds)
    figures = "\n".join(report.figures())
    assert report.kills >= rounds // 2, f"too few checks were killed:\n{figures}"
    at_ref = sum(1 for r in report.rounds if r.killed and r.mode == "versions-ref")
    if at_ref >= 5:  # about 3 in 4 land there: the loop must test what it is for
        assert report.window_hits, f"no kill hit a commit before its state update:\n{figures}"
    problems = report.problems()
    shown = "\n".join(problems[:20])
    assert not problems, (
        f"{len(problems)} problem(s), replay with KILL_SEED={report.seed}:\n{shown}\n{figures}"
    )
