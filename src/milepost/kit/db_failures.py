"""What an operator reads when the database cannot be used: a URL without its password, and one sentence
with the fix for the failures they can act on (unreachable, no such database, a refused login, missing
rights, no schema, a read-only SQLite file)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from milepost.kit.db import is_unreachable


def shown_url(url: str) -> str:
    """A database URL fit for a message or a log: its password replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def explain_failure(error: BaseException, url: str) -> str | None:
    """One sentence, with the fix, for a failure to use the database at ``url`` that an operator can
    act on (unreachable, no such database, a refused login, missing rights, no schema, a read-only
    SQLite file); None for anything else."""
    orig = getattr(error, "orig", None) or error
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    where = shown_url(url)
    if isinstance(orig, sqlite3.Error) or url.startswith("sqlite"):
        return _explain_sqlite(first, where, url)
    return _explain_postgres(error, orig, first, where, url)


def _explain_sqlite(first: str, where: str, url: str) -> str | None:
    """``explain_failure`` for SQLite: a file that cannot be opened or written, or has no schema."""
    lowered = first.lower()
    path = _sqlite_path(url)
    if "unable to open database file" in lowered:
        return (
            f"cannot open the SQLite database {path}: its directory must exist and be writable "
            "by this user (SQLite keeps -wal and -shm files beside it)"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return (
            f"the SQLite database {path} is read-only for this user: make the file and its "
            "directory writable (SQLite keeps -wal and -shm files beside it)"
        )
    if "no such table" in lowered:
        return f"the database at {where} has no schema yet ({first}): run 'milepost db upgrade'"
    if "disk i/o error" in lowered or "database or disk is full" in lowered:
        return f"the SQLite database {path} cannot be written ({first}): check the disk"
    return None


def _explain_postgres(
    error: BaseException, orig: BaseException, first: str, where: str, url: str
) -> str | None:
    """``explain_failure`` for PostgreSQL: by SQLSTATE, or by the server's words while connecting."""
    sqlstate = getattr(orig, "sqlstate", None)
    if (
        sqlstate is None
    ):  # refused while connecting: psycopg gives the server's words, not a SQLSTATE
        text_ = str(orig)
        if "password authentication failed" in text_ or re.search(
            r'role ".*" does not exist', text_
        ):
            sqlstate = "28P01"
        elif re.search(r'database ".*" does not exist', text_):
            sqlstate = "3D000"
        first = _server_words(text_) or first
    if sqlstate in ("28P01", "28000"):
        return (
            f"PostgreSQL refused the login at {where} ({first}): check the user and password in the "
            "database URL"
        )
    if sqlstate == "3D000":
        return f"{first} at {where}: create it (createdb <name>), or fix the database URL"
    if sqlstate == "42501":
        from sqlalchemy.engine import make_url

        role = make_url(url).username or "the role"
        return (
            f"the PostgreSQL role {role} lacks a right it needs at {where} ({first}): make it the "
            f"owner of the database and its tables, or grant them (GRANT ALL ON SCHEMA public, "
            f"ALL TABLES IN SCHEMA public and ALL SEQUENCES IN SCHEMA public TO {role})"
        )
    if sqlstate == "42P01":
        return f"the database at {where} has no schema yet ({first}): run 'milepost db upgrade'"
    if isinstance(error, DBAPIError) and is_unreachable(error):
        return (
            f"cannot reach the database at {where} ({first}): is the server running, and is the "
            "URL (--db or MILEPOST_DATABASE_URL) right?"
        )
    return None


def _server_words(message: str) -> str | None:
    """What the PostgreSQL server said in a connection failure ("FATAL:  database "x" does not exist"),
    without the driver's preamble."""
    found = re.search(r"(?:FATAL|ERROR):\s+(.*)", message)
    return found.group(1).strip() if found else None


def _sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url

    database = make_url(url).database or ""
    return str(Path(database).resolve()) if database and database != ":memory:" else database
