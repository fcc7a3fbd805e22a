"""``milepost backup`` and ``milepost restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milepost.backup.manifest import BackupDamaged
from milepost.cli_options import DbOption

FilesDirOption = Annotated[
    Path | None,
    typer.Option(
        "--files-dir",
        help="The uploaded files directory (else MILEPOST_FILES_DIR, else milepost-files).",
        show_default=False,
    ),
]


def _files_dir(given: Path | None) -> Path:
    from milepost.settings import Settings

    return given if given is not None else Path(Settings().files_dir)


def _os_error(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def backup_command(
    destination: Annotated[
        Path, typer.Argument(help="A new (or empty) directory to write the backup into.")
    ],
    db: DbOption = None,
    files_dir: FilesDirOption = None,
) -> None:
    """Back up the database and the uploaded files it references into a new directory, while the
    server keeps running. SQLite: the online backup API; PostgreSQL: pg_dump (custom format), which
    must be on PATH. A manifest (schema revision, rows per table, SHA-256 of every part) is written last."""
    from milepost.backup.service import BackupRefused, take_backup
    from milepost.cli_support import database_url, fail

    try:
        manifest = take_backup(database_url(db), _files_dir(files_dir), destination)
    except BackupRefused as error:
        raise fail(f"no backup taken: {error}") from None
    except OSError as error:
        raise fail(f"no backup taken: {_os_error(error)}") from None
    rows = sum(manifest.database.tables.values())
    typer.echo(
        f"backup written to {destination}: {manifest.database.kind} database "
        f"({manifest.database.size} bytes, {rows} rows, schema revision "
        f"{manifest.database.schema_revision}) and {manifest.files.count} uploaded files "
        f"({manifest.files.bytes} bytes), taken at {manifest.created_at.isoformat()}"
    )


def restore_command(
    source: Annotated[Path, typer.Argument(help="A backup directory made by 'milepost backup'.")],
    db: Annotated[
        str,
        typer.Option(
            "--db",
            help="The database to restore into (asked for explicitly): a SQLite file that does not "
            "exist yet or is empty, or an empty PostgreSQL database.",
        ),
    ],
    files_dir: FilesDirOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a database that is not empty and add to a files directory that is not.",
        ),
    ] = False,
) -> None:
    """Check a backup against its manifest, restore it into an empty database and files directory, then
    check the result (integrity, rows per table, the ledger). Exit 1 if anything does not match. Stop
    the servers and workers that use the target first."""
    from milepost.backup.service import BackupRefused, restore_backup
    from milepost.cli_support import fail

    try:
        report = restore_backup(source, db, _files_dir(files_dir), force=force)
    except (BackupDamaged, BackupRefused) as error:
        raise fail(f"nothing restored: {error}") from None
    except OSError as error:
        # Checked before anything is written, so a failure here is almost always before the restore
        # began; a rerun with --force finishes one cut short (a full disk, say).
        raise fail(f"restore stopped: {_os_error(error)}") from None
    for line in report.lines:
        typer.echo(line)
    if report.problems:
        typer.echo(f"restored, but {len(report.problems)} problem(s) found:", err=True)
        for problem in report.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(code=1)
    typer.echo("restore OK")
