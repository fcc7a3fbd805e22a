"""A unit of work is one transaction on both databases, however its statements travel (on PostgreSQL in
pipeline mode, its BEGIN sent with its first statement by us rather than alone by psycopg): what it has
written is seen by nobody else before it commits, nothing of it stays when it fails, and the connection it
used goes back to the pool as it came (a later read of several statements is one transaction again)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from milepost.kit.db import Database, flush_now
from milepost.users.models import User
from milepost.users.service import create_user


def _users(db: Database, email: str) -> int:
    with db.read_only() as session:
        return int(session.scalar(select(func.count()).where(User.email == email)) or 0)


def test_a_write_is_seen_by_others_only_once_its_unit_of_work_commits(db: Database) -> None:
    with db.unit_of_work() as session:
        create_user(session, email="early@example.com", name="Early", password="a long password")
        flush_now(session)  # sent and answered: it is in the database, inside this transaction
        assert _users(db, "early@example.com") == 0
        if db.engine.dialect.name == "postgresql":  # (CURRENT_TIMESTAMP is per statement on SQLite)
            first = session.scalar(text("SELECT now()"))
            session.execute(text("SELECT pg_sleep(0.01)"))
            assert session.scalar(text("SELECT now()")) == first
    assert _users(db, "early@example.com") == 1


def test_a_unit_of_work_that_fails_leaves_nothing_and_its_connection_as_it_was(
    db: Database,
) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        create_user(session, email="gone@example.com", name="Gone", password="a long password")
        flush_now(session)
        raise RuntimeError("the request broke off")
    assert _users(db, "gone@example.com") == 0
    if db.engine.dialect.name != "postgresql":
        return
    # The pool hands the same connection out next (LIFO): a read of two statements is one
    # transaction on it, so both see the same transaction start (autocommit would give each its own).
    with db.read_only() as session:
        first = session.scalar(text("SELECT now()"))
        session.execute(text("SELECT pg_sleep(0.01)"))
        assert session.scalar(text("SELECT now()")) == first
