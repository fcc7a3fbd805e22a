"""The part of ``ledger verify`` only Python can do: every entry against its hash and MAC, every
milestone's audit trail against its chain of hashes and MACs, streamed in batches, over ranges of ids,
in this process or spread over worker processes.

Why ranges may run in processes of their own, each in its own transaction: these checks are local to
their rows. An entry is written with its postings in one unit of work and never changed after, and a
milestone's chain and its head are read by one statement, so any snapshot shows each of them whole; what
a snapshot taken a moment later adds is rows that were not there to be checked, never a false alarm. The
checks that compare one table with another (sums, balances, links) stay in the caller's single
transaction (verify.py).

Rows are read through the connection, not the ORM, and without SQLAlchemy's per-column result processing:
the few columns that need it (timestamps, JSON, which SQLite hands back as text) are decoded here with the
standard library's C parsers (measured on SQLite at 200k postings: a quarter to a third less time for these
checks). An entry's postings come with it as one JSON array, so the stream has one row per entry.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from itertools import groupby, pairwise
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from operator import attrgetter
from typing import Any, TypeVarTuple, cast

from sqlalchemy import JSON, ColumnElement, Row, Select, Text, and_, func, select, type_coerce
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.types import NULLTYPE

from milepost.audit.models import GENESIS_EVENT_HASH, MilestoneEvent
from milepost.audit.service import check_chain
from milepost.kit.db import Database, UTCDateTime
from milepost.kit.macs import KeyRing
from milepost.kit.time import as_utc
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


# Reading rows without SQLAlchemy's result processing ------------------------------------------------------


def _unprocessed(column: KeyedColumnElement[Any]) -> ColumnElement[Any]:
    """The column as the driver hands it back (no result processor), under its own name; JSON as its
    text (see ``_as_text``)."""
    if isinstance(column.type, JSON):
        return _as_text(column).label(column.key)
    return type_coerce(column, NULLTYPE).label(column.key)


def _as_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON value sent as text, to be parsed here by the standard library's C parser: psycopg's own
    JSON loader, which copies the bytes and has ``json.loads`` detect their encoding, cost about three
    times as much per row (measured on PostgreSQL: 3.3 µs an event against 1.0). SQLite stores JSON as
    text already."""
    return type_coerce(sql_cast(value, Text), NULLTYPE)


def _decoder(
    columns: Sequence[KeyedColumnElement[Any]], dialect: str
) -> Callable[[Sequence[Any]], list[Any]]:
    """What turns a row of ``_unprocessed`` columns into the values the model would hold: timestamps
    aware in UTC; JSON decoded from its text."""
    sqlite = dialect == "sqlite"
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(columns):
        if isinstance(column.type, UTCDateTime):
            converters.append((index, _sqlite_instant if sqlite else as_utc))
        elif isinstance(column.type, JSON):
            converters.append((index, _json))

    def decode(row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for index, convert in converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        return values

    return decode


_JSON = json.JSONDecoder()


def _json(text: str) -> Any:
    """``json.loads(text)``, a little faster for the text the database writes (a document with nothing
    around it): ``raw_decode`` skips the two whitespace scans around the document, which cost as much
    as parsing an entry's postings (measured here: 0.9 µs against 1.7). Anything else takes the
    standard path, which parses it or says what is wrong with it."""
    try:
        value, end = _JSON.raw_decode(text)
    except json.JSONDecodeError:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _sqlite_instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


# The rows the checks read, with the models' attribute names (what the hash functions read).
_EntryRow = namedtuple(  # type: ignore[misc]  # its fields come from the model's table
    "_EntryRow", [column.key for column in JournalEntry.__table__.columns] + ["postings"]
)
_EventRow = namedtuple(  # type: ignore[misc]
    "_EventRow", [column.key for column in MilestoneEvent.__table__.columns]
)


def check_range(session: Session, part: Range, keys: KeyRing) -> Found:
    if part.check is Check.SEALS:
        return _seals(session, part, keys)
    return _trails(session, part, keys)


def _within(column: Any, part: Range) -> list[ColumnElement[bool]]:
    """The conditions that keep ``column`` in the range (none for an open range).

    Each check's query states them twice: on the rows it checks (entries, milestones) and in the ON
    clause of the join to their children (postings, events), which the join implies but the planner
    does not infer. Without the second, PostgreSQL read every posting (a hash join over the whole
    table) or every event up to the range (a merge join from the start of the index) for each range,
    so the checks' work grew with the square of the ledger's size rather than with it."""
    bounds = []
    if part.after is not None:
        bounds.append(column > part.after)
    if part.upto is not None:
        bounds.append(column <= part.upto)
    return bounds


# Entries ------------------------------------------------------------------------------------------------


def _seals(session: Session, part: Range, keys: KeyRing) -> Found:
    """Every entry, in id order: its postings (two or more, each in its account's currency, summing to
    zero in every currency), its hash (over the entry and its postings as account key, amount and
    currency) and, with a key, its MAC. The postings are read with the entry for the hash, so they are
    checked here too rather than by another pass of the database over every posting."""
    found = Found()
    dialect = session.get_bind().dialect.name
    columns = list(JournalEntry.__table__.columns)
    decode = _decoder(columns, dialect)
    query = (
        select(*map(_unprocessed, columns), _as_text(_postings_of_entry(dialect)).label("postings"))
        .outerjoin(
            Posting, and_(Posting.entry_id == JournalEntry.id, *_within(Posting.entry_id, part))
        )
        .outerjoin(Account, Account.id == Posting.account_id)
        .where(*_within(JournalEntry.id, part))
        .group_by(JournalEntry.id)
        .order_by(JournalEntry.id)
    )
    for row in stream(session, query):
        found.rows += 1
        # The entry's columns, decoded, read like the model to the hash functions.
        entry = cast(JournalEntry, _EntryRow._make(decode(row)))
        postings = _json(row.postings) if row.postings else ()
        found.problems += _postings_problems(entry.id, postings)
        recorded = [(key, amount, currency) for _, key, amount, currency, _ in postings]
        if entry_hash(entry, recorded) != entry.hash:
            found.problems.append(f"entry {entry.id} does not match its hash: it was altered")
        if keys.configured:
            problem = keys.check(entry.mac_key_id, entry.mac, entry_mac_message(entry))
            if problem is not None:
                found.problems.append(f"entry {entry.id} {problem}")
    return found


def _postings_problems(entry_id: str, postings: Sequence[Sequence[Any]]) -> list[str]:
    """What is wrong with an entry's postings, each [id, account key, amount, currency, account's
    currency]: fewer than two, one in another currency than its account's, a currency not summing to
    zero."""
    problems = []
    if len(postings) < 2:
        problems.append(f"entry {entry_id} has {len(postings)} posting(s); needs two or more")
    sums: dict[str, int] = {}
    strays = []  # listed in posting id order: only these are sorted, not every entry's postings
    for posting_id, key, amount, currency, account_currency in postings:
        if currency != account_currency:
            strays.append(
                (
                    posting_id,
                    f"posting {posting_id} is in {currency} but account {key} is in "
                    f"{account_currency}",
                )
            )
        sums[currency] = sums.get(currency, 0) + amount
    problems += [problem for _, problem in sorted(strays)]
    problems += [
        f"entry {entry_id} does not balance: {currency} sums to {total}"
        for currency, total in sorted(sums.items())
        if total != 0
    ]
    return problems


def _postings_of_entry(dialect: str) -> ColumnElement[Any]:
    """An entry's postings, aggregated over the entry's rows joined to its postings and their accounts,
    as one JSON array of [posting id, account key, amount, currency, account's currency] per posting
    (NULL or [] for none). JSON rather than a joined string, so that no value can be made to read as
    two. A join grouped by entry rather than a subquery per entry: without statistics (a database just
    restored) PostgreSQL may plan such a subquery as a scan of every account for each entry."""
    line = (Posting.id, Account.key, Posting.amount, Posting.currency, Account.currency)
    if dialect == "postgresql":
        aggregate = func.json_agg(func.json_build_array(*line))
    else:
        aggregate = func.json_group_array(func.json_array(*line))
    return aggregate.filter(Posting.id.is_not(None))


# Audit trails -------------------------------------------------------------------------------------------


def _trails(session: Session, part: Range, keys: KeyRing) -> Found:
    """Each milestone with its chain of events (seq order), in milestone id order."""
    found = Found()
    columns = list(MilestoneEvent.__table__.columns)
    decode = _decoder(columns, session.get_bind().dialect.name)
    head = (
        Milestone.id.label("head_of"),
        Milestone.event_count.label("head_count"),
        Milestone.last_event_hash.label("head_hash"),
        Milestone.last_event_mac.label("head_mac"),
    )
    query = (
        select(*head, *map(_unprocessed, columns))
        .outerjoin(
            MilestoneEvent,
            and_(
                MilestoneEvent.milestone_id == Milestone.id,
                *_within(MilestoneEvent.milestone_id, part),
            ),
        )
        .where(*_within(Milestone.id, part))
        .order_by(Milestone.id, MilestoneEvent.seq)
    )
    first_event = len(head)
    for _, run in groupby(stream(session, query), key=attrgetter("head_of")):
        lines = list(run)
        found.rows += 1
        # The events' columns, decoded, read like the model to check_chain.
        events = [
            cast(MilestoneEvent, _EventRow._make(decode(line[first_event:])))
            for line in lines
            if line.id is not None
        ]
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
    """Worker processes for the ranges, each with its own connection, started now rather than when the
    first range is queued.

    They are not forked from this process (a forked copy of an open connection is not safe to use, nor
    is a fork of a process with threads), but from a fresh server process where one is available, which
    imports what a worker needs once (about half a second for Milepost, as much again for the command
    line it runs under) and forks each worker from that: every worker spawned anew would import it all
    again."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_workers_context(),
        initializer=_open,
        initargs=(url,),
    )
    for _ in range(workers):  # the pool starts a process for each task queued while none is idle
        pool.submit(_started)
    return pool


def _workers_context() -> BaseContext:
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    # "__main__": the worker needs the main module as the parent has it (a command line's script).
    context.set_forkserver_preload(["__main__", __name__])
    return context


def _started() -> None:
    """Nothing: a task that makes the pool start a process."""


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
