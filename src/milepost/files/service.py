"""Uploads (content-addressed on disk, type decided from the bytes), downloads, and evidence files."""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import filetype
from sqlalchemy import or_, select

from milepost.disputes.models import Dispute, DisputeMessage
from milepost.files.models import DisputeMessageFile, StoredFile, SubmissionFile
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound, ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.milestones.models import Milestone, Submission
from milepost.projects.models import Project
from milepost.settings import Settings

# What may be uploaded, as detected from the bytes. Anything else (executables, scripts disguised as a
# PDF, archives other than ZIP, office documents...) is refused.
ALLOWED_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/zip",
    }
)
TEXT_TYPE = "text/plain"
_CHUNK = 1024 * 1024
_HEAD = 8192  # enough for every signature filetype knows


class UnsupportedFileType(ValidationFailed):
    code = "unsupported_file_type"


class FileTooLarge(MilepostError):
    status = 413
    type = "invalid_request"
    code = "file_too_large"


def blob_path(files_dir: str | Path, sha256: str) -> Path:
    """Where the bytes with this SHA-256 live: ``ab/cd/abcd...``."""
    return Path(files_dir) / sha256[:2] / sha256[2:4] / sha256


def detect_content_type(head: bytes, *, is_text: bool) -> str:
    """The content type from the bytes: a known binary signature on the allow-list, or UTF-8 text."""
    kind: Any = filetype.guess(head)
    if kind is not None:
        mime = str(kind.mime)
        if mime in ALLOWED_TYPES:
            return mime
        raise UnsupportedFileType(
            f"Files of type {mime} are not accepted. Upload a PDF, PNG, JPEG, GIF, WebP, ZIP or "
            "UTF-8 text file.",
            param="file",
        )
    if is_text:
        return TEXT_TYPE
    raise UnsupportedFileType(
        "This file's type is not accepted. Upload a PDF, PNG, JPEG, GIF, WebP, ZIP or UTF-8 text "
        "file.",
        param="file",
    )


def clean_filename(name: str | None) -> str:
    """The name to store: no directories, no control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    if base in ("", ".", ".."):
        return "file"
    return base[-255:] if len(base) > 255 else base


@dataclass(frozen=True)
class StagedBlob:
    """Bytes now stored under their content address, with what was learnt reading them."""

    sha256: str
    size: int
    content_type: str


def stage(settings: Settings, source: BinaryIO) -> StagedBlob:
    """Store the bytes read from ``source`` under ``files_dir``, refusing what may not be uploaded.

    Runs outside any transaction (no database lock is held while up to 25 MiB are written). The bytes
    go to a temporary file first and are renamed into place only when complete, so a crash never leaves
    half a file under a content address; bytes already stored are not written again. A blob whose row
    is never committed is harmless: it is addressed by content and may serve a later upload.
    """
    limit = settings.max_upload_bytes
    root = Path(settings.files_dir)
    staging = root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    size, head, is_text = 0, b"", True
    handle, temp_name = tempfile.mkstemp(dir=staging, prefix="upload-")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FileTooLarge(
                        f"The file is larger than the limit of {limit} bytes.", param="file"
                    )
                digest.update(chunk)
                if len(head) < _HEAD:
                    head += chunk[: _HEAD - len(head)]
                if is_text:
                    is_text = _still_text(decoder, chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise ValidationFailed("The file is empty.", code="empty_file", param="file")
        if is_text:
            is_text = _still_text(decoder, b"", final=True)
        content_type = detect_content_type(head, is_text=is_text)
        sha256 = digest.hexdigest()
        target = blob_path(root, sha256)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return StagedBlob(sha256=sha256, size=size, content_type=content_type)


def create_file(ctx: Context, blob: StagedBlob, *, filename: str | None) -> StoredFile:
    """The actor's upload of a staged blob."""
    stored = StoredFile(
        id=new_id("file"),
        owner_id=ctx.require_actor().id,
        sha256=blob.sha256,
        size=blob.size,
        content_type=blob.content_type,
        filename=clean_filename(filename),
        created_at=ctx.now,
    )
    ctx.session.add(stored)
    ctx.session.flush()
    return stored


def _still_text(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool = False) -> bool:
    if b"\x00" in chunk:
        return False
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False
    return True


def get_for_download(ctx: Context, file_id: str) -> StoredFile:
    """The file, if the actor uploaded it or is a party (or staff) to a milestone whose submission uses
    it; anyone else is told it does not exist."""
    actor = ctx.require_actor()
    stored = one_or_404(
        ctx.session, select(StoredFile).where(StoredFile.id == file_id), missing="No such file."
    )
    if stored.owner_id == actor.id:
        return stored
    used = (
        select(SubmissionFile.file_id)
        .join(Submission, Submission.id == SubmissionFile.submission_id)
        .join(Milestone, Milestone.id == Submission.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(SubmissionFile.file_id == file_id)
    )
    if not actor.is_staff:
        used = used.where(or_(Milestone.client_id == actor.id, Project.freelancer_id == actor.id))
    if ctx.session.scalar(used.limit(1)) is None and not _attached_in_dispute(ctx, file_id):
        raise NotFound("No such file.", param="id")
    return stored


def _attached_in_dispute(ctx: Context, file_id: str) -> bool:
    """Whether a dispute message the actor may read (a party to its milestone, or staff) attaches it."""
    actor = ctx.require_actor()
    used = (
        select(DisputeMessageFile.file_id)
        .join(DisputeMessage, DisputeMessage.id == DisputeMessageFile.message_id)
        .join(Dispute, Dispute.id == DisputeMessage.dispute_id)
        .join(Milestone, Milestone.id == Dispute.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(DisputeMessageFile.file_id == file_id)
    )
    if not actor.is_staff:
        used = used.where(or_(Milestone.client_id == actor.id, Project.freelancer_id == actor.id))
    return ctx.session.scalar(used.limit(1)) is not None


def open_blob(ctx: Context, stored: StoredFile) -> Path:
    path = blob_path(ctx.settings.files_dir, stored.sha256)
    if not path.is_file():
        raise NotFound("The file's bytes are missing from storage.", code="file_missing")
    return path


# Evidence ------------------------------------------------------------------------------------------------


def check_evidence_files(
    ctx: Context, evidence: list[dict[str, str]], param: str = "evidence"
) -> list[str]:
    """The ids of the files the evidence names, each checked to exist and to be the actor's upload."""
    actor = ctx.require_actor()
    file_ids: list[str] = []
    for index, item in enumerate(evidence):
        if item.get("type") != "file":
            continue
        stored = ctx.session.get(StoredFile, item["file_id"])
        if stored is None or stored.owner_id != actor.id:
            raise ValidationFailed(
                "No such file among your uploads: upload it with POST /v1/files first.",
                code="unknown_file",
                param=f"{param}[{index}].file_id",
            )
        if stored.id not in file_ids:
            file_ids.append(stored.id)
    return file_ids


def link_to_submission(ctx: Context, submission_id: str, file_ids: list[str]) -> None:
    if not file_ids:
        return
    # The submission row must exist first (no ORM relationship orders these inserts).
    ctx.session.flush()
    ctx.session.add_all(
        SubmissionFile(submission_id=submission_id, file_id=file_id) for file_id in file_ids
    )
