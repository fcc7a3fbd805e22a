"""What a backup holds, and what backup and restore refuse: a target that is not empty, a backup whose
manifest is missing or damaged, a part that does not match its SHA-256, stored files that went bad."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner, Result

from milepost.cli import app
from milepost.files.service import blob_path
from milepost.kit.db import Database
from milepost.kit.schema import head_revision
from milepost.settings import Settings
from tests.api.conftest import Client

NOTES = b"Delivery notes: the staging site is live.\n"


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _some_money_and_a_file(sign_up: Any) -> Client:
    alice: Client = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 250_000, "currency": "USD", "provider": "sandbox"})
    upload = alice.request("POST", "/v1/files", files={"file": ("notes.txt", NOTES, "text/plain")})
    assert upload.status_code == 201, upload.text
    return alice


@pytest.fixture
def backup(sign_up: Any, db: Database, settings: Settings, tmp_path: Path) -> Path:
    _some_money_and_a_file(sign_up)
    target = tmp_path / "backup"
    result = cli("backup", str(target), "--db", db.url, "--files-dir", settings.files_dir)
    assert result.exit_code == 0, result.output
    return target


def _is_empty(url: str) -> bool:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return True
    database = Database(url)
    try:
        return not inspect(database.engine).get_table_names()
    finally:
        database.dispose()


def test_a_backup_holds_the_database_the_files_and_a_manifest(backup: Path, backend: str) -> None:
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["format"] == "milepost-backup"
    database = manifest["database"]
    assert database["kind"] == ("sqlite" if backend == "sqlite" else "postgresql")
    copy = backup / database["file"]
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == database["sha256"]
    assert database["schema_revision"] == head_revision()
    assert database["tables"]["deposits"] == 1
    assert database["tables"]["users"] == 1
    assert manifest["files"]["count"] == 1
    sha256 = hashlib.sha256(NOTES).hexdigest()
    assert manifest["files"]["blobs"] == [{"sha256": sha256, "size": len(NOTES)}]
    assert blob_path(backup / "files", sha256).read_bytes() == NOTES


def test_restore_refuses_a_database_or_files_directory_that_is_not_empty(
    backup: Path, fresh_url: Callable[[], str], tmp_path: Path
) -> None:
    target, files = fresh_url(), tmp_path / "restored-files"
    first = cli("restore", str(backup), "--db", target, "--files-dir", str(files))
    assert first.exit_code == 0, first.output
    assert "restore OK" in first.output

    again = cli("restore", str(backup), "--db", target, "--files-dir", str(tmp_path / "other"))
    assert again.exit_code == 1
    assert "nothing restored" in again.output and "is not empty" in again.output
    assert "--force" in again.output
    assert not (tmp_path / "other").exists()

    # A fresh database, but the files directory of the first restore: refused, and nothing written.
    other = fresh_url()
    refused = cli("restore", str(backup), "--db", other, "--files-dir", str(files))
    assert refused.exit_code == 1
    assert f"the files directory {files} is not empty" in refused.output
    assert _is_empty(other)

    forced = cli("restore", str(backup), "--db", target, "--files-dir", str(files), "--force")
    assert forced.exit_code == 0, forced.output
    assert "ledger OK" in forced.output


def _without_manifest(backup: Path) -> None:
    (backup / "manifest.json").unlink()


def _manifest_not_json(backup: Path) -> None:
    path = backup / "manifest.json"
    path.write_text(path.read_text()[:-40])


def _manifest_edited(backup: Path) -> None:
    path = backup / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["database"]["sha256"] = "not a hash"
    path.write_text(json.dumps(manifest))


def _database_copy_changed(backup: Path) -> None:
    path = next(backup.glob("milepost.*"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _file_changed(backup: Path) -> None:
    blob_path(backup / "files", hashlib.sha256(NOTES).hexdigest()).write_bytes(b"something else\n")


def _file_missing(backup: Path) -> None:
    blob_path(backup / "files", hashlib.sha256(NOTES).hexdigest()).unlink()


DAMAGE = {
    "no manifest": (_without_manifest, "has no manifest.json"),
    "manifest not JSON": (_manifest_not_json, "manifest.json is damaged"),
    "manifest edited": (_manifest_edited, "manifest.json is damaged"),
    "database copy changed": (_database_copy_changed, "does not match its SHA-256"),
    "file changed": (_file_changed, "does not match its SHA-256: it is damaged"),
    "file missing": (_file_missing, "the backup is missing the uploaded file"),
}


@pytest.mark.parametrize("backend", ["sqlite"])  # checked before any database is touched
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_restore_refuses_a_damaged_backup_and_writes_nothing(
    backup: Path, damage: str, tmp_path: Path
) -> None:
    spoil, words = DAMAGE[damage]
    spoil(backup)
    target, files = tmp_path / "restored" / "milepost.db", tmp_path / "restored-files"
    result = cli("restore", str(backup), "--db", f"sqlite:///{target}", "--files-dir", str(files))
    assert result.exit_code == 1
    assert "nothing restored" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output
    assert not target.exists() and not files.exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_refuses_a_backup_of_the_other_kind_of_database(
    backup: Path, tmp_path: Path
) -> None:
    result = cli(
        "restore", str(backup), "--db", "postgresql://postgres@127.0.0.1:1/none",
        "--files-dir", str(tmp_path / "files-restored"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "this is a sqlite backup and --db names a postgresql database" in result.output


def test_backup_refuses_when_a_stored_file_no_longer_matches_its_hash(
    sign_up: Any, db: Database, settings: Settings, tmp_path: Path
) -> None:
    _some_money_and_a_file(sign_up)
    blob_path(settings.files_dir, hashlib.sha256(NOTES).hexdigest()).write_bytes(b"bit rot\n")
    target = tmp_path / "backup"
    result = cli("backup", str(target), "--db", db.url, "--files-dir", settings.files_dir)
    assert result.exit_code == 1
    assert "no backup taken" in result.output
    assert "1 whose bytes no longer match their SHA-256" in result.output
    assert sorted(path.name for path in tmp_path.iterdir() if "backup" in path.name) == []


def test_backup_refuses_a_destination_that_is_not_empty(
    backup: Path, db: Database, settings: Settings
) -> None:
    before = (backup / "manifest.json").read_bytes()
    result = cli("backup", str(backup), "--db", db.url, "--files-dir", settings.files_dir)
    assert result.exit_code == 1
    assert "already exists and is not empty" in result.output
    assert (backup / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_backup_without_pg_dump_says_what_to_do(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    result = cli(
        "backup", str(tmp_path / "backup"), "--db", db.url, "--files-dir", settings.files_dir,
        env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "pg_dump is not on PATH" in result.output
    assert "production guide" in result.output
    assert not (tmp_path / "backup").exists()
