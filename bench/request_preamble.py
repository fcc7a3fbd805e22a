"""CPU of what every keyed write pays before its work, in one process: reading the request's token and
claiming its Idempotency-Key (one INSERT that commits on its own), together on one connection as
``kit/http.py`` runs them, and each on its own (the parts, as they were measured before they shared a
connection), with no HTTP around it; and what it pays after its work, storing the response under the key
(here in a unit of work of its own, its BEGIN and COMMIT counted too).

Signs one user in through the services, runs each step ``--times`` times after a warm-up, and prints its
CPU (``time.process_time``) per call, the median of ``--runs`` runs, each on a fresh database, and its
Python function calls per call (counted by cProfile over 1,000 more): on a shared machine the CPU of two
versions can differ by less than its noise, and the count, which does not vary from run to run, shows
which one does less.

    .venv/bin/python bench/request_preamble.py                                   # SQLite, 5 runs
    PYTHONPATH=<other checkout>/src .venv/bin/python bench/request_preamble.py   # another version
    .venv/bin/python bench/request_preamble.py --db postgresql://postgres@127.0.0.1:5432/<scratch> --runs 1

On PostgreSQL it uses the database given and leaves its rows there (use a scratch database, a fresh
one per invocation); on SQLite a temporary file.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _measure(step: Callable[[], None], times: int) -> tuple[float, float]:
    """CPU microseconds and Python function calls per call of ``step``."""
    for _ in range(200):
        step()
    started = time.process_time()
    for _ in range(times):
        step()
    spent = (time.process_time() - started) / times * 1_000_000
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(1000):
        step()
    profile.disable()
    return spent, pstats.Stats(profile).total_calls / 1000  # type: ignore[attr-defined]


def run(url: str, times: int) -> dict[str, tuple[float, float]]:
    """Per step: CPU microseconds and Python function calls per call, on the database at ``url``."""
    from tests.world import PASSWORD, World

    from milepost.auth.service import sign_in, user_for_token
    from milepost.kit import idempotency
    from milepost.kit.context import Context
    from milepost.kit.db import Database
    from milepost.kit.schema import upgrade_schema
    from milepost.kit.time import utcnow
    from milepost.settings import Settings

    upgrade_schema(url)
    database = Database(url)
    settings = Settings(fee_bps=1000, providers="sandbox,manual")
    world = World(database, settings)
    user = world.user()
    token, _ = world.act(None, sign_in, email=user.email, password=PASSWORD, address=None)
    keys = itertools.count()

    def read_token() -> None:
        with database.read_only(autocommit=True) as session:
            found = user_for_token(Context(session, None, settings=settings), token)
        assert found.id == user.id

    def claim_key() -> None:
        scope_key = idempotency.scope(user.id, f"bench-{next(keys)}")
        with idempotency.running(database, scope_key):
            assert idempotency.claim(database, scope_key, "0" * 64, utcnow()) is None

    def read_token_and_claim_key() -> None:
        with ExitStack() as claim, database.autocommit() as session:
            found = user_for_token(Context(session, None, settings=settings), token)
            scope_key = idempotency.scope(found.id, f"bench-{next(keys)}")
            claim.enter_context(idempotency.running(database, scope_key))
            assert idempotency.claim_new(database, session, scope_key, "0" * 64, utcnow())

    stored_key = idempotency.scope(user.id, "bench-stored")
    assert idempotency.claim(database, stored_key, "0" * 64, utcnow()) is None
    body = {"id": "ms_bench", "status": "funded", "amount": 100_000, "currency": "USD"}

    def store_response() -> None:
        with database.unit_of_work() as session:
            idempotency.store(session, stored_key, 200, body)

    results = {
        "token read and key claim (one connection, as kit/http.py)": _measure(
            read_token_and_claim_key, times
        ),
        "token read": _measure(read_token, times),
        "idempotency claim": _measure(claim_key, times),
        "response stored (in a unit of work of its own)": _measure(store_response, times),
    }
    database.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file per run)")
    parser.add_argument("--times", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    results = []
    for _ in range(args.runs):
        if args.db:
            results.append(run(args.db, args.times))
            continue
        with tempfile.TemporaryDirectory(prefix="milepost-preamble-") as folder:
            results.append(run(f"sqlite:///{folder}/preamble.db", args.times))
    for step in results[0]:
        spent = [result[step][0] for result in results]
        calls = statistics.median(result[step][1] for result in results)
        runs = ", ".join(f"{value:.0f}" for value in spent)
        print(
            f"{step}: {statistics.median(spent):.0f} µs CPU (median of {runs}); "
            f"{calls:.0f} Python calls"
        )


if __name__ == "__main__":
    main()
