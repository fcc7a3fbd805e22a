"""How ``milepost ledger verify`` grows with the ledger: its wall time and peak memory at N postings.

Generates a consistent ledger of N postings straight into a fresh database (bulk inserts, every hash and
MAC made with the project's own functions, so that verify passes), then runs ``milepost ledger verify``
as a subprocess with the ledger key set (the MACs checked too), once per ``--workers`` value, and prints
its wall time and peak RSS (the process and its worker processes together).
The shape: a pair of users (client, freelancer) per 100 milestones, one deposit per pair, and per
milestone a funding (2 postings) and a full release with its fee (3 postings), with the audit events
created, funded and released: about 5 postings, 2 entries and 3 events per milestone.

    .venv/bin/python bench/verify_growth.py                          # 1,000,000 postings, both backends
    .venv/bin/python bench/verify_growth.py --postings 50000 --backends sqlite --workers 1 2

On PostgreSQL it creates a database of its own (a unique name) and drops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from milepost.events import EventAction
from milepost.kit.db import Database
from milepost.kit.macs import KeyRing
from milepost.ledger.models import EntryKind
from milepost.ledger.service import (
    AccountRef,
    escrow_account,
    external_account,
    fee_account,
    user_account,
)
from milepost.milestones.state import MilestoneStatus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.ledger_rows import Ledger, Rows, milestone_row, project_row, user_row

MILEPOST = str(Path(sys.executable).parent / "milepost")
LEDGER_KEY = "bench:" + "k" * 40
MILESTONES_PER_PAIR = 100
AMOUNT = 10_000  # cents per milestone
FEE = AMOUNT // 10
START = datetime(2026, 1, 1, tzinfo=UTC)
# Rows written per INSERT round: bounds the generator's own memory.
CHUNK_PAIRS = 10
EXTERNAL = external_account("sandbox", "USD")
FEES = fee_account("USD")


def pair(ledger: Ledger, rows: Rows, number: int) -> None:
    """A client and a freelancer, their project, the client's deposit, and MILESTONES_PER_PAIR
    milestones funded and released in full."""
    now = ledger.tick()
    client = user_row(f"client{number}@bench.example", f"client {number}", now)
    freelancer = user_row(f"freelancer{number}@bench.example", f"freelancer {number}", now)
    rows.users += [client, freelancer]
    project = project_row(client["id"], freelancer["id"], f"Project {number}", "USD", now)
    rows.projects.append(project)
    client_account = user_account(client["id"], "USD")
    freelancer_account = user_account(freelancer["id"], "USD")
    total = AMOUNT * MILESTONES_PER_PAIR
    ledger.entry(
        rows,
        EntryKind.DEPOSIT,
        [(EXTERNAL, -total), (client_account, total)],
        actor_id=client["id"],
    )
    for position in range(1, MILESTONES_PER_PAIR + 1):
        milestone = funded_milestone(ledger, rows, project, position, client_account)
        escrow = escrow_account(milestone["id"], "USD")
        release = ledger.entry(
            rows,
            EntryKind.RELEASE,
            [(escrow, -AMOUNT), (freelancer_account, AMOUNT - FEE), (FEES, FEE)],
            milestone_id=milestone["id"],
            actor_id=client["id"],
        )
        ledger.event(
            rows,
            milestone,
            EventAction.RELEASED,
            release,
            actor_id=client["id"],
            actor_role="client",
            from_status="approved",
            to_status="released",
            amount=AMOUNT,
            data={"fee": FEE, "to_freelancer": AMOUNT - FEE},
        )
        milestone.update(
            status=MilestoneStatus.RELEASED,
            released_amount=AMOUNT,
            fee_amount=FEE,
            ended_at=ledger.clock,
        )


def funded_milestone(
    ledger: Ledger, rows: Rows, project: dict[str, str], position: int, client: AccountRef
) -> dict[str, object]:
    """One milestone, created and funded."""
    client_id = project["client_id"]
    milestone = milestone_row(project["id"], client_id, position, AMOUNT, "USD", ledger.tick())
    rows.milestones.append(milestone)
    ledger.event(
        rows,
        milestone,
        EventAction.CREATED,
        actor_id=client_id,
        actor_role="client",
        to_status="draft",
        amount=AMOUNT,
    )
    funding = ledger.entry(
        rows,
        EntryKind.FUND,
        [(client, -AMOUNT), (escrow_account(milestone["id"], "USD"), AMOUNT)],
        milestone_id=milestone["id"],
        actor_id=client_id,
    )
    ledger.event(
        rows,
        milestone,
        EventAction.FUNDED,
        funding,
        actor_id=client_id,
        actor_role="client",
        from_status="draft",
        to_status="funded",
        amount=AMOUNT,
    )
    milestone.update(
        status=MilestoneStatus.FUNDED,
        funded_amount=AMOUNT,
        fee_rate_bps=1000,
        funded_at=ledger.clock,
        updated_at=ledger.clock,
    )
    return milestone


def generate(url: str, postings: int) -> int:
    """Write about ``postings`` postings; the number written."""
    per_pair = 2 + 5 * MILESTONES_PER_PAIR
    pairs = max(1, round(postings / per_pair))
    ledger = Ledger(KeyRing.parse(LEDGER_KEY), START)
    database = Database(url)
    written = 0
    try:
        # One commit per chunk: a single transaction of a million rows would keep them all in SQLite's
        # write-ahead log until the end.
        with database.engine.connect() as connection:
            for first in range(0, pairs, CHUNK_PAIRS):
                rows = Rows()
                for number in range(first, min(pairs, first + CHUNK_PAIRS)):
                    pair(ledger, rows, number)
                ledger.insert(connection, rows)
                connection.commit()
                written += len(rows.postings)
            ledger.finish(connection)  # the external and fee accounts, moved by every chunk
            connection.commit()
    finally:
        database.dispose()
    return written


def run_verify(url: str, workers: int | None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB of ``milepost ledger verify`` with its worker processes (the largest
    sum seen, sampled every 20 ms), and the last line of its output."""
    environment = {**os.environ, "MILEPOST_LEDGER_KEY": LEDGER_KEY}
    command = [MILEPOST, "ledger", "verify", "--db", url]
    if workers is not None:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"ledger verify failed ({process.returncode}):\n{text}")
    return seconds, peak / 2**20, text.strip().splitlines()[-1]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc (0 once it has gone)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="milepost-verify-") as directory:
        yield f"sqlite:///{directory}/ledger.db"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"milepost_verify_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(backend: str, url: str, postings: int, workers: list[int | None]) -> None:
    subprocess.run([MILEPOST, "db", "upgrade", "--db", url], check=True, capture_output=True)
    started = time.perf_counter()
    written = generate(url, postings)
    generated = time.perf_counter() - started
    print(f"{backend:9} {written:>10,} postings, generated in {generated:.1f} s", flush=True)
    for count in workers:
        seconds, peak_mb, verdict = run_verify(url, count)
        label = "one per core" if count is None else str(count)
        print(
            f"{backend:9} {written:>10,} postings, workers {label:>12}: verify {seconds:.2f} s, "
            f"peak RSS {peak_mb:.0f} MB with its workers ({verdict})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get(
            "MILEPOST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--workers",
        nargs="+",
        default=["1", "default"],
        help="verify's --workers for each run on the same ledger ('default': one per core)",
    )
    options = parser.parse_args()
    workers = [None if value == "default" else int(value) for value in options.workers]
    for backend in options.backends:
        if backend == "sqlite":
            with sqlite_database() as url:
                measure(backend, url, options.postings, workers)
        else:
            with postgres_database(options.postgres_admin_url) as url:
                measure(backend, url, options.postings, workers)


if __name__ == "__main__":
    main()
