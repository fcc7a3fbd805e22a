"""The part of ``ledger verify`` only Python can do: every entry against its hash and MAC, every
milestone's audit trail against its chain of hashes and MACs, streamed in batches, over ranges of ids,
in this process or spread over worker processes.

Why ranges may run in processes of their own, each in its own transaction: these checks are local to
their rows. An entry is written with its postings in one unit of work and never changed after, and a
milestone's chain and its head are read by one statement, so any snapshot shows each of them whole; what
a snapshot taken a moment later adds is rows that were not there to be checked, never a false alarm. The
checks that compare one table with another (sums, balances, links) stay in the caller's single
transaction (verify.py).

Rows are read through the connection, not the ORM (the ORM's row handling would only cost time), and an
entry's postings come with it as one JSON array, so the stream has one row per entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from itertools import groupby, pairwise
from multiprocessing import get_context
from operator import attrgetter
from typing import Any, TypeVarTuple, cast

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import check_chain
from milepost.kit.db import Database
from milepost.kit.macs import KeyRing
from milepost.ledger.models import Account, JournalEntry, Posting
from milepost.ledger.service import entry_hash, entry_mac_message
from milepost.milestones.models import Milestone

# Rows fetched from the database at a time while the hashes are checked: what bounds verify's memory.
BATCH = 2000
# Entries or milestones per range when the checks are spread over processes, and the size of ledger
# below which they are not (starting a process costs more than it saves).
RANGE_ROWS = 25_000
SPREAD_FROM = 100_000

_Columns = TypeVarTuple("_Columns")


def stream(session: Session, query: Select[*_Columns]) -> Iterator[Row[*_Columns]]:
    """The query's rows, fetched ``BATCH`` at a time rather than all at once (``yield_per``: a server-
    side cursor on PostgreSQL, SQLite's own row-by-row stepping)."""
    return iter(session.connection().execute(query.execution_options(yield_per=BATCH)))


class Check(StrEnum):
    SEALS = "journal entry hashes"  # one row per entry
    TRAILS = "audit trails"  # one row per milestone


@dataclass(frozen=True)
class Range:
    """Ids of the check's rows in (after, upto]; None is open."""

    check: Check
    after: str | None = None
    upto: str | None = None


@dataclass
class Found:
    """What one range's check found: the entries or milestones it read, the events, the problems."""

    rows: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)


def check_range(session: Session, part: Range, keys: KeyRing) -> Found:
    if part.check is Check.SEALS:
        return _seals(session, part, keys)
    return _trails(session, part, keys)


def _within(query: Select[*_Columns], column: Any, part: Range) -> Select[*_Columns]:
    if part.after is not None:
        query = query.where(column > part.after)
    if part.upto is not None:
        query = query.where(column <= part.upto)
    return query


# Entries ------------------------------------------------------------------------------------------------


def _seals(session: Session, part: Range, keys: KeyRing) -> Found:
    """Every entry against its hash (over the entry and its postings as account key, amount and
    currency) and, with a key, its MAC, in id order."""
    found = Found()
    postings = _postings_of_entry(session.get_bind().dialect.name)
    query = (
        select(*JournalEntry.__table__.columns, postings.label("postings"))
        .outerjoin(Posting, Posting.entry_id == JournalEntry.id)
        .outerjoin(Account, Account.id == Posting.account_id)
        .group_by(JournalEntry.id)
    )
    for row in stream(session, _within(query, JournalEntry.id, part).order_by(JournalEntry.id)):
        found.rows += 1
        # A row of the entry's columns reads like the model to the hash functions.
        entry = cast(JournalEntry, row)
        recorded = row.postings
        if isinstance(recorded, str):  # SQLite hands JSON back as text, psycopg decoded
            recorded = json.loads(recorded)
        if entry_hash(entry, recorded or ()) != entry.hash:
            found.problems.append(f"entry {entry.id} does not match its hash: it was altered")
        if keys.configured:
            problem = keys.check(entry.mac_key_id, entry.mac, entry_mac_message(entry))
            if problem is not None:
                found.problems.append(f"entry {entry.id} {problem}")
    return found


def _postings_of_entry(dialect: str) -> ColumnElement[Any]:
    """An entry's postings, aggregated over the entry's rows joined to its postings and their accounts,
    as one JSON array of [account key, amount, currency] per posting (NULL or [] for none). JSON rather
    than a joined string, so that no value can be made to read as two. A join grouped by entry rather
    than a subquery per entry: without statistics (a database just restored) PostgreSQL may plan such a
    subquery as a scan of every account for each entry."""
    if dialect == "postgresql":
        line = func.json_build_array(Account.key, Posting.amount, Posting.currency)
        aggregate = func.json_agg(line)
    else:
        aggregate = func.json_group_array(
            func.json_array(Account.key, Posting.amount, Posting.currency)
        )
    return aggregate.filter(Posting.id.is_not(None))


# Audit trails -------------------------------------------------------------------------------------------


def _trails(session: Session, part: Range, keys: KeyRing) -> Found:
    """Each milestone with its chain of events (seq order), in milestone id order."""
    found = Found()
    query = select(
        Milestone.id.label("head_of"),
        Milestone.event_count.label("head_count"),
        Milestone.last_event_hash.label("head_hash"),
        Milestone.last_event_mac.label("head_mac"),
        *MilestoneEvent.__table__.columns,
    ).outerjoin(MilestoneEvent, MilestoneEvent.milestone_id == Milestone.id)
    query = _within(query, Milestone.id, part).order_by(Milestone.id, MilestoneEvent.seq)
    for _, run in groupby(stream(session, query), key=attrgetter("head_of")):
        lines = list(run)
        found.rows += 1
        # Rows of the events' columns read like the model to check_chain.
        events = [cast(MilestoneEvent, line) for line in lines if line.id is not None]
        found.events += len(events)
        found.problems += [
            f"milestone {problem.milestone_id} event {problem.seq}: {problem.message}"
            for problem in check_chain(events, keys)
        ]
        found.problems += _head_problems(lines[0], events)
    return found


def _head_problems(head: Row[*tuple[Any, ...]], events: list[MilestoneEvent]) -> list[str]:
    """The head kept on each milestone must be the chain's last event: this catches events deleted from
    the end of a chain (or a whole chain), which the links alone cannot show."""
    problems = []
    last_hash = events[-1].hash if events else GENESIS_EVENT_HASH
    last_mac = events[-1].mac if events else None
    if head.head_mac != last_mac:
        problems.append(
            f"milestone {head.head_of}: its audit trail's head MAC is not its last event's "
            "(events were removed or added, or the head rewritten)"
        )
    if head.head_count != len(events) or head.head_hash != last_hash:
        problems.append(
            f"milestone {head.head_of}: its audit trail should hold {head.head_count} events ending "
            f"in {head.head_hash[:12]}..., but holds {len(events)} ending in {last_hash[:12]}... "
            "(events were removed or added)"
        )
    return problems


# Spreading the ranges over processes --------------------------------------------------------------------

_IDS: dict[Check, InstrumentedAttribute[str]] = {
    Check.SEALS: JournalEntry.id,
    Check.TRAILS: Milestone.id,
}


def ranges(session: Session, check: Check, rows: int) -> list[Range]:
    """The check's rows cut into consecutive ranges of about ``RANGE_ROWS`` ids (one pass over the id
    index, numbered by the database)."""
    if rows <= RANGE_ROWS:
        return [Range(check)]
    ids = _IDS[check]
    numbered = select(ids.label("id"), func.row_number().over(order_by=ids).label("n")).subquery()
    bounds = list(
        session.scalars(
            select(numbered.c.id).where(numbered.c.n % RANGE_ROWS == 0).order_by(numbered.c.id)
        )
    )
    edges: list[str | None] = [None, *bounds, None]
    return [Range(check, after, upto) for after, upto in pairwise(edges)]


class Pending:
    """The ranges of one check, running or queued in worker processes (or run here, in order, when
    asked for): results come back in range order, so problems are listed as one process would."""

    def __init__(self, results: Sequence[Future[Found] | Callable[[], Found]]) -> None:
        self._results = results

    def __iter__(self) -> Iterator[Found]:
        for result in self._results:
            yield result.result() if isinstance(result, Future) else result()


def spread_over(url: str, workers: int) -> Executor:
    """Worker processes for the ranges, each with its own connection (spawned, not forked: a forked copy
    of an open connection is not safe to use)."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_open,
        initargs=(url,),
    )


def submit(pool: Executor, parts: list[Range], keys: KeyRing) -> Pending:
    return Pending([pool.submit(_check_in_worker, part, keys) for part in parts])


def here(session: Session, parts: list[Range], keys: KeyRing) -> Pending:
    return Pending([partial(check_range, session, part, keys) for part in parts])


_worker_database: Database | None = None


def _open(url: str) -> None:
    global _worker_database
    _worker_database = Database(url)


def _check_in_worker(part: Range, keys: KeyRing) -> Found:
    assert _worker_database is not None, "the worker's initializer opens the database"
    with _worker_database.read_only() as session:
        return check_range(session, part, keys)
