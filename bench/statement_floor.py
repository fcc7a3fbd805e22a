"""What a money operation's statements cost the client on their own: the floor under its CPU on this stack.

In one process on PostgreSQL (no HTTP, no other process sharing the measurement), it runs the milestone
lifecycle through the services (create, fund, submit, approve, each its own unit of work, as
``bench/service_cpu.py`` does) and records every statement each operation sends: the SQLAlchemy
statement with its parameters, and the SQL and parameters psycopg is handed. Then, for each operation,
it times the operation itself and three ways of sending the same statements again, in the same order,
on the same rows:

- ``services``: the operation as Milepost runs it: its rules, the ORM (objects loaded, the unit of work
  flushed), the audit event, the notifications, then the statements through SQLAlchemy and psycopg;
- ``Core``: the recorded SQLAlchemy statements executed again through SQLAlchemy Core on Milepost's
  engine, in pipeline mode as a unit of work runs them (the writes queued, a Sync where an answer is
  needed), with no ORM and none of Milepost's code: what the statements cost through SQLAlchemy;
- ``psycopg``: the recorded SQL and parameters on a plain psycopg connection in pipeline mode (a Sync
  where the operation waited for an answer), no SQLAlchemy: what they cost the driver alone;
- ``no waits``: the same, with one Sync per operation only (where its COMMIT was), as if it waited for
  no answer before it: not a way an operation could run (its reads decide its writes), but the
  difference shows what each wait for an answer costs the client's CPU.

The replays run on a copy of the database made before the recorded loop (so the rows the loop wrote
are not there yet), the four operations of a loop one after the other in one transaction that is rolled
back (so the same rows serve every replay), each operation's part ended by a Sync where its COMMIT was;
the services commit each operation. Each figure is the client's CPU (``time.process_time``) per
operation, the median of ``--runs`` runs of ``--loops`` loops. The database's own CPU is in none of
them, and none has HTTP, the token read or the idempotency key's claim: those are the same for every way.

    .venv/bin/python bench/statement_floor.py
    .venv/bin/python bench/statement_floor.py --runs 5 --loops 300

It creates a PostgreSQL database of its own (``milepost_floor_<pid>_<random>``) and drops only that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_load import create_postgres_database, drop_postgres_database, own_database_name

OPERATIONS = ("create", "fund", "submit", "approve")
WAYS = ("services", "Core", "psycopg", "no waits")
WIDTHS = (10, 8, 9, 10)


@dataclass
class Recorded:
    """One operation's statements: as SQLAlchemy executed them, and as psycopg was handed them."""

    core: list[tuple[Any, Any, dict[str, Any], bool]] = field(default_factory=list)
    driver: list[tuple[str, Any, bool, bool]] = field(default_factory=list)


class Recorder:
    """Engine event hooks that keep the statements of the operation being recorded (``into``)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.target: Recorded | None = None

    @contextmanager
    def into(self, recorded: Recorded) -> Iterator[None]:
        """Record what runs in the block (the hooks are on only meanwhile: the timed loops run without
        them)."""
        from sqlalchemy import event

        self.target = recorded
        event.listen(self.engine, "before_execute", self._core)
        event.listen(self.engine, "before_cursor_execute", self._driver)
        try:
            yield
        finally:
            event.remove(self.engine, "before_execute", self._core)
            event.remove(self.engine, "before_cursor_execute", self._driver)
            self.target = None

    def _core(self, _conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        from milepost.kit import db

        if self.target is not None:
            parameters = multiparams if multiparams else (params or None)
            self.target.core.append((clause, parameters, dict(options), db._flushing.get()))

    def _driver(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        from milepost.kit import db

        if self.target is not None:
            waited = db._waits_for_answer(context)
            self.target.driver.append((statement, parameters, executemany, waited))


def record(
    url: str, snapshot: Callable[[], None]
) -> tuple[Any, dict[str, Recorded], Callable[[], dict[str, float]]]:
    """The database, each operation's statements, and one loop of the lifecycle through the services
    that returns the CPU seconds each operation took. After a warm-up, ``snapshot`` is called with the
    database closed (to copy it as it is before the loop that is recorded, for the replays)."""
    from tests.world import World

    from milepost import subscribers
    from milepost.kit.db import Database
    from milepost.kit.schema import upgrade_schema
    from milepost.milestones import service as milestones
    from milepost.settings import Settings

    subscribers.install()
    upgrade_schema(url)
    database = Database(url)
    world = World(database, Settings(fee_bps=1000, providers="sandbox,manual"))
    client, freelancer, project = world.parties(wallet=10**12)
    recorder = Recorder(database.engine)
    recorded: dict[str, Recorded] = {name: Recorded() for name in OPERATIONS}
    evidence = [{"type": "text", "text": "Delivered"}]

    def loop(recording: bool = False) -> dict[str, float]:
        spent: dict[str, float] = {}

        def step(name: str, action: Callable[[], Any]) -> Any:
            started = time.process_time()
            if recording:
                with recorder.into(recorded[name]):
                    result = action()
            else:
                result = action()
            spent[name] = time.process_time() - started
            return result

        milestone = step(
            "create", lambda: world.milestone(client, project, 1_000, release_delay_days=0)
        )
        step("fund", lambda: world.act(client, milestones.fund, milestone.id))
        step(
            "submit",
            lambda: world.act(
                freelancer, milestones.submit, milestone.id, note="Done", evidence=evidence
            ),
        )
        step("approve", lambda: world.act(client, milestones.approve, milestone.id))
        return spent

    for _ in range(20):
        loop()
    database.engine.dispose()
    snapshot()
    loop(recording=True)
    return database, recorded, loop


def replay_core(database: Any, recorded: dict[str, Recorded], spent: dict[str, float]) -> None:
    """The recorded SQLAlchemy statements of one loop on Milepost's engine, in pipeline mode, each
    operation's ended by a Sync (where its COMMIT was), all in one transaction rolled back."""
    from milepost.kit import db

    with database.rehearsal() as session, db.pipelined(session):
        connection = session.connection()
        for op in OPERATIONS:
            started = time.process_time()
            for clause, parameters, options, flushing in recorded[op].core:
                token = db._flushing.set(flushing)
                try:
                    connection.execute(clause, parameters, execution_options=options)
                finally:
                    db._flushing.reset(token)
            db.sync(connection)
            spent[op] += time.process_time() - started


def replay_driver(
    connection: Any, recorded: dict[str, Recorded], spent: dict[str, float], *, waits: bool = True
) -> None:
    """The recorded SQL and parameters of one loop on a psycopg connection (autocommit, so BEGIN is
    ours) in pipeline mode: a Sync where an operation waited for an answer and where its COMMIT was, all
    in one transaction rolled back."""
    with connection.pipeline() as pipeline:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        for op in OPERATIONS:
            started = time.process_time()
            for statement, parameters, executemany, waited in recorded[op].driver:
                if executemany:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters)
                if waited and waits:
                    pipeline.sync()
                    if cursor.description is not None:
                        cursor.fetchall()
            pipeline.sync()
            spent[op] += time.process_time() - started
        cursor.execute("ROLLBACK")


def per_operation(replay: Callable[[dict[str, float]], None], loops: int) -> dict[str, float]:
    """CPU seconds per operation over ``loops`` replays of the loop (after a few not counted)."""
    spent = dict.fromkeys(OPERATIONS, 0.0)
    for _ in range(10):
        replay(dict.fromkeys(OPERATIONS, 0.0))
    for _ in range(loops):
        replay(spent)
    return {op: seconds / loops for op, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "MILEPOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    import psycopg

    from milepost.kit.db import Database

    name, copy = own_database_name("floor"), own_database_name("floorcopy")
    url = create_postgres_database(args.pg_url, name)
    copied = False

    def snapshot() -> None:
        nonlocal copied
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
        copied = True

    try:
        database, recorded, loop = record(url, snapshot)
        replica = Database(url.rsplit("/", 1)[0] + "/" + copy)
        figures: dict[str, dict[str, list[float]]] = {
            way: {op: [] for op in OPERATIONS} for way in WAYS
        }
        with psycopg.connect(replica.url.replace("+psycopg", ""), autocommit=True) as plain:
            for _ in range(args.runs):
                spent = dict.fromkeys(OPERATIONS, 0.0)
                for _ in range(args.loops):
                    for op, seconds in loop().items():
                        spent[op] += seconds
                for op in OPERATIONS:
                    figures["services"][op].append(spent[op] / args.loops)
                core = per_operation(lambda s: replay_core(replica, recorded, s), args.loops)
                driver = per_operation(lambda s: replay_driver(plain, recorded, s), args.loops)
                unwaited = per_operation(
                    lambda s: replay_driver(plain, recorded, s, waits=False), args.loops
                )
                for op in OPERATIONS:
                    figures["Core"][op].append(core[op])
                    figures["psycopg"][op].append(driver[op])
                    figures["no waits"][op].append(unwaited[op])
        replica.dispose()
        database.dispose()
    finally:
        drop_postgres_database(args.pg_url, name)
        if copied:
            drop_postgres_database(args.pg_url, copy)

    print(
        f"client CPU per operation on PostgreSQL, median of {args.runs} runs of {args.loops} "
        "(ms; the database's own CPU not included)"
    )
    print(
        f"  {'operation':<10}{'statements':>11}{'waits':>6}"
        + "".join(f"{way:>{w}}" for way, w in zip(WAYS, WIDTHS, strict=True))
    )
    rows: list[tuple[str, int, int, list[float]]] = [
        (
            op,
            len(recorded[op].driver),
            sum(waited for *_, waited in recorded[op].driver),
            [statistics.median(figures[way][op]) * 1000 for way in WAYS],
        )
        for op in OPERATIONS
    ]
    rows.append(
        (
            "the loop",
            sum(row[1] for row in rows),
            sum(row[2] for row in rows),
            [sum(row[3][i] for row in rows) for i in range(len(WAYS))],
        )
    )
    for op, count, waits, cells in rows:
        print(
            f"  {op:<10}{count:>11}{waits:>6}"
            + "".join(f"{cell:>{w}.2f}" for cell, w in zip(cells, WIDTHS, strict=True))
        )


if __name__ == "__main__":
    main()
