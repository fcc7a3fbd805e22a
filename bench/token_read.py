"""CPU of reading a request's token, in one process: what every authenticated request pays before it
does anything, measured the way a keyed write reads it (its own read-only block, autocommitted on
PostgreSQL), with no HTTP around it.

Signs one user in through the services, reads the token ``--reads`` times after a warm-up, and prints
the CPU (``time.process_time``) per read, the median of ``--runs`` runs, each on a fresh database, and
the Python function calls per read (counted by cProfile over 1,000 more reads): on a shared machine the
CPU of two versions can differ by less than its noise, and the count, which does not vary from run to
run, shows which one does less.

    .venv/bin/python bench/token_read.py                                   # SQLite, 5 runs of 3000
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/token_read.py   # another version
    .venv/bin/python bench/token_read.py --db postgresql://postgres@127.0.0.1:5432/<scratch> --runs 1

On PostgreSQL it uses the database given and leaves its rows there (use a scratch database, a fresh
one per run); on SQLite a temporary file.
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


def run(url: str, reads: int) -> tuple[float, float]:
    """CPU microseconds and Python function calls per token read on the database at ``url``."""
    from tests.world import PASSWORD, World

    from milepost.auth.service import sign_in, user_for_token
    from milepost.kit.context import Context
    from milepost.kit.db import Database
    from milepost.kit.schema import upgrade_schema
    from milepost.settings import Settings

    upgrade_schema(url)
    database = Database(url)
    settings = Settings(fee_bps=1000, providers="sandbox,manual")
    world = World(database, settings)
    user = world.user()
    token, _ = world.act(None, sign_in, email=user.email, password=PASSWORD, address=None)

    def read() -> None:
        with database.read_only(autocommit=True) as session:
            found = user_for_token(Context(session, None, settings=settings), token)
        assert found.id == user.id

    for _ in range(200):
        read()
    started = time.process_time()
    for _ in range(reads):
        read()
    spent = (time.process_time() - started) / reads * 1_000_000
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(1000):
        read()
    profile.disable()
    calls = pstats.Stats(profile).total_calls / 1000  # type: ignore[attr-defined]
    database.dispose()
    return spent, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file per run)")
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    results = []
    for _ in range(args.runs):
        if args.db:
            results.append(run(args.db, args.reads))
            continue
        with tempfile.TemporaryDirectory(prefix="milepost-token-") as folder:
            results.append(run(f"sqlite:///{folder}/token.db", args.reads))
    runs = ", ".join(f"{spent:.0f}" for spent, _ in results)
    cpu = statistics.median(spent for spent, _ in results)
    calls = statistics.median(calls for _, calls in results)
    print(f"{cpu:.0f} µs CPU per token read (median of {runs}); {calls:.0f} Python calls per read")


if __name__ == "__main__":
    main()
