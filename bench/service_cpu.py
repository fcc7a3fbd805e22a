"""CPU of the milestone lifecycle through the services, in one process: no HTTP, no other process
sharing the measurement, so a small difference between two versions of the code shows through the noise
of a shared machine better than under load (bench/api_load.py).

Each loop creates a milestone on one project, funds it, submits a delivery and approves it (which
releases), each step its own unit of work, as a request would be. After a warm-up, it prints the CPU
(``time.process_time``) per loop, the median of ``--runs`` runs of ``--loops`` loops, each run on a
fresh database, and the Python function calls per loop (counted by cProfile over 50 more loops: the same
in every run, so it shows a difference that the CPU of a shared machine cannot).

    .venv/bin/python bench/service_cpu.py                                   # SQLite, 5 runs of 200
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/service_cpu.py   # another version
    .venv/bin/python bench/service_cpu.py --db postgresql://postgres@127.0.0.1:5432/test --runs 1

On PostgreSQL it uses the database given and leaves its rows there (use a scratch database); on
SQLite a temporary file.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CALL_LOOPS = 50


def run(url: str, loops: int) -> tuple[float, float]:
    """CPU milliseconds and Python function calls per loop on the database at ``url``."""
    from tests.world import World

    from milepost.kit.db import Database
    from milepost.kit.schema import upgrade_schema
    from milepost.milestones import service as milestones
    from milepost.settings import Settings

    upgrade_schema(url)
    database = Database(url)
    world = World(database, Settings(fee_bps=1000, providers="sandbox,manual"))
    client, freelancer, project = world.parties(wallet=10**12)

    def loop() -> None:
        milestone = world.milestone(client, project, 1_000, release_delay_days=0)
        world.act(client, milestones.fund, milestone.id)
        evidence = [{"type": "text", "text": "Delivered"}]
        world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=evidence)
        world.act(client, milestones.approve, milestone.id)

    for _ in range(20):
        loop()
    started = time.process_time()
    for _ in range(loops):
        loop()
    spent = (time.process_time() - started) / loops * 1000
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(CALL_LOOPS):
        loop()
    profile.disable()
    database.dispose()
    return spent, pstats.Stats(profile).total_calls / CALL_LOOPS  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file per run)")
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from milepost import subscribers

    subscribers.install()
    results = []
    for _ in range(args.runs):
        if args.db:
            results.append(run(args.db, args.loops))
            continue
        with tempfile.TemporaryDirectory(prefix="milepost-cpu-") as folder:
            results.append(run(f"sqlite:///{folder}/cpu.db", args.loops))
    runs = ", ".join(f"{cpu:.1f}" for cpu, _ in results)
    cpu = statistics.median(cpu for cpu, _ in results)
    calls = statistics.median(calls for _, calls in results)
    print(f"{cpu:.1f} ms CPU per loop (median of {runs}); {calls:.0f} Python calls per loop")


if __name__ == "__main__":
    main()
