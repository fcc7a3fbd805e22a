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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
from sqlalchemy import Connection, Table

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import event_hash, event_mac_message
from milepost.kit.db import Database
from milepost.kit.ids import new_id
from milepost.kit.macs import KeyRing
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.ledger.service import entry_hash, entry_mac_message
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.projects.models import Project
from milepost.projects.state import ProjectStatus
from milepost.users.models import User

MILEPOST = str(Path(sys.executable).parent / "milepost")
LEDGER_KEY = "bench:" + "k" * 40
MILESTONES_PER_PAIR = 100
AMOUNT = 10_000  # cents per milestone
FEE = AMOUNT // 10
START = datetime(2026, 1, 1, tzinfo=UTC)
# Rows written per INSERT round: bounds the generator's own memory.
CHUNK_PAIRS = 10


@dataclass
class Rows:
    """One chunk of rows, by table, in the order their foreign keys need."""

    users: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    postings: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        return [
            (User.__table__, self.users),  # type: ignore[list-item]
            (Project.__table__, self.projects),  # type: ignore[list-item]
            (Milestone.__table__, self.milestones),  # type: ignore[list-item]
            (Account.__table__, self.accounts),  # type: ignore[list-item]
            (JournalEntry.__table__, self.entries),  # type: ignore[list-item]
            (Posting.__table__, self.postings),  # type: ignore[list-item]
            (MilestoneEvent.__table__, self.events),  # type: ignore[list-item]
        ]


class Ledger:
    """Writes entries and events the way ledger.service.post and audit.record do, as plain rows."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys
        self.accounts: dict[str, str] = {}  # the shared accounts' keys -> ids
        self.clock = START

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def account(self, rows: Rows, key: str, kind: AccountKind, balance: int, **owner: Any) -> str:
        account_id = new_id("acc")
        rows.accounts.append(
            {
                "id": account_id,
                "key": key,
                "kind": kind,
                "currency": "USD",
                "user_id": owner.get("user_id"),
                "milestone_id": owner.get("milestone_id"),
                "provider": owner.get("provider"),
                "balance": balance,
                "created_at": START,
            }
        )
        return account_id

    def entry(
        self,
        rows: Rows,
        kind: EntryKind,
        legs: list[tuple[str, str, int]],  # (account key, account id, amount)
        *,
        milestone_id: str | None,
        actor_id: str | None,
    ) -> dict[str, Any]:
        fields = SimpleNamespace(
            id=new_id("je"),
            kind=kind,
            memo="",
            milestone_id=milestone_id,
            actor_id=actor_id,
            created_at=self.tick(),
        )
        fields.hash = entry_hash(fields, [(key, amount, "USD") for key, _, amount in legs])  # type: ignore[arg-type]
        fields.mac_key_id, fields.mac = self.keys.sign(entry_mac_message(fields))  # type: ignore[arg-type,misc]
        row = vars(fields)
        row["event_id"] = None  # named by the event of the same change, if any (see event)
        rows.entries.append(row)
        for _, account_id, amount in legs:
            rows.postings.append(
                {
                    "id": new_id("pst"),
                    "entry_id": fields.id,
                    "account_id": account_id,
                    "amount": amount,
                    "currency": "USD",
                }
            )
        return row

    def event(
        self,
        rows: Rows,
        milestone: dict[str, Any],
        action: str,
        entry: dict[str, Any] | None = None,
        **change: Any,
    ) -> None:
        """The milestone's next event; ``entry``: the entry of the same change, the two linked."""
        seq = milestone["event_count"] + 1
        fields = SimpleNamespace(
            id=new_id("evt"),
            milestone_id=milestone["id"],
            seq=seq,
            actor_id=milestone["client_id"],
            actor_role="client",
            action=action,
            from_status=change.get("from_status"),
            to_status=change.get("to_status"),
            amount=change.get("amount"),
            data=change.get("data", {}),
            created_at=self.clock,
            prev_hash=milestone["last_event_hash"],
        )
        fields.hash = event_hash(fields)  # type: ignore[arg-type]
        signed = self.keys.sign(event_mac_message(fields.hash, milestone["last_event_mac"]))
        fields.mac_key_id, fields.mac = signed  # type: ignore[misc]
        row = vars(fields)
        row["entry_id"] = entry["id"] if entry else None
        if entry is not None:
            entry["event_id"] = row["id"]
        rows.events.append(row)
        milestone.update(event_count=seq, last_event_hash=fields.hash, last_event_mac=fields.mac)


def pair(ledger: Ledger, rows: Rows, number: int) -> None:
    """A client and a freelancer, their project, the client's deposit, and MILESTONES_PER_PAIR
    milestones funded and released in full."""
    now = ledger.tick()
    client, freelancer = new_id("usr"), new_id("usr")
    for user_id, role in ((client, "client"), (freelancer, "freelancer")):
        rows.users.append(
            {
                "id": user_id,
                "email": f"{role}{number}@bench.example",
                "name": f"{role} {number}",
                "password_hash": "-",
                "is_staff": False,
                "time_zone": "UTC",
                "created_at": now,
            }
        )
    project = new_id("prj")
    rows.projects.append(
        {
            "id": project,
            "client_id": client,
            "freelancer_id": freelancer,
            "title": f"Project {number}",
            "currency": "USD",
            "status": ProjectStatus.AWARDED,
            "created_at": now,
            "updated_at": now,
        }
    )
    total = AMOUNT * MILESTONES_PER_PAIR
    client_key, freelancer_key = f"user:{client}:USD", f"user:{freelancer}:USD"
    client_acc = ledger.account(rows, client_key, AccountKind.USER, 0, user_id=client)
    freelancer_acc = ledger.account(
        rows,
        freelancer_key,
        AccountKind.USER,
        total - FEE * MILESTONES_PER_PAIR,
        user_id=freelancer,
    )
    external = ("external:sandbox:USD", ledger.accounts["external:sandbox:USD"])
    fee = ("platform_fee:USD", ledger.accounts["platform_fee:USD"])
    ledger.entry(
        rows,
        EntryKind.DEPOSIT,
        [(*external, -total), (client_key, client_acc, total)],
        milestone_id=None,
        actor_id=client,
    )
    for position in range(1, MILESTONES_PER_PAIR + 1):
        milestone(ledger, rows, project, position, (client, client_key, client_acc))
        escrow_key = f"escrow:{rows.milestones[-1]['id']}:USD"
        escrow = (escrow_key, rows.accounts[-1]["id"])
        release = ledger.entry(
            rows,
            EntryKind.RELEASE,
            [(*escrow, -AMOUNT), (freelancer_key, freelancer_acc, AMOUNT - FEE), (*fee, FEE)],
            milestone_id=rows.milestones[-1]["id"],
            actor_id=client,
        )
        ledger.event(
            rows,
            rows.milestones[-1],
            "released",
            release,
            from_status="approved",
            to_status="released",
            amount=AMOUNT,
            data={"fee": FEE, "to_freelancer": AMOUNT - FEE},
        )


def milestone(
    ledger: Ledger, rows: Rows, project: str, position: int, client: tuple[str, str, str]
) -> None:
    """One milestone, created and funded (its escrow account last in rows.accounts)."""
    client_id, client_key, client_acc = client
    now = ledger.tick()
    row: dict[str, Any] = {
        "id": new_id("ms"),
        "project_id": project,
        "client_id": client_id,
        "position": position,
        "status": MilestoneStatus.RELEASED,
        "title": f"Milestone {position}",
        "description": "",
        "amount": AMOUNT,
        "currency": "USD",
        "acceptance_criteria": [],
        "required_evidence": [],
        "exclusions": [],
        "dependencies": [],
        "review_period_days": 7,
        "release_delay_days": 0,
        "late_fee": None,
        "funded_amount": AMOUNT,
        "released_amount": AMOUNT,
        "refunded_amount": 0,
        "fee_amount": FEE,
        "late_fee_amount": 0,
        "fee_rate_bps": 1000,
        "cancellation_requested": False,
        "created_at": now,
        "updated_at": now,
        "event_count": 0,
        "last_event_hash": GENESIS_EVENT_HASH,
        "last_event_mac": None,
    }
    rows.milestones.append(row)
    ledger.event(rows, row, "created", to_status="draft", amount=AMOUNT)
    escrow_key = f"escrow:{row['id']}:USD"
    escrow_acc = ledger.account(rows, escrow_key, AccountKind.ESCROW, 0, milestone_id=row["id"])
    funding = ledger.entry(
        rows,
        EntryKind.FUND,
        [(client_key, client_acc, -AMOUNT), (escrow_key, escrow_acc, AMOUNT)],
        milestone_id=row["id"],
        actor_id=client_id,
    )
    ledger.event(
        rows, row, "funded", funding, from_status="draft", to_status="funded", amount=AMOUNT
    )


def generate(url: str, postings: int) -> int:
    """Write about ``postings`` postings; the number written."""
    per_pair = 2 + 5 * MILESTONES_PER_PAIR
    pairs = max(1, round(postings / per_pair))
    ledger = Ledger(KeyRing.parse(LEDGER_KEY))
    database = Database(url)
    written = 0
    try:
        # One commit per chunk: a single transaction of a million rows would keep them all in SQLite's
        # write-ahead log until the end.
        with database.engine.connect() as connection:
            shared = Rows()
            for key, kind, provider, balance in (
                ("external:sandbox:USD", AccountKind.EXTERNAL, "sandbox", -pairs * AMOUNT * 100),
                ("platform_fee:USD", AccountKind.PLATFORM_FEE, None, pairs * FEE * 100),
            ):
                ledger.accounts[key] = ledger.account(shared, key, kind, balance, provider=provider)
            insert(connection, shared)
            connection.commit()
            for first in range(0, pairs, CHUNK_PAIRS):
                rows = Rows()
                for number in range(first, min(pairs, first + CHUNK_PAIRS)):
                    pair(ledger, rows, number)
                insert(connection, rows)
                connection.commit()
                written += len(rows.postings)
    finally:
        database.dispose()
    return written


def insert(connection: Connection, rows: Rows) -> None:
    for table, values in rows.tables():
        if values:
            connection.execute(table.insert(), values)


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
