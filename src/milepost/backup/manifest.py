"""What a backup holds, written last (``manifest.json``): a directory without one is not a backup."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MANIFEST_NAME = "manifest.json"
FORMAT: Literal["milepost-backup"] = "milepost-backup"
FORMAT_VERSION: Literal[1] = 1
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class BackupDamaged(Exception):
    """The backup cannot be trusted: its manifest is missing or unreadable, or a part of it does not
    match what the manifest says. The message is one sentence for the operator."""


class DatabasePart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["sqlite", "postgresql"]
    # The file inside the backup: a SQLite database, or a pg_dump custom-format archive.
    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)
    schema_revision: str
    # Rows per table in the snapshot, read inside the snapshot itself.
    tables: dict[str, int]


class Blob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)


class FilesPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0)
    bytes: int = Field(ge=0)
    blobs: list[Blob]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["milepost-backup"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    milepost_version: str
    created_at: datetime
    database: DatabasePart
    files: FilesPart

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise BackupDamaged(f"{directory} is not a directory: a Milepost backup is a directory")
    if not path.is_file():
        raise BackupDamaged(
            f"{directory} has no {MANIFEST_NAME}: it is not a Milepost backup, or the backup did not "
            "finish (the manifest is written last)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BackupDamaged(f"{path} is damaged (not readable JSON: {error})") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise BackupDamaged(
            f"{path} is damaged or not a Milepost backup manifest ({where}: {first['msg']})"
        ) from None
    if manifest.files.count != len(manifest.files.blobs):
        raise BackupDamaged(f"{path} is damaged (its file count does not match its file list)")
    return manifest
