"""Is the storage sound? SQLite's own consistency check, and whether the database can be written at all.

``ledger verify`` reports what ``PRAGMA quick_check`` finds (a damaged b-tree page loses rows from the
queries that go through it, so the ledger's own checks could pass on a file that is losing data), and
``milepost serve`` refuses to start on a file that fails the check or cannot be written, rather than
answering 500 to every write.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from milepost.kit.db import Database, pooler_hint

# quick_check stops after this many findings; a damaged file can have thousands, and the first few say it.
MAX_FINDINGS = 10
# Created and rolled back at once by the write probe; never committed.
_PROBE_TABLE = "milepost_write_probe"


def sqlite_quick_check(connection: Connection) -> list[str]:
    """What SQLite's ``PRAGMA quick_check`` finds wrong with the file (empty: nothing). It checks every
    b-tree page's structure, in time linear in the file's size, but not that indexes match their
    tables (``integrity_check`` does that too, more slowly)."""
    try:
        rows = connection.exec_driver_sql(f"PRAGMA quick_check({MAX_FINDINGS})").scalars().all()
    except DBAPIError as error:  # the file is too damaged even to be checked
        return [f"SQLite cannot check the database file: {error.orig}"]
    if [str(row) for row in rows] == ["ok"]:
        return []
    # A finding can span lines ("*** in database main ***\nPage 167: ..."): one problem per line, without
    # the header that names the schema.
    findings = [
        line.strip()
        for row in rows
        for line in str(row).splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]
    return [f"SQLite quick_check: {finding}" for finding in findings[:MAX_FINDINGS]]


def write_problem(database: Database) -> str | None:
    """Why the database cannot be written, or None when it can. A real write (a table created in a
    transaction that is rolled back), because only a write finds out: a read-only file still opens and
    reads, and a process running as root is not stopped by file permissions but by what the kernel
    refuses (a read-only mount, an immutable file) or by the URL (``?mode=ro``)."""
    try:
        # The engine's transactions begin with BEGIN IMMEDIATE on SQLite (kit.db): the write lock first.
        with database.engine.connect() as connection, connection.begin() as transaction:
            connection.execute(text(f"CREATE TABLE {_PROBE_TABLE} (probe INTEGER)"))
            transaction.rollback()
    except DBAPIError as error:
        first_line = str(error.orig).strip().splitlines()[0]
        return f"the database cannot be written: {first_line}{pooler_hint(error)}"
    return None


def startup_problems(database: Database) -> list[str]:
    """What must stop a server from starting on this database: for SQLite, a file that fails
    ``quick_check``; for any database, one that cannot be written."""
    problems: list[str] = []
    if _sqlite(database):
        try:
            reading = database.engine.execution_options(milepost_read_only=True)
            with reading.connect() as connection:
                problems.extend(sqlite_quick_check(connection))
        except DBAPIError as error:
            return [f"the database cannot be opened: {str(error.orig).strip().splitlines()[0]}"]
    written = write_problem(database)
    if written is not None:
        problems.append(written)
    return problems


def _sqlite(database: Database) -> bool:
    return database.engine.dialect.name == "sqlite"
