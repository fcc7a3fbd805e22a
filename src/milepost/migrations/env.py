"""Alembic environment: the schema of every Milepost database comes from these migrations only."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from milepost import models
from milepost.kit.db import make_engine

config = context.config
target_metadata = models.Base.metadata


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None, "sqlalchemy.url must be set"
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite's own procedure for a schema change: foreign keys off (outside any transaction,
                # where the pragma takes effect) while a table is copied and swapped (a batch
                # migration), so that rows pointing at it are not refused mid-way; then every key is
                # checked before the commit, and anything left dangling rolls the migration back.
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
                # SQLite's DDL is transactional too (Alembic assumes not): a migration that fails
                # leaves the database as it was, its revision included.
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _refuse_dangling_keys(connection)
            connection.commit()
    finally:
        engine.dispose()


def _refuse_dangling_keys(connection: Connection) -> None:
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if dangling:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in dangling[:5])
        raise RuntimeError(
            f"the migration would leave {len(dangling)} foreign keys pointing nowhere ({shown}): "
            "nothing was changed"
        )


run_migrations()
