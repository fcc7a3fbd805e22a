"""What ``milepost``'s commands share, below all of them: the settings and database a command runs on,
the refusals before it starts (schema not at the head, storage broken, files directory not writable), and
``fail``. The command modules (cli.py, ledger/cli.py, backup/cli.py) import from here, never from each
other's modules, so the imports run one way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from milepost.kit.db import Database, pooler_from_environment
from milepost.kit.db_failures import shown_url
from milepost.kit.errors import MilepostError
from milepost.kit.schema import schema_state, upgrade_schema

if TYPE_CHECKING:
    from milepost.settings import Settings


# The database the command is working on, for the one-sentence explanation of a failure (see main).
_url_in_use: str | None = None


def load_settings(db: str | None = None) -> Settings:
    """The settings every command runs with: the environment, then the configuration file, then the
    defaults; ``--db`` over all of them. Bad settings stop the command, one line each."""
    from pydantic import ValidationError

    from milepost.settings import Settings

    try:
        settings = Settings(database_url=db) if db else Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: bad setting{f' ({where})' if where else ''}: {message}", err=True)
        raise typer.Exit(1) from None
    # Engines made from a URL alone (migrations, the claim marks, Database() in this process) read the
    # pooler from the environment: a value from the configuration file goes there too.
    os.environ["MILEPOST_DATABASE_POOLER"] = settings.database_pooler
    return settings


def url_in_use() -> str | None:
    """The database URL the running command opened (None before it opened one)."""
    return _url_in_use


def database_url(db: str | None) -> str:
    """The database URL the command works on (``--db`` over the settings), kept for ``url_in_use``."""
    global _url_in_use
    _url_in_use = load_settings(db).database_url
    return _url_in_use


def fail(message: str) -> typer.Exit:
    """One line on stderr and exit status 1, for a refusal the operator can act on: ``raise fail(...)``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def upgrade_command(db: str | None) -> str:
    """The command that brings this database's schema to the head, as the operator would type it."""
    from milepost.settings import config_file

    path = config_file()
    parts = ["milepost", *(["--config", str(path)] if path else []), "db", "upgrade"]
    if db:
        parts += ["--db", shown_url(db)]
    return " ".join(parts)


def refuse_unmigrated(database: Database, db: str | None) -> None:
    """Stop unless the schema is exactly at this code's migration head, saying how to get it there."""
    where = shown_url(database.url)
    state = "missing" if _missing_sqlite_file(database.url) else schema_state(database)
    if state == "missing":
        raise fail(f"the database at {where} has no schema yet: run '{upgrade_command(db)}' first")
    if state == "behind":
        raise fail(
            f"the database at {where} has an older schema than this version of Milepost: "
            f"run '{upgrade_command(db)}' first"
        )
    if state == "ahead":
        raise fail(
            f"the database at {where} has a newer schema than this version of Milepost knows: "
            "upgrade Milepost (a downgrade of the schema is not supported)"
        )


def _missing_sqlite_file(url: str) -> bool:
    """A SQLite URL whose file is not there (opening it would create an empty one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    path = parsed.database or ""
    return (
        bool(path)
        and path != ":memory:"
        and not path.startswith("file:")
        and not (Path(path).exists())
    )


@contextmanager
def open_database(db: str | None, *, upgrade: bool = False) -> Iterator[Database]:
    """Open the database, creating or migrating the schema first if asked; refuse one whose schema is
    not at the migration head. Whatever the command writes tells its subscribers (webhooks, e-mail)."""
    from milepost import subscribers

    subscribers.install()
    url = database_url(db)
    try:
        pooler = pooler_from_environment()
    except ValueError as error:
        raise fail(str(error)) from None
    if upgrade:
        upgrade_schema(url)
    elif _missing_sqlite_file(url):
        refuse_unmigrated(Database(url, pooler), db)  # says so without creating the file
    database = Database(url, pooler)
    try:
        if not upgrade:
            refuse_unmigrated(database, db)
        yield database
    except MilepostError as error:
        raise fail(error.message) from None
    finally:
        database.dispose()


def refuse_broken_storage(database: Database) -> None:
    """Stop before serving from a database that is damaged (SQLite's quick_check) or cannot be written:
    otherwise the server would start and answer every write with a 500, or keep writing to a damaged
    file."""
    from milepost.kit.storage import startup_problems

    problems = startup_problems(database)
    if problems:
        raise fail(f"not starting on {shown_url(database.url)}: " + "; ".join(problems))


def check_before_start(db: str | None) -> Settings:
    """What ``serve`` and ``worker`` check before they start, in this order, each refusal one line: the
    settings, the schema (at the migration head: neither starts a migration by itself), and that the
    database is sound and can be written."""
    settings = load_settings(db)
    url = database_url(db)
    if _missing_sqlite_file(url):
        refuse_unmigrated(Database(url, settings.database_pooler), db)
    database = Database(url, settings.database_pooler)
    try:
        refuse_unmigrated(database, db)
        refuse_broken_storage(database)
    finally:
        database.dispose()
    return settings


def refuse_unwritable_files_dir(settings: Settings) -> None:
    """Uploads are stored in MILEPOST_FILES_DIR: a server that cannot write there would accept every
    other request and answer each upload with a 500."""
    files = Path(settings.files_dir).absolute()
    try:
        files.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(
            f"cannot create the files directory {files} (MILEPOST_FILES_DIR): {error.strerror}"
        ) from None
    if not os.access(files, os.W_OK | os.X_OK):
        raise fail(
            f"the files directory {files} (MILEPOST_FILES_DIR) is not writable by this user: "
            "change its owner or mode"
        )
