"""The kill loop as a bench: SIGKILL ``policy-archive check`` N times, count what went wrong.

    .venv/bin/python bench/bench_reliability.py [--rounds 100] [--policies 3] [--seed S]
        [--verify-each-round] [--keep DIR] [-q]

Each round changes some of the fixture site's pages, starts a real ``check`` process and
kills it at a random moment or the moment a ``main`` ref moves, then runs ``check`` again
(the recovery). Prints kills, lost changes (a text a completed check reported but that is not
in git), duplicate commits (one policy's text recorded twice in a row), empty commits (tree
equal to the parent's), crashed checks (a traceback, or a non-zero exit other than "some policy
failed") and the time the first check after a kill took. The harness is
tests/reliability/harness.py, shared with tests/reliability/test_kill_loop.py. Exits 1 if
anything that must not happen happened.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixture_server import FixtureServer  # noqa: E402
from tests.reliability.harness import KillLoop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="Kill rounds (default 100).")
    parser.add_argument("--policies", type=int, default=3, help="Policies on the site.")
    parser.add_argument("--seed", type=int, help="Replay the rounds of an earlier run.")
    parser.add_argument(
        "--verify-each-round",
        action="store_true",
        help="Run `policy-archive verify` after every round (slower; names the round that "
        "broke something verify sees, such as the search index).",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="No line per round.")
    parser.add_argument(
        "--keep", type=Path, help="Work in this folder and keep it (default: a temporary one)."
    )
    args = parser.parse_args()
    log = None if args.quiet else (lambda line: print(line, flush=True))
    with FixtureServer() as server, tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        loop = KillLoop(
            workdir,
            server,
            policies=args.policies,
            seed=args.seed,
            log=log,
            verify_each_round=args.verify_each_round,
        )
        report = loop.run(args.rounds)
    print()
    for line in report.figures():
        print(line)
    problems = report.problems()
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems[:30]:
            print("  " + problem.replace("\n", "\n    "))
        if len(problems) > 30:
            print(f"  … and {len(problems) - 30} more")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
