"""Which process holds an idempotency claim, and whether that process is still alive.

Every process has a boot id: random, made when it starts (and made again in a forked child). A claim
records the boot id of the process running its request, and each process holds a *mark* for as long as it
lives, which the operating system or the database drops the moment the process dies, SIGKILL included:

- PostgreSQL: a session-level advisory lock keyed by the boot id, on a dedicated connection. When the
  process dies the kernel closes its socket and the server ends that session, releasing the lock. A claim
  is abandoned iff ``pg_try_advisory_xact_lock`` on its holder's key succeeds (a transaction-level try, so
  it is let go when the claim's transaction ends). This works for any number of server processes, on any
  number of machines, sharing one PostgreSQL: the database itself is the witness, with no clocks and no
  heartbeats.
- PostgreSQL behind a pooler in transaction mode (``MILEPOST_DATABASE_POOLER=transaction``): a session
  lock would stay on whichever server connection ran it, shared with other clients, outliving our process
  (its claims would look live for as long as the pooler keeps that server connection), and a checker whose
  transaction lands on that connection would take the lock as its own (a live claim would look free). So
  the mark is a *transaction-level* advisory lock in a transaction that the mark's connection keeps open
  for the life of the process: the pooler gives an open transaction its server connection to itself, and
  when our process dies the pooler sees the client gone mid-transaction and closes that server
  connection, so the server ends the transaction and releases the lock. The server's idle-in-transaction
  and transaction time limits are switched off for that transaction only, and it holds no snapshot
  (VACUUM is not held back). It costs one server connection per process, held for as long as the process
  lives (count it in the pooler's pool size).
- SQLite: every process using the file is on the same machine (SQLite on a network file system is not
  supported anyway). Each process holds ``flock(LOCK_EX)`` on a file named after its boot id in a
  directory beside the database (``<database>-holders/``); the kernel drops it when the process dies. A
  claim is abandoned iff a non-blocking ``flock`` of its holder's file succeeds (the dead holder's file is
  then removed) or the file is not there. ``flock`` and not ``fcntl`` record locks: those belong to the
  process, and the process's own second descriptor would not see its lock.

Why not a pid and a start time: pids are reused, and a table of live processes needs heartbeats, that is a
timeout, which is exactly what made a dead process's claim block its key for five minutes. The time limit
(``ABANDONED_AFTER``) is kept only as the last resort: for claims without a holder (written before this, or
when the mark could not be taken, e.g. a read-only directory beside the database).

Within one process a claim of its own boot id is live only while its request is actually running here
(``Running``): one whose release after a failure could not reach the database is free at once too.

If the PostgreSQL mark's connection breaks (the database restarted), the mark is taken again on the next
claim; a claim written while the mark was not held names no holder.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger("milepost.liveness")


class _OnceUntilFixed:
    """Logs a failure to take the mark once, not once per request, until taking it works again."""

    def __init__(self) -> None:
        self.failing = False

    def failed(self, error: BaseException) -> None:
        if not self.failing:
            self.failing = True
            log.warning(
                "cannot hold this process's claim mark; new claims name no holder",
                extra={
                    "fields": {"error": str(error).strip().splitlines()[0] if str(error) else ""}
                },
            )

    def worked(self) -> None:
        self.failing = False


_BOOT_ID_SHAPE = re.compile(r"^[0-9a-f]{32}$")
# How often the PostgreSQL mark's connection is checked (a round trip) before a claim relies on it.
_PING_EVERY_SECONDS = 5.0

_boot: tuple[int, str] | None = None
_boot_lock = threading.Lock()


def boot_id() -> str:
    """This process's boot id (a forked child gets its own)."""
    global _boot
    pid = os.getpid()
    with _boot_lock:
        if _boot is None or _boot[0] != pid:
            _boot = (pid, secrets.token_hex(16))
        return _boot[1]


def advisory_key(holder: str) -> int:
    """The advisory lock key (a signed 64-bit integer) of a boot id."""
    return int.from_bytes(
        hashlib.sha256(b"milepost-holder:" + holder.encode()).digest()[:8], "big", signed=True
    )


class Mark:
    """This process's mark on one database, and the check of another process's."""

    def holder(self) -> str | None:
        """Our boot id once our mark is held, or None when it cannot be (claims then name no holder)."""
        raise NotImplementedError

    def is_alive(self, session: Session, holder: str) -> bool | None:
        """Whether the process with this boot id still holds its mark (None: cannot tell)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


# The server's time limits that would end the transaction that holds the mark behind a transaction-mode
# pooler (transaction_timeout exists from PostgreSQL 17 on): switched off for that transaction only. No
# table is read, so the transaction holds no lock but the mark's.
_OPEN_ENDED = (
    "SELECT set_config('idle_in_transaction_session_timeout', '0', true),"
    " CASE WHEN current_setting('transaction_timeout', true) IS NOT NULL"
    " THEN set_config('transaction_timeout', '0', true) END"
)


class PostgresMark(Mark):
    def __init__(self, url: str, pooler: str = "none") -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._pooled = pooler == "transaction"
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pinged = 0.0
        self._warn = _OnceUntilFixed()

    def holder(self) -> str | None:
        import psycopg

        me = boot_id()
        with self._lock:
            connection = self._connection
            if connection is not None and not connection.closed and not connection.broken:
                if time.monotonic() - self._pinged < _PING_EVERY_SECONDS:
                    return me
                try:
                    connection.execute("SELECT 1")
                    self._pinged = time.monotonic()
                    return me
                except psycopg.Error:
                    connection.close()
            self._connection = None
            try:
                connection = self._take(me)
            except psycopg.Error as error:
                self._warn.failed(error)
                return None
            self._warn.worked()
            if connection is None:
                return None
            self._connection, self._pinged = connection, time.monotonic()
            return me

    def _take(self, me: str) -> Any:
        """A new connection holding our mark, or None when the lock is taken (not by us: never seen).

        Direct: a session lock, in autocommit. Behind a transaction-mode pooler: a transaction-level lock
        in a transaction left open, whose first statement lifts the server's time limits."""
        import psycopg

        connection = psycopg.connect(
            self._conninfo,
            autocommit=not self._pooled,
            connect_timeout=5,
            prepare_threshold=None if self._pooled else 5,
        )
        try:
            if self._pooled:
                # Client-side binding, so that the simple query protocol is used: a statement run
                # with server-side parameters leaves its portal (and its snapshot) open until the next
                # statement, and an open snapshot in a transaction that lives as long as the process
                # would hold back VACUUM on the whole database.
                cursor = psycopg.ClientCursor(connection)
                cursor.execute(_OPEN_ENDED)
                locked = cursor.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", (advisory_key(me),)
                ).fetchone()
            else:
                locked = connection.execute(
                    "SELECT pg_try_advisory_lock(%s)", (advisory_key(me),)
                ).fetchone()
        except BaseException:
            connection.close()
            raise
        if not locked or not locked[0]:
            connection.close()
            return None
        return connection

    def is_alive(self, session: Session, holder: str) -> bool | None:
        free = session.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": advisory_key(holder)}
        ).scalar()
        return not free

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class SqliteMark(Mark):
    def __init__(self, database_path: str) -> None:
        self._directory = Path(database_path + "-holders")
        self._lock = threading.Lock()
        self._descriptor: int | None = None
        self._pid = 0
        self._warn = _OnceUntilFixed()

    def holder(self) -> str | None:
        me = boot_id()
        with self._lock:
            if self._descriptor is not None and self._pid == os.getpid():
                return me
            try:
                self._directory.mkdir(exist_ok=True)
                descriptor = os.open(self._directory / f"{me}.lock", os.O_CREAT | os.O_RDWR, 0o600)
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                self._warn.failed(error)
                return None
            self._warn.worked()
            self._descriptor, self._pid = descriptor, os.getpid()
            return me

    def is_alive(self, session: Session, holder: str) -> bool | None:
        if not _BOOT_ID_SHAPE.match(holder):
            return None
        path = self._directory / f"{holder}.lock"
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        else:
            path.unlink(missing_ok=True)  # its process is gone: tidy up its mark
            return False
        finally:
            os.close(descriptor)

    def close(self) -> None:
        with self._lock:
            if self._descriptor is not None and self._pid == os.getpid():
                os.close(self._descriptor)
                (self._directory / f"{boot_id()}.lock").unlink(missing_ok=True)
            self._descriptor = None


class ProcessLocalMark(Mark):
    """An in-memory SQLite database: only this process can see it, so every other holder is gone."""

    def holder(self) -> str | None:
        return boot_id()

    def is_alive(self, session: Session, holder: str) -> bool | None:
        return False


_marks: dict[tuple[int, str, str], Mark] = {}
_marks_lock = threading.Lock()


def mark_for(url: str, pooler: str = "none") -> Mark:
    """The mark of this process on the database at ``url`` (one per process and database), reached
    directly or through a pooler in transaction mode (``pooler="transaction"``)."""
    key = (os.getpid(), url, pooler)
    with _marks_lock:
        mark = _marks.get(key)
        if mark is None:
            mark = _marks[key] = _new_mark(url, pooler)
        return mark


def _new_mark(url: str, pooler: str) -> Mark:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return ProcessLocalMark()
        return SqliteMark(os.path.abspath(path))
    return PostgresMark(url, pooler)


class Running:
    """The claims whose requests are running in this process right now, counted per (database, key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def enter(self, url: str, scope_key: str) -> None:
        with self._lock:
            self._counts[(url, scope_key)] += 1

    def leave(self, url: str, scope_key: str) -> None:
        with self._lock:
            self._counts[(url, scope_key)] -= 1
            if self._counts[(url, scope_key)] <= 0:
                del self._counts[(url, scope_key)]

    def others(self, url: str, scope_key: str) -> int:
        """How many requests besides the caller (who has entered) run with this key here."""
        with self._lock:
            return self._counts[(url, scope_key)] - 1


running = Running()


def release_marks() -> None:
    """Let go of this process's marks (at a clean shutdown, once its requests and rounds are over): any
    claim still naming it is then free at once, and the SQLite mark's file is removed."""
    with _marks_lock:
        mine = [key for key in _marks if key[0] == os.getpid()]
        marks = [_marks.pop(key) for key in mine]
    for mark in marks:
        mark.close()
