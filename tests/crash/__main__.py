"""``python -m tests.crash``: the long crash and fault run (``make crash``); prints the figures.

Exit 1 if anything acknowledged was lost or doubled, money was not conserved, the ledger did not verify,
a due auto-approval did not run exactly once, or a claim left by a killed server was still in flight.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tests.crash.harness import Figures, postgres_admin_url, run


def failures(figures: Figures) -> list[str]:
    """Every figure that must be zero and is not."""
    must_be_zero = (
        "lost",
        "duplicated",
        "mismatched",
        "unresolved",
        "conservation_failures",
        "ledger_verify_failures",
        "auto_approval_failures",
        "in_flight_given_up",
    )
    return [f"{name} = {getattr(figures, name)}" for name in must_be_zero if getattr(figures, name)]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="server kills per database")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients")
    parser.add_argument(
        "--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument("--worker-milestones", type=int, default=None, help="due auto-approvals")
    parser.add_argument("--worker-kills", type=int, default=None, help="default: --rounds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()

    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    if "postgres" in kinds and postgres_admin_url()[0] is None:
        print(postgres_admin_url()[1], file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="milepost-crash-"))
    started = datetime.now(UTC)
    results = []
    for kind in kinds:
        results.append(
            run(
                kind,
                workdir,
                rounds=args.rounds,
                clients=args.clients,
                worker_milestones=args.worker_milestones,
                worker_kill_count=args.worker_kills,
                seed=args.seed,
                say=lambda line: print(line, flush=True),
            )
        )
    print()
    print(f"Crash and fault run of {started:%Y-%m-%d %H:%M} UTC ({args.clients} clients)")
    bad = False
    for figures in results:
        for line in figures.lines():
            print(line)
        for problem in figures.problems:
            print(f"  problem: {problem}")
        failed = failures(figures)
        if failed:
            bad = True
            print(f"  FAILED: {', '.join(failed)}")
    if bad or args.keep:
        print(f"logs: {workdir}")
    else:
        # The logs, the SQLite files and the claim holders' mark directories beside them.
        shutil.rmtree(workdir)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
