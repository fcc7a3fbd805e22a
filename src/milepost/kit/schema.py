"""The schema's migrations (Alembic, under milepost/migrations): bring a database to the head, the head's
revision, and where a database's schema stands against this release's migrations."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from milepost.kit.db import Database, normalise_url


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade_schema(url: str) -> None:
    """Create or migrate the schema to the newest revision (the schema comes only from migrations)."""
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


@cache
def migration_scripts() -> Any:
    """The migrations this release ships (an alembic ScriptDirectory; read once: the files do not change
    while it runs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(__file__).parent.parent / "migrations"))


def head_revision() -> str:
    """The newest migration this release ships: the revision a database must be at to be served."""
    head = migration_scripts().get_current_head()
    assert head is not None, "the package ships no migrations"
    return str(head)


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this release's migrations (else it was written by a newer one)."""
    from alembic.util.exc import CommandError

    try:
        return migration_scripts().get_revision(revision) is not None
    except CommandError:
        return False


def schema_state(database: Database) -> Literal["current", "missing", "behind", "ahead"]:
    """Where the database's schema stands against this code's migrations: at the head, not there at all,
    behind (``milepost db upgrade`` brings it forward) or ahead (written by a newer Milepost)."""
    from alembic.runtime.migration import MigrationContext

    script = migration_scripts()
    with database.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if not current:
        return "missing"
    if current == set(script.get_heads()):
        return "current"
    known = {revision.revision for revision in script.walk_revisions()}
    return "behind" if current <= known else "ahead"
