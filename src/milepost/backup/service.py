"""Take a backup of a running Milepost, and restore one into a fresh place.

A backup is a directory: the database snapshot (``milepost.db``, a SQLite file, or ``milepost.dump``, a
``pg_dump`` custom-format archive), ``files/`` with every uploaded file the snapshot references (laid out as
under ``MILEPOST_FILES_DIR``), and ``manifest.json``, written last, with the schema revision, the rows per
table and the SHA-256 of every part.

Consistency while the server writes: SQLite's online backup API copies the whole file inside one read
transaction (in WAL mode writers go on meanwhile); on PostgreSQL the manifest's counts and file list are
read in a REPEATABLE READ transaction whose snapshot ``pg_dump --snapshot`` then dumps, so they describe
exactly what was dumped. The files are copied after the snapshot: an upload's bytes are on disk before its
row is committed, and stored bytes are never removed, so every file the snapshot references is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from milepost import __version__
from milepost.backup.manifest import (
    BackupDamaged,
    Blob,
    DatabasePart,
    FilesPart,
    Manifest,
    read_manifest,
)
from milepost.files.service import blob_path
from milepost.kit.db import normalise_url
from milepost.kit.schema import head_revision, is_known_revision
from milepost.kit.time import utcnow

SQLITE_FILE = "milepost.db"
POSTGRES_FILE = "milepost.dump"
FILES = "files"
_CHUNK = 1024 * 1024
# Shown when the PostgreSQL client tools are missing.
POSTGRES_RECIPE = "see 'Backups' in the production guide for the pg_dump and base-backup recipes"


class BackupRefused(Exception):
    """The backup or restore was not done (or not finished): the message says why, in one sentence."""


@dataclass(frozen=True)
class Snapshot:
    revision: str
    tables: dict[str, int]
    blobs: list[str]


@dataclass
class RestoreReport:
    manifest: Manifest
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------- backup


def take_backup(url: str, files_dir: Path, destination: Path) -> Manifest:
    """Write a backup of the database at ``url`` and of the files it references into ``destination``
    (a new or empty directory). The backup is assembled beside it and renamed into place when complete,
    so a backup that failed half way never looks like one."""
    url = normalise_url(url)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupRefused(
            f"{destination} already exists and is not empty: a backup goes into a new directory "
            "(it never overwrites another)"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = destination.parent / f".{destination.name}.incomplete-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / FILES).mkdir()
    try:
        started = utcnow()
        if _kind(url) == "sqlite":
            snapshot = _snapshot_sqlite(_sqlite_path(url), work / SQLITE_FILE)
            database_file = SQLITE_FILE
        else:
            snapshot = _snapshot_postgres(url, work / POSTGRES_FILE)
            database_file = POSTGRES_FILE
        blobs = _copy_blobs(files_dir, work / FILES, snapshot.blobs)
        digest, size = _hash_file(work / database_file)
        manifest = Manifest(
            milepost_version=__version__,
            created_at=started,
            database=DatabasePart(
                kind=_kind(url),
                file=database_file,
                sha256=digest,
                size=size,
                schema_revision=snapshot.revision,
                tables=snapshot.tables,
            ),
            files=FilesPart(count=len(blobs), bytes=sum(blob.size for blob in blobs), blobs=blobs),
        )
        _fsync(manifest.write(work))
        _fsync(work)
        if destination.exists():
            destination.rmdir()  # empty, checked above
        work.rename(destination)
        _fsync(destination.parent)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _snapshot_sqlite(source: Path, target: Path) -> Snapshot:
    if not source.is_file():
        raise BackupRefused(f"there is no SQLite database at {source}")
    # One step (pages=-1): the whole copy happens inside one read transaction on the source, so it is
    # one consistent moment; in WAL mode the server's writers are not held up meanwhile.
    with (
        closing(sqlite3.connect(source, timeout=30)) as live,
        closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)
        # The copy is a plain single file (no -wal beside it), whatever mode the source runs in.
        copy.execute("PRAGMA journal_mode=DELETE")
        snapshot = _read_snapshot(copy.cursor(), _sqlite_tables(copy))
    _fsync(target)
    return snapshot


def _sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def _read_snapshot(cursor: Any, tables: list[str]) -> Snapshot:
    """Schema revision, rows per table and the referenced files, read inside the snapshot."""
    if "alembic_version" not in tables or "files" not in tables:
        raise BackupRefused("the database has no Milepost schema: there is nothing to back up")
    cursor.execute("SELECT version_num FROM alembic_version")
    revision = str(cursor.fetchone()[0])
    counts: dict[str, int] = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        counts[table] = int(cursor.fetchone()[0])
    cursor.execute("SELECT DISTINCT sha256 FROM files ORDER BY sha256")
    blobs = [str(row[0]) for row in cursor.fetchall()]
    return Snapshot(revision=revision, tables=counts, blobs=blobs)


def _snapshot_postgres(url: str, target: Path) -> Snapshot:
    import psycopg

    pg_dump = _client_tool("pg_dump")
    libpq_url, env = _libpq(url)
    try:
        connection = psycopg.connect(libpq_url, connect_timeout=10, password=env.get("PGPASSWORD"))
    except psycopg.OperationalError as error:
        raise BackupRefused(f"cannot reach PostgreSQL: {_first_line(str(error))}") from None
    with connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            row = cursor.fetchone()
            assert row is not None
            snapshot_id = str(row[0])
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
            tables = sorted(str(found[0]) for found in cursor.fetchall())
            snapshot = _read_snapshot(cursor, tables)
            # The transaction stays open while pg_dump runs: its exported snapshot lives until then.
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    f"--file={target}",
                    f"--dbname={libpq_url}",
                ],
                env,
                "pg_dump",
            )
        connection.rollback()
    _fsync(target)
    return snapshot


def _copy_blobs(files_dir: Path, target: Path, wanted: list[str]) -> list[Blob]:
    """Copy every referenced file, checking each one's bytes against its address as they are read."""
    copied: list[Blob] = []
    missing: list[str] = []
    damaged: list[str] = []
    for sha256 in wanted:
        source = blob_path(files_dir, sha256)
        if not source.is_file():
            missing.append(sha256)
            continue
        destination = blob_path(target, sha256)
        digest, size = _copy_hashed(source, destination)
        if digest != sha256:
            destination.unlink()
            damaged.append(sha256)
            continue
        copied.append(Blob(sha256=sha256, size=size))
    if missing or damaged:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if damaged:
            parts.append(f"{len(damaged)} whose bytes no longer match their SHA-256 ({damaged[0]})")
        raise BackupRefused(
            f"uploaded files the database references are damaged under {files_dir}: "
            + " and ".join(parts)
            + "; no backup was written (restore those files from an older backup first)"
        )
    return copied


# --------------------------------------------------------------------------------------------- restore


def check_backup(source: Path) -> Manifest:
    """Read the manifest and check every part of the backup against it, before anything is written."""
    manifest = read_manifest(source)
    database_file = source / manifest.database.file
    if not database_file.is_file():
        raise BackupDamaged(f"{database_file} is missing: the backup is incomplete")
    digest, size = _hash_file(database_file)
    if (digest, size) != (manifest.database.sha256, manifest.database.size):
        raise BackupDamaged(
            f"{database_file} does not match its SHA-256 in the manifest: the database copy is damaged"
        )
    for blob in manifest.files.blobs:
        path = blob_path(source / FILES, blob.sha256)
        if not path.is_file():
            raise BackupDamaged(f"the backup is missing the uploaded file {blob.sha256}")
        if _hash_file(path) != (blob.sha256, blob.size):
            raise BackupDamaged(
                f"the uploaded file {blob.sha256} in the backup does not match its SHA-256: it is damaged"
            )
    return manifest


def restore_backup(
    source: Path, url: str, files_dir: Path, *, force: bool = False
) -> RestoreReport:
    """Restore the backup in ``source`` into the (empty) database at ``url`` and ``files_dir``, then check
    the result: integrity, schema revision, rows per table and the ledger."""
    url = normalise_url(url)
    manifest = check_backup(source)
    kind = _kind(url)
    if manifest.database.kind != kind:
        raise BackupRefused(
            f"this is a {manifest.database.kind} backup and --db names a {kind} database: restore it "
            f"into {manifest.database.kind}"
        )
    if not is_known_revision(manifest.database.schema_revision):
        raise BackupRefused(
            f"the backup's schema revision {manifest.database.schema_revision} is unknown to this "
            f"Milepost {__version__}: restore it with the version that made it "
            f"({manifest.milepost_version}) or newer"
        )
    occupied = _database_occupied(url) if kind == "sqlite" else _postgres_occupied(url)
    if occupied and not force:
        raise BackupRefused(f"{occupied}: restore into an empty one, or pass --force to replace it")
    if _has_files(files_dir) and not force:
        raise BackupRefused(
            f"the files directory {files_dir} is not empty: restore into an empty one, or pass "
            "--force to add to it"
        )

    report = RestoreReport(manifest=manifest)
    if kind == "sqlite":
        _restore_sqlite(source / manifest.database.file, _sqlite_path(url), replace=bool(occupied))
    else:
        _restore_postgres(source / manifest.database.file, url, replace=bool(occupied))
    report.lines.append(
        f"restored the database ({sum(manifest.database.tables.values())} rows in "
        f"{len(manifest.database.tables)} tables, schema revision {manifest.database.schema_revision})"
    )
    for blob in manifest.files.blobs:
        target = blob_path(files_dir, blob.sha256)
        if target.is_file() and _hash_file(target) == (blob.sha256, blob.size):
            continue  # content-addressed: the same bytes are already there
        digest, _ = _copy_hashed(blob_path(source / FILES, blob.sha256), target)
        if digest != blob.sha256:  # changed on disk since it was checked above
            target.unlink()
            report.problems.append(f"the uploaded file {blob.sha256} could not be copied intact")
    report.lines.append(
        f"restored {manifest.files.count} uploaded files ({manifest.files.bytes} bytes) into "
        f"{files_dir}"
    )
    _check_restored(url, report)
    return report


def _database_occupied(url: str) -> str | None:
    path = _sqlite_path(url)
    wal = path.with_name(path.name + "-wal")
    if (path.exists() and path.stat().st_size > 0) or (wal.exists() and wal.stat().st_size > 0):
        return f"the database {path} is not empty"
    return None


def _postgres_occupied(url: str) -> str | None:
    import psycopg

    libpq_url, env = _libpq(url)
    try:
        with psycopg.connect(
            libpq_url, connect_timeout=10, password=env.get("PGPASSWORD")
        ) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            ).fetchone()
    except psycopg.OperationalError as error:
        raise BackupRefused(f"cannot reach PostgreSQL: {_first_line(str(error))}") from None
    relations = int(row[0]) if row else 0
    if relations:
        name = make_url(url).database
        return f"the database {name!r} is not empty ({relations} tables and sequences)"
    return None


def _restore_sqlite(copy: Path, target: Path, *, replace: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring-{os.getpid()}")
    try:
        _copy_hashed(copy, staged)
        with closing(sqlite3.connect(staged)) as connection:
            findings = [str(row[0]) for row in connection.execute("PRAGMA integrity_check(10)")]
        if findings != ["ok"]:
            raise BackupRefused(
                f"the database copy fails SQLite's integrity check: {'; '.join(findings)}"
            )
        if replace:
            for leftover in (target.name + "-wal", target.name + "-shm"):
                target.with_name(leftover).unlink(missing_ok=True)
        os.replace(staged, target)
        _fsync(target.parent)
    finally:
        staged.unlink(missing_ok=True)


def _restore_postgres(dump: Path, url: str, *, replace: bool) -> None:
    import psycopg

    pg_restore = _client_tool("pg_restore")
    libpq_url, env = _libpq(url)
    if replace:
        with psycopg.connect(
            libpq_url, connect_timeout=10, password=env.get("PGPASSWORD"), autocommit=True
        ) as connection:
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")
    # One transaction: a restore that fails leaves the database as empty as it was.
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq_url}",
            str(dump),
        ],
        env,
        "pg_restore",
    )


def _check_restored(url: str, report: RestoreReport) -> None:
    """What the restored database says about itself, against what the manifest promised."""
    from sqlalchemy import inspect, text

    from milepost.kit.db import Database
    from milepost.kit.macs import ledger_keys
    from milepost.ledger.verify import verify_ledger
    from milepost.settings import Settings

    manifest = report.manifest
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if revision != manifest.database.schema_revision:
                report.problems.append(
                    f"schema revision is {revision}, the manifest says "
                    f"{manifest.database.schema_revision}"
                )
            for table, expected in manifest.database.tables.items():
                if table not in tables:
                    report.problems.append(f"table {table} is missing")
                    continue
                count = connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
                if count != expected:
                    report.problems.append(
                        f"table {table} has {count} rows, the manifest says {expected}"
                    )
        with database.read_only() as session:
            verified = verify_ledger(session, ledger_keys(Settings()))
    finally:
        database.dispose()
    if report.ok and not verified.problems:
        report.lines.append(
            f"rows per table match the manifest; ledger OK ({verified.accounts} accounts, "
            f"{verified.entries} entries, {verified.milestones} milestones, {verified.events} events)"
        )
    report.lines.extend(f"note: {note}" for note in verified.notes)
    report.problems.extend(f"ledger: {problem}" for problem in verified.problems)
    head = head_revision()
    if manifest.database.schema_revision != head:
        report.lines.append(
            f"note: the schema is at {manifest.database.schema_revision}, this Milepost's newest is "
            f"{head}: run 'milepost db upgrade' on it before serving"
        )


# ------------------------------------------------------------------------------------------- plumbing


def _kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupRefused(f"cannot back up or restore a {backend} database")
    return backend


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupRefused("an in-memory SQLite database has nothing to back up or restore")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A URL for libpq (pg_dump, psql, psycopg) without the password, which goes in PGPASSWORD: the
    command line of a running process is visible to every user of the machine."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _client_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupRefused(
            f"{name} is not on PATH: install PostgreSQL's client tools (Debian: postgresql-client, "
            f"the server's major version or newer), or {POSTGRES_RECIPE}"
        )
    return found


def _run(command: list[str], env: dict[str, str], name: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = _first_line(result.stderr) or f"exit status {result.returncode}"
        raise BackupRefused(f"{name} failed: {detail}")


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(path.is_file() for path in directory.rglob("*"))


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` (through a temporary name, renamed when complete and on disk);
    return the SHA-256 and size of the bytes copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        with source.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest(), size


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
