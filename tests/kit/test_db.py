"""Storage set-up: the schema comes from the migrations, and SQLite runs with the promised settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from milepost.kit.db import Database
from milepost.models import Base
from tests.conftest import make_database


def test_migrations_build_exactly_the_schema_the_models_describe(db: Database) -> None:
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_sqlite_is_wal_with_full_sync_and_foreign_keys(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = make_database(request, "sqlite", tmp_path)
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


def test_database_refuses_a_row_that_breaks_a_foreign_key(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.unit_of_work() as session:
        session.execute(
            text(
                "INSERT INTO projects (id, client_id, title, description, currency, status, paused,"
                " created_at, updated_at) VALUES ('prj_x', 'usr_missing', 't', '', 'USD', 'open',"
                " false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_a_process_reuses_its_postgres_connections_across_bursts_of_concurrent_requests(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Twenty requests at once, three times: the same twenty PostgreSQL server processes serve every
    burst. A connection pool that closes what it lent above its kept size would start new server
    processes at every burst (each a fork on the database's machine, its prepared statements lost)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    db = make_database(request, "postgres", tmp_path)
    at_once = 20
    together = threading.Barrier(at_once, timeout=30)

    def one_request() -> int:
        with db.read_only() as session:
            server_process = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            together.wait()  # every request holds its connection at the same moment
        return server_process

    try:
        server_processes: set[int] = set()
        with ThreadPoolExecutor(at_once) as threads:
            for _burst in range(3):
                burst = list(threads.map(lambda _: one_request(), range(at_once)))
                assert len(set(burst)) == at_once
                server_processes.update(burst)
        assert len(server_processes) == at_once
    finally:
        db.dispose()


def test_a_row_queued_for_the_flush_is_written_after_the_objects_it_refers_to_and_seen_at_once(
    db: Database,
) -> None:
    """A row queued with ``insert_at_flush`` (an audit event, a notification) may refer to a row the same
    unit of work added as an object; a query later in that unit of work sees it; and it is written only
    if the unit of work commits."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from milepost.kit.db import insert_at_flush
    from milepost.notifications.models import Notification
    from milepost.users.models import User

    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def user_and_notification(user_id: str) -> dict[str, object]:
        row = {"id": f"ntf_{user_id}", "user_id": user_id, "kind": "generic", "title": "Hello"}
        return {**row, "body": "A body", "data": {"n": 1}, "created_at": now}

    with db.unit_of_work() as session:
        session.add(
            User(id="usr_q1", email="q1@example.com", name="Q", password_hash="x", created_at=now)
        )
        insert_at_flush(session, Notification, user_and_notification("usr_q1"))
        seen = session.scalar(select(Notification.title).where(Notification.user_id == "usr_q1"))
        assert seen == "Hello"

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), db.unit_of_work() as session:
        insert_at_flush(session, Notification, {**user_and_notification("usr_q1"), "id": "ntf_2"})
        raise Abandoned

    with db.read_only() as session:
        rows = session.execute(select(Notification.id, Notification.data)).all()
        assert [tuple(row) for row in rows] == [("ntf_usr_q1", {"n": 1})]
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_a_changed_row_is_written_with_its_changed_columns_only_and_left_clean(
    db: Database,
) -> None:
    """The flush writes a changed row of a plain model itself: one UPDATE of the columns that changed
    (a column set to the value it had is not written), after which the object has nothing pending, as
    after the ORM's own flush; and what was written is what a later read finds."""
    from datetime import UTC, datetime

    from sqlalchemy import event, select

    from milepost.users.models import User

    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    with db.unit_of_work() as session:
        session.add(
            User(id="usr_p1", email="p1@example.com", name="P", password_hash="x", created_at=now)
        )
    updates: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.unit_of_work() as session:
            user = session.get(User, "usr_p1")
            assert user is not None
            user.name = "Pat"
            user.time_zone = "UTC"  # as it was
            session.flush()
            assert not session.dirty
            assert session.scalar(select(User.name).where(User.id == "usr_p1")) == "Pat"
            user.is_staff = True
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len(updates) == 2
    assert "SET name=" in updates[0].replace(" = ", "=") and "time_zone" not in updates[0]
    with db.read_only() as session:
        stored = session.execute(
            select(User.name, User.is_staff, User.time_zone).where(User.id == "usr_p1")
        ).one()
        assert tuple(stored) == ("Pat", True, "UTC")
