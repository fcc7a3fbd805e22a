"""Test databases: every storage and service test runs on SQLite and on PostgreSQL.

SQLite: each test gets its own file, copied from one migrated once per session.
PostgreSQL: each test worker gets its own database (created and migrated once); every test starts from
empty tables. The server comes from MILEPOST_TEST_POSTGRES_URL, else the local default; if nothing answers,
PostgreSQL tests are skipped with the reason, except in CI (CI=true) or when the URL was given: then it
is a failure.

After every test the ledger must verify (tests that corrupt it on purpose are marked ``tampers``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from sqlalchemy import text

from milepost.kit.db import Database, normalise_url
from milepost.kit.schema import upgrade_schema
from milepost.ledger.verify import verify_ledger
from tests.world import World

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]

# No time limit per example: what the property tests check is what comes out, not how fast, and on a
# shared machine an example's time varies with the neighbours (Hypothesis's default, 200 ms, made the
# outcome depend on them).
settings.register_profile("milepost", deadline=None)
settings.load_profile("milepost")


def _postgres_admin_url() -> tuple[str | None, str]:
    """(url, reason): the server to use, or None and why PostgreSQL tests cannot run."""
    given = os.environ.get("MILEPOST_TEST_POSTGRES_URL")
    url = given or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url, ""
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at {url} does not answer: {str(error).strip().splitlines()[0]}"
        if given or os.environ.get("CI") == "true":
            pytest.fail(reason + " (required here: MILEPOST_TEST_POSTGRES_URL is set or CI=true)")
        return None, reason + " (set MILEPOST_TEST_POSTGRES_URL, or start the server)"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly migrated PostgreSQL database of this test worker's own (with or without xdist)."""
    worker_id = os.environ.get("PYTEST_XDIST_WORKER", "master")
    admin_url, reason = _postgres_admin_url()
    if admin_url is None:
        pytest.skip(reason)
    # The process id keeps two test runs on one server (or two xdist workers) out of each other's way.
    name = f"milepost_test_{worker_id}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(admin_url, name)
    upgrade_schema(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_schema(f"sqlite:///{path}")
    return path


def empty_tables(database: Database) -> None:
    """Delete every row (the schema stays), so the next test starts from nothing."""
    from milepost.models import Base

    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


def make_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Database:
    if backend == "sqlite":
        path = tmp_path / "milepost.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return Database(f"sqlite:///{path}")
    database = Database(request.getfixturevalue("postgres_url"))
    empty_tables(database)
    return database


@pytest.fixture(autouse=True, scope="session")
def subscribers_installed() -> None:
    """Webhooks and notifications hear of every event, as in the app, the worker and the CLI."""
    from milepost import subscribers

    subscribers.install()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2, with its cheapest parameters: tests make hundreds of users (~0.2 s each otherwise)."""
    from argon2 import PasswordHasher

    from milepost.users import service as users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database on each backend; the ledger must verify when the test ends."""
    database = make_database(request, backend, tmp_path)
    yield database
    try:
        if request.node.get_closest_marker("tampers") is None:
            with database.read_only() as session:
                report = verify_ledger(session)
            assert report.ok, "ledger does not verify after the test:\n" + "\n".join(
                report.problems
            )
    finally:
        database.dispose()


@pytest.fixture
def world(db: Database) -> World:
    return World(db)


@pytest.fixture
def db_url(db: Database) -> str:
    return normalise_url(db.url)
