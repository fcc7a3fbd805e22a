"""Engines, the unit of work, and the column types shared by every domain.

SQLite: a file in WAL mode with ``synchronous=FULL`` and foreign keys on. pysqlite's own transaction
handling is switched off so that we issue ``BEGIN IMMEDIATE`` ourselves: a writer takes the database's write
lock before it reads anything it will check, so two writers can never both act on the same stale balance.
Read-only units of work use a plain (deferred) ``BEGIN`` and run beside writers.

PostgreSQL: READ COMMITTED, with the rows a write depends on locked (``SELECT ... FOR UPDATE``) in a fixed
order before they are checked: the milestone, then its dispute, then ledger accounts ordered by key. Awarding
a project locks only the project row (it creates milestones but never locks existing ones), so no two
writers can wait on each other in a cycle.

PostgreSQL behind a pooler in transaction mode (pgbouncer ``pool_mode = transaction``, the setting
``MILEPOST_DATABASE_POOLER=transaction``): each transaction may run on a different server connection, shared
with other clients, so nothing may live in the session. psycopg's server-side prepared statements are off
(``prepare_threshold=None``: a statement prepared on one server connection is missing on the next, or a
name is already taken there); the lock timeout is set per transaction (``SET LOCAL``) instead of as a
startup option, which pgbouncer refuses. Nothing else of ours lives in the session: no LISTEN/NOTIFY, temp
tables, WITH HOLD cursors or plain ``SET``; the claim mark of kit/liveness.py is held in a transaction of its
own there.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal, NoReturn, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator

from milepost.kit.errors import (
    MilepostError,
    OutcomeUnknown,
    ServiceUnavailable,
    TransientConflict,
)
from milepost.kit.time import as_utc

DEFAULT_DATABASE_URL = "sqlite:///milepost.db"

log = logging.getLogger("milepost.db")

# How long a new PostgreSQL connection may take before the database counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 5

# How long a writer waits for the SQLite write lock, or PostgreSQL for a row lock, before giving up with a
# conflict. Long enough for a queue of honest writers, short enough that nobody hangs.
LOCK_TIMEOUT_SECONDS = 30

# What sits between us and PostgreSQL (MILEPOST_DATABASE_POOLER): "none" (a direct connection) or
# "transaction" (a pooler in transaction mode; also right for pgbouncer in session mode, which refuses the
# startup option that carries the lock timeout just the same).
Pooler = Literal["none", "transaction"]
POOLERS: tuple[Pooler, ...] = ("none", "transaction")


def pooler_from_environment() -> Pooler:
    """``MILEPOST_DATABASE_POOLER`` (default "none"): for the commands that open a database from a URL
    without the rest of the settings (the worker, ``ledger verify``, migrations)."""
    value = os.environ.get("MILEPOST_DATABASE_POOLER", "none").strip().lower() or "none"
    if value not in POOLERS:
        raise ValueError(f"MILEPOST_DATABASE_POOLER={value!r}: use one of {', '.join(POOLERS)}")
    return value


def pooler_hint(error: BaseException) -> str:
    """What to do when the error is pgbouncer refusing the lock timeout we send as a startup option
    (so Milepost is behind pgbouncer but was not told): " (...)" to append to the message, else ""."""
    if "unsupported startup parameter" in str(getattr(error, "orig", None) or error):
        return " (behind pgbouncer: set MILEPOST_DATABASE_POOLER=transaction)"
    return ""


_naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_naming)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always handed back timezone-aware in UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


# Money and counters: 64-bit on PostgreSQL; SQLite integers are 64-bit already.
Money = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# Per thread: whether the unit of work being committed has got as far as sending COMMIT (set by the
# engine's "commit" event, just before the driver's commit()). Before that point a failure means nothing
# was committed; from it on, the outcome is unknown until the database answers.
_phase = threading.local()


def _mark_committing(connection: Any) -> None:
    # In pipeline mode the writes are answered first, as the connection leaves it (one round trip; the
    # COMMIT then goes alone): a failure up to here means nothing was committed. (Sending them with the
    # COMMIT would save that round trip, but a connection lost then would leave every such failure's
    # outcome unknown.)
    leave_pipeline(connection)
    _phase.committing = True


def make_engine(url: str, pooler: Pooler | None = None) -> Engine:
    """An engine for ``url``; ``pooler`` (default: ``MILEPOST_DATABASE_POOLER``) matters on PostgreSQL."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
    else:
        engine = _postgres_engine(url, pooler or pooler_from_environment())
    event.listen(engine, "commit", _mark_committing)
    return engine


# PostgreSQL in pipeline mode (psycopg): a unit of work sends its statements without waiting for each
# answer, and waits only where it needs one. A statement that returns rows (a SELECT, a RETURNING) is sent
# together with everything queued before it, and the request's writes (the ORM's flush, and the Core
# statements marked ``QUEUED``) go out together just before the COMMIT. ``BEGIN`` travels with the first
# statement (``pipelined``). So a unit of work costs one round trip per read it depends on, plus one for
# all its writes and one for the COMMIT, whatever the number of rows it writes, and every rule stays in
# Python: nothing is folded into SQL.
#
# What a queued write gives up: its row count and its error arrive later. No code reads the row count of
# a queued statement (the ORM's check that an UPDATE matched its row is off while it is queued: the rows
# a unit of work updates are the ones it has read, most under a lock), and its error (a constraint, a
# deadlock) is raised by the next statement that waits, or by the COMMIT, and rolls the whole unit of
# work back just the same. Code that must see a write's error at that write calls ``flush_now``.
PIPELINE = (
    "milepost_pipeline"  # the psycopg Pipeline of a connection in pipeline mode (connection.info)
)
QUEUED = {
    "milepost_queued": True
}  # execution options of a Core write that may wait in the pipeline
_flushing: ContextVar[bool] = ContextVar("milepost_flushing", default=False)

# A pooled connection that sat unused for longer than this is checked (SELECT 1) before it is handed out:
# the database may have restarted meanwhile (a restart takes longer than this). A connection in steady use
# is not: no round trip per request under load. The pool hands out the most recently used connection
# first (LIFO), so the busy ones stay busy and only the spare ones age.
IDLE_CHECK_SECONDS = 0.2

# The most connections one process opens to PostgreSQL, all kept once opened (the pool hands out the most
# recently used first, so a process that needs fewer keeps using the same few).
POOL_CONNECTIONS = 30


class _PipelinedDialect(PGDialect_psycopg):
    """psycopg's dialect, with the ORM's matched-rows check off while a flush is queued in a pipeline
    (its row counts are not known yet)."""

    supports_statement_cache = True

    @property
    def supports_sane_rowcount(self) -> bool:
        return not _flushing.get()

    @supports_sane_rowcount.setter
    def supports_sane_rowcount(self, _value: bool) -> None:
        pass

    @property
    def supports_sane_multi_rowcount(self) -> bool:
        return not _flushing.get()

    @supports_sane_multi_rowcount.setter
    def supports_sane_multi_rowcount(self, _value: bool) -> None:
        pass


def _waits_for_answer(context: Any) -> bool:
    """Whether the statement just sent must have its answer now: all but a write that returns nothing
    and is either part of the ORM's flush or marked ``QUEUED``."""
    if (
        context.execution_options.get("milepost_queued", False)
        and getattr(context, "compiled", None) is None
    ):
        return False  # SQL of our own marked as such (SET LOCAL)
    compiled = getattr(context, "compiled", None)
    if compiled is None or not (context.isinsert or context.isupdate or context.isdelete):
        return True
    if compiled.effective_returning:
        return True
    return not (_flushing.get() or context.execution_options.get("milepost_queued", False))


def _sync_when_answer_needed(
    connection: Any,
    _cursor: Any,
    _statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    pipeline = connection.info.get(PIPELINE)
    if pipeline is not None and _waits_for_answer(context):
        pipeline.sync()  # sends what is queued with this statement and reads the answers


class PipelinedSession(Session):
    """A session whose flush may wait in the connection's pipeline (see ``PIPELINE``)."""

    def flush(self, objects: Any = None) -> None:
        token = _flushing.set(True)
        try:
            updates = _take_plain_updates(self) if objects is None else []
            super().flush(objects)
            _write_plain_updates(self, updates)
            _insert_queued(self)
        finally:
            _flushing.reset(token)


# The change of a loaded row the usual way (a milestone's status and amounts, a project's head): set its
# attributes, and the flush writes it. For a row of a plain model (one table, one primary key column, no
# relationships, no version counter, no column that the database or an ``onupdate`` changes), the flush
# writes it itself: one ``UPDATE … SET <the changed columns> WHERE id = …`` (an executemany for several
# rows with the same changed columns), as the ORM would, but without the ORM's unit of work, which cost
# several times the statement's own CPU (measured with bench/service_cpu.py). The mapper's
# ``before_update`` and ``after_update`` listeners are called as the ORM calls them (milestones keep
# their project's totals that way), and the object is left as the ORM leaves one it has flushed.
# (model, the changed columns, the row's values and id)
_Update = tuple[type["Base"], tuple[str, ...], dict[str, Any]]


def _take_plain_updates(session: Session) -> list[_Update]:
    """The changed plain rows among ``session``'s dirty objects, each object then marked as flushed."""
    taken: list[_Update] = []
    dirty = session.dirty
    if not dirty or session.deleted:
        # With a DELETE in the flush, the ORM orders the UPDATEs before it (an UPDATE may drop the
        # reference to the deleted row): it writes them all.
        return taken
    connection = session.connection()
    for instance in dirty:
        state = inspect(instance)
        mapper = state.mapper
        model: type[Base] = mapper.class_
        columns = _plain_columns(model)
        changed = state.committed_state  # attribute -> its value before this unit of work's change
        values = state.dict
        if (
            columns is None
            or not changed.keys() <= columns.keys()
            # A SQL expression set as a value (``x = Model.x + 1``): the ORM evaluates it in the UPDATE.
            or any(isinstance(values.get(key), ClauseElement) for key in changed)
        ):
            continue
        mapper.dispatch.before_update(mapper, connection, state)
        row = {
            columns[key]: values[key]
            for key, before in changed.items()
            if key in values and not _same(before, values[key])
        }
        # What the ORM's flush does to an object it has written: no pending change, not dirty.
        state._commit_all(values, session.identity_map)
        if row:
            assert state.key is not None  # a dirty object is persistent
            taken.append((model, tuple(sorted(row)), {**row, _ROW_ID: state.key[1][0]}))
        mapper.dispatch.after_update(mapper, connection, state)
    # In one order (table, then id), as the ORM writes them: two units of work changing the same rows
    # take their locks in the same order.
    taken.sort(key=lambda update: (update[0].__tablename__, update[2][_ROW_ID]))
    return taken


def _same(before: Any, now: Any) -> bool:
    try:
        return bool(before == now) and type(before) is type(now)
    except Exception:  # a value that cannot compare is written
        return False


def _write_plain_updates(session: Session, taken: list[_Update]) -> None:
    if not taken:
        return
    batches: dict[tuple[type[Base], tuple[str, ...]], list[dict[str, Any]]] = {}
    for model, names, row in taken:
        batches.setdefault((model, names), []).append(row)
    connection = session.connection()
    for (model, _names), rows in batches.items():
        connection.execute(_plain_update(model), rows)


_ROW_ID = "milepost_row_id"


@functools.cache
def _plain_columns(model: type[Base]) -> dict[str, str] | None:
    """Attribute -> column key of each of ``model``'s columns but its primary key, if rows of ``model``
    may be written by ``_write_plain_updates`` (see above); None if not."""
    mapper = inspect(model)
    table = mapper.local_table
    if (
        mapper.relationships
        or mapper.version_id_col is not None
        or mapper.inherits is not None
        or not isinstance(table, Table)
        or len(mapper.primary_key) != 1
        or any(
            column.onupdate is not None or column.server_onupdate is not None
            for column in table.columns
        )
    ):
        return None
    (key,) = mapper.primary_key
    return {attribute: column for attribute, column in _column_names(model) if column != key.key}


@functools.cache
def _plain_update(model: type[Base]) -> Any:
    table = cast(Table, model.__table__)
    (key,) = inspect(model).primary_key
    return update(table).where(key == bindparam(_ROW_ID)).execution_options(**QUEUED)


# Rows written once and never changed in the unit of work that writes them (audit events, notifications)
# are not ORM objects of the session: building, tracking and flushing one through the unit of work cost
# several times what its INSERT does. ``insert_at_flush`` queues such a row; the session's next flush
# (explicit, before a query, or before COMMIT) writes the queued rows of each table in one statement,
# after the ORM's own rows, so a queued row may refer to a row the same unit of work added as an object.
_QUEUED_INSERTS = "milepost_inserts_at_flush"


def insert_at_flush(session: Session, model: type[Base], row: dict[str, Any]) -> None:
    """INSERT ``row`` (column name -> value) into ``model``'s table at this session's next flush; nothing
    if the unit of work rolls back first. Queue a row after the queued rows it refers to: the tables'
    rows go in the order each table's first row was queued."""
    queued: dict[type[Base], list[dict[str, Any]]] = session.info.setdefault(_QUEUED_INSERTS, {})
    queued.setdefault(model, []).append(row)


def tables_queued(session: Session) -> set[str]:
    """The names of the tables with rows queued by ``insert_at_flush`` in this session."""
    queued: dict[type[Base], list[dict[str, Any]]] = session.info.get(_QUEUED_INSERTS, {})
    return {model.__tablename__ for model in queued}


def row_of(instance: Base) -> dict[str, Any]:
    """The column values set on a (transient) mapped ``instance``, for ``insert_at_flush``: a column left
    unset gets its default in the INSERT, as the ORM would give it."""
    values = instance.__dict__
    return {
        column: values[attribute]
        for attribute, column in _column_names(type(instance))
        if attribute in values
    }


@functools.cache
def _column_names(model: type[Base]) -> tuple[tuple[str, str], ...]:
    """(attribute, column key) of each of ``model``'s mapped columns."""
    return tuple(
        (attribute.key, attribute.columns[0].key) for attribute in inspect(model).column_attrs
    )


def _insert_queued(session: Session) -> None:
    queued: dict[type[Base], list[dict[str, Any]]] | None = session.info.pop(_QUEUED_INSERTS, None)
    if not queued:
        return
    connection = session.connection()
    # Table by table, in the order each was first queued: a table's rows before its dependants'.
    for model, rows in queued.items():
        # One executemany per set of columns given (rows of one table nearly always give the same).
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(frozenset(row), []).append(row)
        for same in by_columns.values():
            connection.execute(_plain_insert(model), same)


@functools.cache
def _plain_insert(model: type[Base]) -> Any:
    return insert(cast(Table, model.__table__)).execution_options(**QUEUED)


def flush_now(session: Session) -> None:
    """Flush and wait for the database's answer: for code that must see an INSERT's constraint error at
    that INSERT (a unique e-mail address, one rating per person)."""
    session.flush()
    sync(session.connection())


def sync(connection: Any) -> None:
    """Send what waits in ``connection``'s pipeline (if it is in one) and read the answers; a failure is
    raised as SQLAlchemy raises the driver's errors, and a lost connection is invalidated."""
    pipeline = connection.info.get(PIPELINE)
    if pipeline is not None:
        _answered(connection, pipeline.sync)


def leave_pipeline(connection: Any) -> None:
    """Take ``connection`` out of pipeline mode (if it is in it): one Sync, which sends what waits and
    reads every answer; a failure is raised as ``sync`` raises it."""
    connection.info.pop(PIPELINE, None)
    manager = connection.info.pop(_PIPELINE_MANAGER, None)
    if manager is not None:
        _answered(connection, lambda: manager.__exit__(None, None, None))


def _answered(connection: Any, send: Callable[[], object]) -> None:
    import psycopg

    try:
        send()
    except psycopg.Error as error:
        lost = connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            None, None, error, psycopg.Error, connection_invalidated=lost
        ) from error


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Run the block with the session's connection in pipeline mode (PostgreSQL; elsewhere, as is).

    The connection leaves pipeline mode just before COMMIT (``_mark_committing``: the last writes are
    answered then, and the COMMIT goes alone), or, after a rollback or a block that broke off, when it
    goes back to the pool (``_reset_on_checkin``)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    connection = session.connection()
    if PIPELINE not in connection.info:
        driver: Any = connection.connection.driver_connection
        if not driver.autocommit and int(driver.info.transaction_status) == 0:  # IDLE
            # psycopg would send its BEGIN in a round trip of its own (it must know the transaction
            # has begun before it sends anything else): we send it, with the first statement instead
            # (``_begin_with_first_statement``), and psycopg, in autocommit, adds none. Nothing else
            # changes: COMMIT and ROLLBACK are sent as before (psycopg sends them whenever the server
            # says a transaction is open), and the checkin turns autocommit off again.
            driver.autocommit = True  # no round trip: the connection is idle, not yet in a pipeline
            connection.info[_BEGIN_PENDING] = _begin_statement(driver)
            connection.info[_AUTOCOMMIT_LENT] = True
        manager = driver.pipeline()
        connection.info[PIPELINE] = manager.__enter__()
        connection.info[_PIPELINE_MANAGER] = manager
    yield


_PIPELINE_MANAGER = "milepost_pipeline_manager"
# The BEGIN to send before the unit of work's first statement.
_BEGIN_PENDING = "milepost_begin_pending"
_AUTOCOMMIT_LENT = "milepost_autocommit_lent"  # psycopg's autocommit is on for our own BEGIN


def _begin_statement(driver: Any) -> bytes:
    """The BEGIN psycopg itself would send, with the connection's isolation level."""
    import psycopg

    level = driver.isolation_level
    if level is None:
        return b"BEGIN"
    return b"BEGIN ISOLATION LEVEL " + psycopg.IsolationLevel(level).name.replace("_", " ").encode()


def _begin_with_first_statement(
    connection: Any,
    cursor: Any,
    _statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    """Before a unit of work's first statement, queue its BEGIN in the pipeline: both travel together
    (no answer is awaited for the BEGIN: an error in it fails the statement after it just the same)."""
    begin = connection.info.pop(_BEGIN_PENDING, None)
    if begin is not None:
        cursor.connection.execute(begin, prepare=False)


def _reset_on_checkin(dbapi_connection: Any, record: Any) -> None:
    """Pool checkin, before anyone else can check the connection out: out of pipeline mode (nothing is
    queued by then: COMMIT and ROLLBACK wait for their answers; leaving sends one Sync), and rolled back
    if it is still in a transaction (a block that broke off; SQLAlchemy's own reset would send a ROLLBACK
    every time)."""
    if record is not None:
        record.info.pop(PIPELINE, None)
        manager = record.info.pop(_PIPELINE_MANAGER, None)
        if manager is not None:
            try:
                manager.__exit__(None, None, None)
            except Exception as error:  # a broken connection: the next checkout finds out
                log.info("leaving pipeline mode failed", extra={"fields": {"error": str(error)}})
    lent = record is not None and record.info.pop(_AUTOCOMMIT_LENT, False)
    if record is not None:
        record.info.pop(_BEGIN_PENDING, None)
    if dbapi_connection is None or dbapi_connection.closed:
        return
    if int(dbapi_connection.info.transaction_status) != 0:  # not IDLE
        try:
            dbapi_connection.rollback()
        except Exception:  # gone: the pool's next checkout replaces it
            if record is not None:
                record.invalidate()
            return
    if lent:
        dbapi_connection.autocommit = False  # idle and out of pipeline mode: no round trip


def _postgres_engine(url: str, pooler: Pooler) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if pooler == "transaction":
        # No server-side prepared statements: they live in a server connection we do not keep.
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = f"-c lock_timeout={LOCK_TIMEOUT_SECONDS * 1000}"
    # reset_on_return=None: the checkin hook below rolls back only a connection that is still in a
    # transaction (the pool's own reset would send a ROLLBACK, and leave pipeline mode, every time).
    # POOL_CONNECTIONS kept, no overflow: an overflow connection is closed when it comes back, so a
    # process that often needs one more than the pool keeps would open a new one (a new server process,
    # its prepared statements lost) several times a second.
    engine = create_engine(
        url,
        pool_pre_ping=False,
        pool_reset_on_return=None,
        pool_use_lifo=True,
        pool_size=POOL_CONNECTIONS,
        max_overflow=0,
        connect_args=connect_args,
    )
    engine.dialect.__class__ = _PipelinedDialect  # same driver, same settings; see the class
    event.listen(engine, "before_cursor_execute", _begin_with_first_statement)
    event.listen(engine, "after_cursor_execute", _sync_when_answer_needed)

    # No ping per checkout, only for a connection that sat idle (IDLE_CHECK_SECONDS): without it, the
    # first request after a database restart that no request saw meets a pooled connection to the old
    # server and gets a 503 (the pool is invalidated only by that failure). tests/faults/test_outage.py
    # holds this.
    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        _reset_on_checkin(dbapi_connection, record)
        if record is not None:
            record.info["milepost_checked_in"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("milepost_checked_in")
        if returned is None or time.monotonic() - returned < IDLE_CHECK_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # the driver's error: this connection is gone
            alive = False
        if not alive:  # the pool throws it away and hands out another one
            raise DisconnectionError("a pooled connection was lost while idle")

    if pooler == "transaction":

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            # The first statement of the transaction (psycopg sends BEGIN before it): this
            # transaction's lock timeout, whichever server connection it runs on.
            connection.exec_driver_sql(
                f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_SECONDS * 1000}", execution_options=QUEUED
            )

    return engine


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": LOCK_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Hand transaction control to us (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("milepost_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "sqlite"


_Model = TypeVar("_Model", bound=Base)


def insert_new(session: Session, model: type[_Model], rows: list[dict[str, Any]]) -> list[_Model]:
    """INSERT rows, keeping the existing row where a unique key already exists; returns the rows it
    inserted, as objects of the session (the caller's own until commit: nobody else can lock them)."""
    if not rows:
        return []
    return list(session.scalars(_insert_or_keep(session, model).returning(model), rows))


def plan_as_index_reads(session: Session) -> None:
    """PostgreSQL: plan the rest of this transaction's statements for a read of a few thousand rows
    through indexes, from memory: no parallel workers, and an index lookup costed as the cached page it
    is (``random_page_cost`` 1.1, the usual setting for SSDs, instead of the default 4, which is for
    spinning disks).

    For the dashboard's weekly history on a large ledger: with the defaults the planner either hands
    part of the join to a worker process it starts for the query (the start costs more than the worker
    saves) or, for a freelancer's milestones, which it can only find through their projects, reads
    every milestone to hash them rather than look up the few it needs. Measured on
    bench/data_growth.py's data at 100k milestones of one client: the client's history 20 ms with a
    worker, 10 ms without; the freelancer's 29-38 ms with the whole table read, 12 ms with lookups.
    ``set_config(..., true)`` lasts until the transaction ends (safe behind a transaction pooler), in
    one statement. Nothing on SQLite."""
    if not is_sqlite(session):
        session.execute(
            text(
                "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                " set_config('random_page_cost', '1.1', true)"
            )
        )


# Counters many transactions add to (a platform fee account's balance, a project's totals) are not
# updated where the change is decided: locking such a row there would make every transaction that touches
# it wait for the others' whole transactions, and could deadlock with one that locks the same rows in
# another order. Each transaction adds its deltas by one atomic ``column = column + delta`` per row just
# before COMMIT (after its last flush), in one order (table, then id) for every transaction, so it holds
# such a row only for the moment of its commit and waits for nothing else while it does.
_INCREMENTS = "milepost_increments_at_commit"


def increment_at_commit(session: Session, model: type[Base], row_id: str, **deltas: int) -> None:
    """Add ``deltas`` (column name -> amount) to the columns of ``model``'s row ``row_id`` just before
    this unit of work commits; nothing if it rolls back. A value of that row loaded in this session is
    read again if anyone asks for it afterwards."""
    pending: dict[tuple[str, str], tuple[type[Base], dict[str, int]]] = session.info.setdefault(
        _INCREMENTS, {}
    )
    _, totals = pending.setdefault((model.__tablename__, row_id), (model, {}))
    for column, delta in deltas.items():
        totals[column] = totals.get(column, 0) + delta


@event.listens_for(Session, "before_commit")
def _increment_now(session: Session) -> None:
    session.flush()  # everything else first (a flush may itself add increments): these rows go last
    pending: dict[tuple[str, str], tuple[type[Base], dict[str, int]]] = session.info.pop(
        _INCREMENTS, {}
    )
    for table_and_id in sorted(pending):
        model, totals = pending[table_and_id]
        changes = {column: delta for column, delta in totals.items() if delta}
        if not changes:
            continue
        row_id = table_and_id[1]
        columns = tuple(sorted(changes))
        # Queued with the flush (no answer awaited: its error, if any, fails the commit).
        session.execute(
            _adding_to(model, columns),
            {"row_id": row_id, **{f"add_{column}": changes[column] for column in columns}},
        )
        loaded = session.identity_map.get(session.identity_key(model, row_id))
        if loaded is not None:
            session.expire(loaded, list(columns))


@functools.cache
def _adding_to(model: type[Base], columns: tuple[str, ...]) -> Any:
    """``UPDATE <model's table> SET column = column + :add_column, ... WHERE id = :row_id``, built once
    per model and set of columns (a handful: an account's balances, a project's totals), its values
    bound, so it is not built, keyed and looked up in the compiled cache anew at every commit."""
    mapper = inspect(model)
    (key,) = mapper.primary_key
    # On the table rather than the mapped class: an ORM UPDATE is copied (annotated) at every
    # execution, which made it keyed anew each time however it was built.
    adding = {
        mapper.columns[name]: mapper.columns[name] + bindparam(f"add_{name}") for name in columns
    }
    return (
        update(cast(Table, model.__table__))
        .where(key == bindparam("row_id"))
        .values(adding)
        .execution_options(**QUEUED)
    )


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending_writes(session: Session, _previous_transaction: object) -> None:
    """A rolled-back unit of work leaves nothing to add at commit and no queued row to insert."""
    session.info.pop(_INCREMENTS, None)
    session.info.pop(_QUEUED_INSERTS, None)


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: list[dict[str, Any]]
) -> int:
    """INSERT rows, silently keeping the existing row where a unique key already exists.

    Returns how many rows were inserted. On PostgreSQL, a conflict with a row another transaction has
    inserted but not yet committed waits for that transaction to end.
    """
    if not rows:
        return 0
    # Count the rows RETURNING gives back: the driver's rowcount for this statement is -1 on PostgreSQL
    # (psycopg 3 under SQLAlchemy 2.1), which would count every conflict as an insert.
    if len(rows) == 1:
        # The usual case (an idempotency key's claim, a notification's e-mail): one statement built
        # once per table, its values bound, so it is compiled once; values() inlines every row's
        # values into the statement, which is then compiled anew each time. A Core statement on the
        # table: the ORM's bulk insert around it did nothing for one row but cost a third of a claim's
        # CPU. It flushed what was pending first, as any ORM statement does: so does this.
        if session.autoflush:
            session.flush()
        return len(session.execute(_keeping_one(model, is_sqlite(session)), rows[0]).all())
    primary_key = list(inspect(model).primary_key)
    result = session.execute(_insert_or_keep(session, model).values(rows).returning(*primary_key))
    return len(result.all())


@functools.cache
def _keeping_one(model: type[Base], on_sqlite: bool) -> Any:
    dialect_insert = sqlite.insert if on_sqlite else postgresql.insert
    table = cast(Table, model.__table__)
    return dialect_insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


def _insert_or_keep(session: Session, model: type[Base]) -> Any:
    """INSERT into ``model``'s table that keeps the existing row on a unique-key conflict."""
    dialect_insert = sqlite.insert if is_sqlite(session) else postgresql.insert
    return dialect_insert(model).on_conflict_do_nothing()


# PostgreSQL SQLSTATEs that mean "another transaction got in the way": retrying later may work.
_CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}


def as_conflict(error: DBAPIError) -> TransientConflict | None:
    """Translate a lock timeout, deadlock or serialisation failure into a typed (transient) conflict."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _CONFLICT_SQLSTATES:
        return TransientConflict("Another request is changing the same money right now; try again.")
    if isinstance(error, OperationalError) and "database is locked" in str(orig):
        return TransientConflict("The database is busy with another write; try again.")
    return None


# PostgreSQL SQLSTATEs that mean "the server cannot serve you now": connection exceptions (08xxx) and
# shutdown / starting up (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
_UNREACHABLE_SQLSTATE_PREFIXES = ("08", "57P")

# SQLite's words for "the database file is not there to be used" (a missing directory, an unmounted disk).
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error")


def is_unreachable(error: BaseException) -> bool:
    """True when the error says the database could not be reached at all, not that it refused something.

    PostgreSQL: SQLAlchemy marks a lost connection (``connection_invalidated``); a failed connect is a
    psycopg ``OperationalError`` that carries no SQLSTATE (the server never answered), or one saying the
    server is shutting down or starting up. Any other SQLSTATE is the server refusing something (a
    constraint, a lock timeout, a bad value), never an outage.
    """
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return any(words in str(orig).lower() for words in _SQLITE_UNREACHABLE)
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNREACHABLE_SQLSTATE_PREFIXES)


class OutageLog:
    """One warning when the database becomes unreachable, one info line when it answers again: an outage
    is one episode in the log, not a traceback per request."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self.since: float | None = None
        self.failures = 0

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning(
            "database unreachable; answering 503 until it is back",
            extra={"fields": {"error": _first_line(error) + pooler_hint(error)}},
        )

    def worked(self) -> None:
        if self.since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self.since is None:
                return
            seconds, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        log.info(
            "database reachable again",
            extra={"fields": {"outage_seconds": round(seconds, 1), "failed_requests": failures}},
        )


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


class Database:
    """One per process: an engine and the units of work opened on it."""

    def __init__(self, url: str, pooler: Pooler | None = None) -> None:
        self.url = normalise_url(url)
        # Between us and PostgreSQL (see the module's docstring); default: MILEPOST_DATABASE_POOLER.
        self.pooler: Pooler = pooler or pooler_from_environment()
        self.engine = make_engine(self.url, self.pooler)
        self._postgres = not self.url.startswith("sqlite")
        self._sessions = sessionmaker(
            self.engine, class_=PipelinedSession, expire_on_commit=False, autoflush=True
        )
        reading = self.engine.execution_options(milepost_read_only=True)
        self._read_sessions = sessionmaker(reading, expire_on_commit=False)
        self._autocommit_writes = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        # PostgreSQL reads that may run in autocommit (see ``read_only``).
        self._autocommit_read_sessions = (
            sessionmaker(
                reading.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
            )
            if self._postgres
            else self._read_sessions
        )
        # SQLite lets one writer in at a time, and a writer that finds the database locked sleeps and polls
        # (its busy handler): under load the unluckiest request waits seconds. Threads of this process
        # queue on a lock instead, so only one of them at a time asks SQLite, in arrival order; the busy
        # handler is left to arbitrate between processes.
        self._write_turn = threading.RLock() if self.url.startswith("sqlite") else None
        self.outage = OutageLog(self.url)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Raises ``OutcomeUnknown`` when the commit itself fails in a way that leaves its outcome unknown
        (the connection broke after COMMIT was sent), ``ServiceUnavailable`` when the database cannot be
        reached before that (nothing was committed), and a transient conflict on a lock timeout.
        """
        if self._write_turn is None:
            yield from self._unit_of_work()
            return
        if not self._write_turn.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            raise TransientConflict("The database is busy with another write; try again.")
        try:
            yield from self._unit_of_work()
        finally:
            self._write_turn.release()

    def _unit_of_work(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            with pipelined(session):
                try:
                    yield session
                except MilepostError as error:
                    if error.keep_changes:
                        self._commit(session)
                    else:
                        _rollback(session)
                    raise
                except BaseException:
                    _rollback(session)
                    raise
                self._commit(session)
        except DBAPIError as error:
            # Raised by the block (before COMMIT), so rolled back: nothing was changed.
            _rollback(session)
            self._refused(error)
        finally:
            session.close()
        self.outage.worked()

    def _refused(self, error: DBAPIError) -> NoReturn:
        """A write the database refused before COMMIT (rolled back): a conflict to try again, the
        database out of reach, or the error itself."""
        conflict = as_conflict(error)
        if conflict is not None:
            raise conflict from error
        if is_unreachable(error):
            self.outage.failed(error)
            raise ServiceUnavailable() from error
        raise error

    def _commit(self, session: Session) -> None:
        """Flush, run the before-commit work, COMMIT. A failure of the COMMIT itself is told apart from
        every failure before it (those are rolled back: nothing was changed)."""
        _phase.committing = False
        try:
            session.commit()
        except DBAPIError as error:
            committing = getattr(_phase, "committing", False)
            _rollback(session)
            unanswered = isinstance(error, OperationalError) and (
                getattr(error.orig, "sqlstate", None) is None
            )
            if committing and as_conflict(error) is None and (is_unreachable(error) or unanswered):
                # COMMIT was sent and no answer came back (PostgreSQL: the connection broke after it was
                # sent; SQLite: an I/O failure while writing, not a plain refusal such as a busy lock or a
                # constraint): it may have committed. Only a retry with the same idempotency key can
                # tell, by replaying the stored response if it did.
                raise OutcomeUnknown(with_key=False) from error
            raise  # before COMMIT, or the database answered it with a refusal: rolled back
        finally:
            _phase.committing = False

    @contextmanager
    def rehearsal(self) -> Iterator[Session]:
        """A write transaction that is always rolled back, even when the block ends well: to see what a
        unit of work would do (``milepost tick --dry-run``) and keep none of it. Nothing is committed, so
        no after-commit hook (the mail senders' wake-up) fires either."""
        if self._write_turn is not None and not self._write_turn.acquire(
            timeout=LOCK_TIMEOUT_SECONDS
        ):
            raise TransientConflict("The database is busy with another write; try again.")
        session = self._sessions()
        try:
            yield session
            session.flush()  # what the unit of work would write reaches the database, then goes
        finally:
            session.rollback()
            session.close()
            if self._write_turn is not None:
                self._write_turn.release()

    @contextmanager
    def read_only(self, *, autocommit: bool = False) -> Iterator[Session]:
        """A read transaction; writes nothing. Objects read stay usable after the block.

        ``autocommit``: on PostgreSQL, no transaction at all, each statement on its own (no BEGIN, no
        COMMIT: two round trips fewer). Under READ COMMITTED every statement of a transaction sees a
        snapshot of its own anyway, so a read of a few statements (a token, a page of an API listing)
        loses nothing; one that needs a server-side cursor or one snapshot for all its statements (the
        ledger's verification) keeps the transaction.

        On PostgreSQL a block that ends well ends its transaction with COMMIT, not ROLLBACK: both cost
        one round trip, but after a ROLLBACK psycopg forgets its prepared statements (and now and then
        sends DEALLOCATE ALL), so every request's token read would have to prepare them again. SQLite
        keeps its ROLLBACK (no such cache; and a read that met a damaged page can have its COMMIT
        refused, which a read should not fail on). A block that raises is rolled back (by ``close``)."""
        session = (self._autocommit_read_sessions if autocommit else self._read_sessions)()
        try:
            yield session
            if self._postgres and not autocommit:
                _end_read(session)
        except DBAPIError as error:
            if is_unreachable(error):
                self.outage.failed(error)
                raise ServiceUnavailable() from error
            raise
        finally:
            # close() ends the transaction without expiring what was loaded (rollback() would).
            session.close()
        self.outage.worked()

    @contextmanager
    def autocommit(self) -> Iterator[Session]:
        """One statement that commits on its own: on PostgreSQL in autocommit (no BEGIN, no COMMIT: one
        round trip); elsewhere a unit of work. For a single INSERT that must be visible at once (an
        idempotency key's claim); anything that reads and then writes needs a unit of work."""
        if not self._postgres:
            with self.unit_of_work() as session:
                yield session
            return
        session = self._autocommit_writes()
        try:
            yield session
            session.flush()  # what the block left pending; each statement has committed on its own
        except DBAPIError as error:
            _rollback(session)
            self._refused(error)
        finally:
            session.close()
        self.outage.worked()

    def ping(self) -> bool:
        """Whether ``SELECT 1`` works right now (for /readyz)."""
        try:
            with self.read_only() as session:
                session.execute(text("SELECT 1"))
        except (ServiceUnavailable, DBAPIError):
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


def log_failure(db: Database, logger: logging.Logger, message: str, error: BaseException) -> None:
    """How background loops log a failed round: an unreachable database is part of the outage episode
    (one line when it starts, one when it ends); anything else is logged with its traceback."""
    if isinstance(error, ServiceUnavailable) or is_unreachable(error):
        db.outage.failed(error)
    else:
        logger.error(message, exc_info=error)


def _end_read(session: Session) -> None:
    """COMMIT a read transaction that went well. What the block loaded is let go first, as ``close``
    would (it stays usable, detached): nothing a read touched is flushed by the COMMIT."""
    session.expunge_all()
    session.commit()


def _rollback(session: Session) -> None:
    """Roll back; on a connection that is already gone there is nothing to roll back, and the error that
    broke it is the one worth reporting."""
    with suppress(DBAPIError):
        session.rollback()


def str_enum(enum_class: type[Any]) -> Any:
    """Store a StrEnum as its string value (portable between SQLite and PostgreSQL)."""
    from sqlalchemy import Enum

    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def json_column() -> Any:
    from sqlalchemy import JSON

    return JSON().with_variant(postgresql.JSONB(), "postgresql")
