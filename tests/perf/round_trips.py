"""Count what a request sends to the database: every SQL statement, and the round trips around them.

Counted on the engine the app uses, from outside the app (nothing in ``src`` knows about it):

- each statement the engine executes (``before_cursor_execute``; one per batch of an executemany);
- the pool's pre-ping on checkout (``SELECT 1``; the dialect's ``do_ping``, which no engine event sees);
- PostgreSQL: the ``BEGIN`` psycopg sends by itself before the first statement of a transaction (a round
  trip of its own; the pre-ping runs in autocommit, so it opens none); SQLite's ``BEGIN [IMMEDIATE]`` is
  a statement we send, counted as one;
- ``COMMIT`` and ``ROLLBACK``, whether the unit of work ends them or the pool resets a connection on return,
  when the connection actually had a transaction open (ending none sends nothing).

These counts are deterministic: the same request sends the same statements every time. On PostgreSQL
they are not its round trips: in pipeline mode (kit/db.py) statements share them. ``WireTrace`` counts
those from libpq's trace of the messages it sends (one round trip per Query or Sync), and tells psycopg's
own apart, which come and go with the history of a connection: ``DEALLOCATE ALL`` after a ROLLBACK on a
connection that holds prepared statements (psycopg forgets them), and outside pipeline mode the prepare of
a statement on its fifth use on a connection (a named Parse with a Sync of its own). Neither counts the
idempotency holder's own connection (kit/liveness.py: a ``SELECT 1`` at most every few seconds, outside
the engine).

Requests must be sent one at a time while recording: the trips of concurrent requests would mix.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event


@dataclass(frozen=True)
class Trip:
    """One round trip: its kind ("statement", "ping", "begin", "commit", "rollback") and what it said."""

    kind: str
    sql: str

    def __str__(self) -> str:
        return summary(self.sql) if self.kind == "statement" else self.sql


def summary(sql: str) -> str:
    """A statement in a few words: its verb and tables (``SELECT users, projects FOR UPDATE``), enough
    to tell two statements of one request apart without their column lists."""
    flat = " ".join(sql.split())
    verb = flat.split(" ", 1)[0].upper()
    if verb == "SELECT":
        tables = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", flat, re.IGNORECASE)
        seen = list(dict.fromkeys(table.lower() for table in tables))
        words = "SELECT " + (", ".join(seen) if seen else flat[7:60])
        if re.search(r"\bFOR UPDATE\b", flat, re.IGNORECASE):
            words += " FOR UPDATE"
        return words
    if verb == "INSERT":
        table = re.search(r"INSERT INTO ([a-z_][a-z0-9_]*)", flat, re.IGNORECASE)
        rows = flat.count("), (") + 1 if " VALUES " in flat.upper() else 1
        name = table.group(1) if table else "?"
        many = re.search(r"-- executemany of (\d+)$", flat)
        if many:
            return f"INSERT {name} (executemany of {many.group(1)} rows)"
        return f"INSERT {name}" + (f" ({rows} rows)" if rows > 1 else "")
    if verb in ("UPDATE", "DELETE"):
        table = re.search(r"(?:UPDATE|DELETE FROM)\s+([a-z_][a-z0-9_]*)", flat, re.IGNORECASE)
        many = re.search(r"-- executemany of (\d+)$", flat)
        tail = f" (executemany of {many.group(1)} rows)" if many else ""
        return f"{verb} {table.group(1) if table else '?'}{tail}"
    return flat[:60]


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether the driver connection has a transaction open (psycopg: not idle; sqlite3: in_transaction)."""
    info = getattr(dbapi_connection, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is not None:
        return int(status) != 0  # psycopg.pq.TransactionStatus.IDLE
    return bool(getattr(dbapi_connection, "in_transaction", False))


class RoundTripCounter:
    """Listens on ``engine`` until ``close()``; ``recording()`` collects the trips of one request."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._trips: list[Trip] | None = None
        self._listeners: list[tuple[Any, str, Callable[..., Any]]] = [
            (engine, "before_cursor_execute", self._on_statement),
            (engine, "commit", self._on_commit),
            (engine, "rollback", self._on_rollback),
            (engine.pool, "reset", self._on_reset),
        ]
        for target, name, listener in self._listeners:
            event.listen(target, name, listener)
        dialect = engine.dialect
        self._do_ping = dialect.do_ping
        dialect.do_ping = self._on_ping  # type: ignore[method-assign]
        self.wire = WireTrace(engine) if self.postgres else None

    def close(self) -> None:
        for target, name, listener in self._listeners:
            event.remove(target, name, listener)
        del self.engine.dialect.do_ping  # back to the class's own
        if self.wire is not None:
            self.wire.close()

    @contextmanager
    def recording(self) -> Iterator[list[Trip]]:
        trips: list[Trip] = []
        with self._lock:
            self._trips = trips
        try:
            yield trips
        finally:
            with self._lock:
                self._trips = None

    def _add(self, kind: str, sql: str) -> None:
        with self._lock:
            if self._trips is not None:
                self._trips.append(Trip(kind, sql))

    def _implicit_begin(self, dbapi_connection: Any) -> None:
        if self.postgres and not _in_transaction(dbapi_connection):
            self._add("begin", "BEGIN (sent by psycopg)")

    def _on_statement(
        self,
        connection: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        self._implicit_begin(connection.connection.dbapi_connection)
        if executemany:  # one call of the driver's executemany (psycopg pipelines it)
            statement = f"{statement} -- executemany of {len(parameters)}"
        self._add("statement", statement)

    def _on_ping(self, dbapi_connection: Any) -> bool:
        # SQLAlchemy pings a psycopg connection in autocommit: the SELECT 1 alone, no BEGIN.
        self._add("ping", "pool pre-ping")
        return bool(self._do_ping(dbapi_connection))

    def _on_commit(self, connection: Any) -> None:
        if _in_transaction(connection.connection.dbapi_connection):
            self._add("commit", "COMMIT")

    def _on_rollback(self, connection: Any) -> None:
        if _in_transaction(connection.connection.dbapi_connection):
            self._add("rollback", "ROLLBACK")

    def _on_reset(self, dbapi_connection: Any, _record: Any, state: Any) -> None:
        if not state.transaction_was_reset and _in_transaction(dbapi_connection):
            self._add("rollback", "ROLLBACK (pool reset on return)")


def statements(trips: list[Trip]) -> int:
    return sum(trip.kind == "statement" for trip in trips)


_MESSAGE = re.compile(rb"^F\t\d+\t(\w+)\t?(.*)$", re.MULTILINE)
_SQL = re.compile(rb'^ "(?:_pg3_\d+)?" "(.*?)"(?: \d+)*$', re.DOTALL)


def wire_round_trips(sent: bytes) -> list[str]:
    """The round trips in what libpq sent (its trace of frontend messages): one per Query or Sync, named
    by the statements that went with it. Among them, psycopg's own are marked "psycopg": a DEALLOCATE
    (ALL, or of one statement), and the prepare of a statement on its fifth use on a connection outside
    pipeline mode (a named Parse with a Sync of its own, nothing executed)."""
    trips: list[str] = []
    group: list[tuple[bytes, bytes]] = []
    for kind, rest in _MESSAGE.findall(sent):
        if kind == b"Query":
            text = rest.strip().strip(b'"').decode(errors="replace")
            own = text.startswith("DEALLOCATE")
            trips.append(("psycopg: " if own else "") + text.split()[0] + " (simple query)")
            group = []
        elif kind == b"Sync":
            parses = [body for name, body in group if name == b"Parse"]
            executes = [name for name, _ in group if name == b"Execute"]
            if parses and not executes and all(b'"_pg3_' in body for body in parses):
                trips.append("psycopg: prepare")
            else:
                words = []
                for body in parses:
                    match = _SQL.match(body)
                    words.append(summary(match.group(1).decode(errors="replace")) if match else "?")
                label = "; ".join(words) if words else f"{len(executes)} prepared"
                trips.append(label if executes else "sync")
            group = []
        else:
            group.append((kind, rest))
    return trips


class WireTrace:
    """PostgreSQL: libpq traces every message of every pooled connection, each into a file of its own;
    ``mark()`` and ``since(marks)`` count the round trips (Query and Sync messages sent) in between, and
    those of psycopg's own among them (``DEALLOCATE [ALL]``, and its prepares: a named Parse). libpq
    buffers the trace: ``since`` flushes it (untrace, trace again), so call it only while no request is
    running."""

    def __init__(self, engine: Engine) -> None:
        self.directory = tempfile.mkdtemp(prefix="milepost-wire-")
        self._traced: dict[int, tuple[Any, int, str]] = {}  # id(connection): (connection, fd, path)
        self._listeners: list[tuple[Any, str, Callable[..., Any]]] = [
            (engine.pool, "connect", self._on_connect),
            (engine.pool, "checkout", self._on_checkout),
        ]
        for target, name, listener in self._listeners:
            event.listen(target, name, listener)

    def close(self) -> None:
        for target, name, listener in self._listeners:
            event.remove(target, name, listener)
        for connection, fd, _path in self._traced.values():
            if not connection.closed:
                connection.pgconn.untrace()
            os.close(fd)
        self._traced.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        self._trace(dbapi_connection)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        self._trace(dbapi_connection)  # one made before we listened

    def _trace(self, connection: Any) -> None:
        if id(connection) in self._traced:
            return
        from psycopg import pq

        path = os.path.join(self.directory, f"{len(self._traced)}.trace")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._traced[id(connection)] = (connection, fd, path)
        connection.pgconn.trace(fd)
        connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def _flush(self) -> None:
        from psycopg import pq

        for connection, fd, _path in self._traced.values():
            if connection.closed:
                continue
            connection.pgconn.untrace()  # flushes what libpq buffered
            connection.pgconn.trace(fd)
            connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def mark(self) -> dict[str, int]:
        self._flush()
        return {path: os.path.getsize(path) for _c, _fd, path in self._traced.values()}

    def since(self, marks: dict[str, int]) -> list[str]:
        """The round trips sent on every traced connection since ``marks`` (``wire_round_trips``)."""
        self._flush()
        trips: list[str] = []
        for _connection, _fd, path in self._traced.values():
            with open(path, "rb") as trace:
                trace.seek(marks.get(path, 0))
                trips.extend(wire_round_trips(trace.read()))
        return trips
